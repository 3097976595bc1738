-- Statistics sync of many records at once (a COPY, a bulk INSERT, a push
-- of new records): back to a LANGUAGE sql function, as in migrations/
-- 0005_stats.sql. Migration 0009 moved the whole of sentra_stat_sync to
-- PL/pgSQL, which plans the list statement with the list's values: for
-- 50,000 ids that plan measured 25 % slower (3.05 s against 2.3 to 2.5 s)
-- than the SQL function's plan, made without them. A single id (every
-- write of the service) stays in PL/pgSQL with its kept plan.

CREATE FUNCTION sentra_stat_sync_many(p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
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
$$;

CREATE OR REPLACE FUNCTION sentra_stat_sync(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_ids) > 1 THEN
        PERFORM sentra_stat_sync_many(p_ids);
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
END $$;
