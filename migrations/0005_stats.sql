-- Statistics: sentra_stat, one narrow row per sentra holding exactly what
-- GetStatistics and GetTimeSeries group, filter and sum: the sentra's
-- classification (region, status, sector, KBLI, dates) and its latest
-- figures. The statistics scan this table (about 120 bytes a row) instead of
-- joining the wide sentra table to the latest of every sentra's figures,
-- which measured 3 to 5 times slower at national scale. docs/STATS.md
-- explains the choice and the measurements.
--
-- Maintained by statement-level triggers on sentra and sentra_figures
-- (with transition tables, so a bulk load costs one pass, not one per row):
-- every writer keeps it right, whoever it is. Tombstoned sentra keep their
-- row with deleted_at set; the statistics exclude them as every reader does.

CREATE TABLE sentra_stat (
    sentra_id        uuid PRIMARY KEY REFERENCES sentra (id) ON DELETE CASCADE,
    -- copied from sentra; the column names are sentra's, so the shared
    -- filter conditions (server/filter.c) apply to either table
    regency_code     text NOT NULL,
    province_code    text NOT NULL,
    status           smallint NOT NULL,
    sector_group     smallint NOT NULL,
    kbli_code        text NOT NULL,
    designated       boolean NOT NULL,
    -- the formation date; when the record has none, the day it was
    -- registered (in WIT, like sentra_today()): every sentra has a year
    -- in which it counts as formed
    formed_on        date NOT NULL,
    decree_date      date,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    -- the figures of the greatest reporting year; NULL when none
    fig_year         smallint,
    business_units   integer,
    workers_male     integer,
    workers_female   integer,
    investment       bigint,
    production_value bigint,
    material_value   bigint
);

-- District and province scopes read a slice; national reads all (a scan).
-- Hash indexes, not B-trees (measured, docs/STATS.md): with B-tree indexes
-- on province_code and regency_code, the planner answered a national GROUP
-- BY province by walking the province index in order (a sorted
-- GroupAggregate and a merge join with region, costed cheap with
-- random_page_cost 1.1), touching one heap page per row: 9,100 buffer hits
-- and about 10 ms for 20,000 sentra, against 556 pages and about 6 ms for a
-- sequential scan with a hash aggregate. A hash index serves the equality
-- lookups the district and province scopes need (a bitmap scan of a few
-- hundred rows) and offers no order, so national groupings scan the table.
CREATE INDEX sentra_stat_regency ON sentra_stat USING hash (regency_code) WHERE deleted_at IS NULL;
CREATE INDEX sentra_stat_province ON sentra_stat USING hash (province_code) WHERE deleted_at IS NULL;

-- Recomputes the rows of the given sentra from sentra and sentra_figures.
-- Concurrent writers of one sentra are serialised by the write functions'
-- row lock on sentra; the upsert keeps any other writer from failing on a
-- duplicate key regardless.
--
-- Two functions for speed (docs/BENCHMARKS.md, "Write path and pull
-- performance"). sentra_stat_sync_many, for many ids at once (a COPY, a bulk
-- INSERT, a set-wise push), is LANGUAGE sql: its plan is made without the
-- list's values, and a PL/pgSQL plan made with them measured 25 % slower
-- for 50,000 ids (3.05 s against 2.3 to 2.5 s).
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

-- sentra_stat_sync, which the triggers call, is PL/pgSQL: a LANGUAGE sql
-- function that is not inlined is parsed and planned again at every call in
-- PostgreSQL 15, and that planning made it the most expensive function of a
-- write (three calls per created record, about 1.2 ms each). PL/pgSQL keeps
-- its plan for the session. A single id (every write of the service) gets
-- its own copy of the statement: with "= ANY (p_ids)" the plan cache never
-- trusts the generic plan (it estimates 10 rows where a custom plan sees 1)
-- and plans every call again. An empty list (a DELETE of figures that found
-- none, as every create does) costs nothing; several go to
-- sentra_stat_sync_many.
CREATE FUNCTION sentra_stat_sync(p_ids uuid[]) RETURNS void
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

-- PostgreSQL allows transition tables only on single-event triggers, hence
-- one trigger per event. sentra_id / id name the touched sentra.
CREATE FUNCTION sentra_stat_on_sentra() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sentra_stat_sync(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION sentra_stat_on_figures_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sentra_stat_sync(ARRAY(SELECT DISTINCT sentra_id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION sentra_stat_on_figures_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sentra_stat_sync(ARRAY(SELECT DISTINCT sentra_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION sentra_stat_on_figures_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sentra_stat SET fig_year = NULL, business_units = NULL, workers_male = NULL,
           workers_female = NULL, investment = NULL, production_value = NULL,
           material_value = NULL
     WHERE fig_year IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_stat_ins AFTER INSERT ON sentra
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_sentra();
CREATE TRIGGER sentra_stat_upd AFTER UPDATE ON sentra
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_sentra();
-- (a hard DELETE of sentra cascades to sentra_stat through the foreign key)

CREATE TRIGGER sentra_stat_fig_ins AFTER INSERT ON sentra_figures
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_figures_new();
-- An update may move figures to another sentra: resync old and new owners.
CREATE TRIGGER sentra_stat_fig_upd_old AFTER UPDATE ON sentra_figures
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_figures_old();
CREATE TRIGGER sentra_stat_fig_upd_new AFTER UPDATE ON sentra_figures
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_figures_new();
CREATE TRIGGER sentra_stat_fig_del AFTER DELETE ON sentra_figures
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_figures_old();
CREATE TRIGGER sentra_stat_fig_truncate AFTER TRUNCATE ON sentra_figures
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_stat_on_figures_truncate();

-- The records already stored when this migration runs.
DO $$ BEGIN PERFORM sentra_stat_sync(ARRAY(SELECT id FROM sentra)); END $$;
