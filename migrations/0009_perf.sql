-- Write path performance: the same rules, change rows and statistics as
-- migrations 0003 to 0006, for less work per record written
-- (docs/BENCHMARKS.md, "Write path and pull performance", has the figures).
--
-- LANGUAGE sql functions that are not inlined (every one here holds a
-- FROM, an INSERT or a DELETE) are parsed and planned again at every call
-- in PostgreSQL 15; PL/pgSQL keeps each statement's plan for the session.
-- sentra_stat_sync was the most expensive function of a write (three calls
-- per created record, about 1.2 ms each, nearly all of it planning).

-- Same statement as migrations/0005_stats.sql; an empty list (a DELETE of
-- figures that found none, as every create does) costs nothing. One id (a
-- write function's statement) gets its own copy of the statement: with
-- "= ANY (p_ids)" the plan cache never trusts the generic plan (it
-- estimates 10 rows where a custom plan sees 1) and plans every call again.
CREATE OR REPLACE FUNCTION sentra_stat_sync(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_ids) = 1 THEN
        INSERT INTO sentra_stat AS t (sentra_id, regency_code, province_code, status,
                                      sector_group, kbli_code, designated, formed_on,
                                      decree_date, updated_at, deleted_at, fig_year,
                                      business_units, workers_male, workers_female,
                                      investment, production_value, material_value)
        SELECT s.id, s.regency_code, s.province_code, s.status, s.sector_group,
               s.kbli_code, s.designated,
               coalesce(s.formed_on, (s.created_at AT TIME ZONE 'Asia/Jayapura')::date),
               s.decree_date, s.updated_at, s.deleted_at, f.year, f.business_units,
               f.workers_male, f.workers_female, f.investment, f.production_value,
               f.material_value
          FROM sentra s
          LEFT JOIN LATERAL (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id
                              ORDER BY x.year DESC LIMIT 1) f ON true
         WHERE s.id = p_ids[1]
        ON CONFLICT (sentra_id) DO UPDATE SET
               regency_code = EXCLUDED.regency_code, province_code = EXCLUDED.province_code,
               status = EXCLUDED.status, sector_group = EXCLUDED.sector_group,
               kbli_code = EXCLUDED.kbli_code, designated = EXCLUDED.designated,
               formed_on = EXCLUDED.formed_on, decree_date = EXCLUDED.decree_date,
               updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at,
               fig_year = EXCLUDED.fig_year, business_units = EXCLUDED.business_units,
               workers_male = EXCLUDED.workers_male, workers_female = EXCLUDED.workers_female,
               investment = EXCLUDED.investment, production_value = EXCLUDED.production_value,
               material_value = EXCLUDED.material_value;
        RETURN;
    END IF;
    INSERT INTO sentra_stat AS t (sentra_id, regency_code, province_code, status,
                                  sector_group, kbli_code, designated, formed_on,
                                  decree_date, updated_at, deleted_at, fig_year,
                                  business_units, workers_male, workers_female,
                                  investment, production_value, material_value)
    SELECT s.id, s.regency_code, s.province_code, s.status, s.sector_group,
           s.kbli_code, s.designated,
           coalesce(s.formed_on, (s.created_at AT TIME ZONE 'Asia/Jayapura')::date),
           s.decree_date, s.updated_at, s.deleted_at, f.year, f.business_units,
           f.workers_male, f.workers_female, f.investment, f.production_value,
           f.material_value
      FROM sentra s
      LEFT JOIN LATERAL (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id
                          ORDER BY x.year DESC LIMIT 1) f ON true
     WHERE s.id = ANY (p_ids)
    ON CONFLICT (sentra_id) DO UPDATE SET
           regency_code = EXCLUDED.regency_code, province_code = EXCLUDED.province_code,
           status = EXCLUDED.status, sector_group = EXCLUDED.sector_group,
           kbli_code = EXCLUDED.kbli_code, designated = EXCLUDED.designated,
           formed_on = EXCLUDED.formed_on, decree_date = EXCLUDED.decree_date,
           updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at,
           fig_year = EXCLUDED.fig_year, business_units = EXCLUDED.business_units,
           workers_male = EXCLUDED.workers_male, workers_female = EXCLUDED.workers_female,
           investment = EXCLUDED.investment, production_value = EXCLUDED.production_value,
           material_value = EXCLUDED.material_value;
END $$;

-- Same statements as migrations/0004_sentra_functions.sql, plans kept.
CREATE OR REPLACE FUNCTION sentra_put_figures(p_id uuid, p_figures jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sentra_figures WHERE sentra_id = p_id;
    INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male,
                                workers_female, investment, production_value,
                                material_value, capacity, capacity_unit,
                                export_share_bp, export_destinations)
    SELECT p_id, x.year, coalesce(x.business_units, 0), coalesce(x.workers_male, 0),
           coalesce(x.workers_female, 0), coalesce(x.investment, 0),
           coalesce(x.production_value, 0), coalesce(x.material_value, 0),
           coalesce(x.capacity, 0), coalesce(x.capacity_unit, ''),
           coalesce(x.export_share_bp, 0), coalesce(x.export_destinations, '{}')
      FROM jsonb_to_recordset(coalesce(p_figures, '[]')) AS x(
           year smallint, business_units integer, workers_male integer,
           workers_female integer, investment bigint, production_value bigint,
           material_value bigint, capacity bigint, capacity_unit text,
           export_share_bp integer, export_destinations text[]);
END $$;

CREATE OR REPLACE FUNCTION sentra_figures_json(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('year', year,
                                                         'business_units', business_units)),
                            '[]'::jsonb)
              FROM sentra_figures WHERE sentra_id = p_id);
END $$;

-- The change row carries the record's regency from the start, so that
-- sync_change_scope (migrations/0006_sync.sql) need not read the record
-- back; it still finds the previous change's regency for updates.
CREATE OR REPLACE FUNCTION sentra_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                                   regency_code)
        VALUES (NEW.id, 'C', NULL, NEW.version, NEW.updated_by, NEW.regency_code);
    ELSE
        INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                                   regency_code)
        VALUES (NEW.id,
                CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL
                     THEN 'D' ELSE 'U' END,
                OLD.version, NEW.version, NEW.updated_by, NEW.regency_code);
    END IF;
    RETURN NULL;
END $$;
