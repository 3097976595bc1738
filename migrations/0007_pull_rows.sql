-- sentra_pull: every record as PullChanges sends it, printed once when it
-- is written instead of at every pull.
--
-- A pull page joins its feed rows (migrations/0006_sync.sql) to the
-- records. Printing 5000 records (some 27 columns and 2 to 3 figures years
-- each) as text took PostgreSQL about 55 ms, two thirds of the statement;
-- reading them already printed, one text per record, takes about 20 ms
-- (docs/BENCHMARKS.md, "Full pull"). Records are read far more often than
-- written: every district app, every provincial server and the ministry's
-- systems pull the same records, each written a few times a year.
--
-- Kept, like sentra_stat, by the statement-level triggers of
-- migrations/0005_stats.sql, so every writer keeps it right in the same
-- transaction: at any snapshot sentra_pull says what sentra and
-- sentra_figures say. A hard DELETE of sentra cascades.

CREATE TABLE sentra_pull (
    sentra_id    uuid PRIMARY KEY REFERENCES sentra (id) ON DELETE CASCADE,
    regency_code text NOT NULL,          -- scope, as in sentra
    version      bigint NOT NULL,
    deleted      boolean NOT NULL,       -- deleted_at IS NOT NULL
    packed       text NOT NULL
);

-- packed: the columns of the view sentra_api from regency_code to
-- province_code (server/sentra_row.h, SENTRA_COL_REGENCY to
-- SENTRA_COL_PROVINCE), each printed as that view prints it, '' for NULL,
-- separated by U+001F; then U+001D and the figures years in year order,
-- separated by U+001E, each as year, business_units, workers_male,
-- workers_female, investment, production_value, material_value,
-- capacity, export_share_bp, export_destinations (joined by commas) and
-- capacity_unit, separated by U+001F. No text column can hold U+001D to
-- U+001F (the CHECK constraints of migrations/0003_sentra.sql refuse
-- control characters, the address all but tab, newline and carriage
-- return), so the separators are unambiguous. server/sentra_row.c sentra__from_pull reads it.
CREATE VIEW sentra_pull_src AS
SELECT s.id AS sentra_id, s.regency_code, s.version, s.deleted_at IS NOT NULL AS deleted,
       format(replace('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s',
                      ' ', E'\x1f'),
              s.regency_code, s.district_code, s.village_code, s.address,
              s.latitude, s.longitude, s.name, s.commodity, s.main_product,
              s.kbli_code, s.kbli_version, s.sector_group, s.status,
              to_char(s.formed_on, 'YYYY-MM-DD'), s.decree_number,
              to_char(s.decree_date, 'YYYY-MM-DD'), s.decree_official,
              s.contact_name, s.contact_phone, s.version,
              (extract(epoch FROM s.created_at) * 1000)::bigint,
              (extract(epoch FROM s.updated_at) * 1000)::bigint,
              s.created_by, s.updated_by, s.province_code)
       || E'\x1d' ||
       array_to_string(ARRAY(
           SELECT concat_ws(E'\x1f', f.year, f.business_units, f.workers_male,
                            f.workers_female, f.investment, f.production_value,
                            f.material_value, f.capacity, f.export_share_bp,
                            array_to_string(f.export_destinations, ','), f.capacity_unit)
             FROM sentra_figures f WHERE f.sentra_id = s.id ORDER BY f.year), E'\x1e')
       AS packed
  FROM sentra s;

-- Reprints the records p_ids. Floats print as the service's own sessions
-- print them (shortest exact form), whatever the writer's session says.
-- One id (every write of the service) has its own statement, for the
-- reason sentra_stat_sync gives (migrations/0005_stats.sql).
CREATE FUNCTION sentra_pull_sync(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql SET extra_float_digits = 1 AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    ELSIF cardinality(p_ids) = 1 THEN
        INSERT INTO sentra_pull AS t SELECT * FROM sentra_pull_src WHERE sentra_id = p_ids[1]
        ON CONFLICT (sentra_id) DO UPDATE SET
               regency_code = EXCLUDED.regency_code, version = EXCLUDED.version,
               deleted = EXCLUDED.deleted, packed = EXCLUDED.packed;
    ELSE
        INSERT INTO sentra_pull AS t SELECT * FROM sentra_pull_src WHERE sentra_id = ANY (p_ids)
        ON CONFLICT (sentra_id) DO UPDATE SET
               regency_code = EXCLUDED.regency_code, version = EXCLUDED.version,
               deleted = EXCLUDED.deleted, packed = EXCLUDED.packed;
    END IF;
END $$;

-- The statistics triggers keep both tables: one trigger firing and one
-- pass over the transition table per statement, not two.
CREATE OR REPLACE FUNCTION sentra_stat_on_sentra() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT id FROM new_rows);
BEGIN
    PERFORM sentra_stat_sync(ids);
    PERFORM sentra_pull_sync(ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sentra_stat_on_figures_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT sentra_id FROM new_rows);
BEGIN
    PERFORM sentra_stat_sync(ids);
    PERFORM sentra_pull_sync(ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sentra_stat_on_figures_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT sentra_id FROM old_rows);
BEGIN
    PERFORM sentra_stat_sync(ids);
    PERFORM sentra_pull_sync(ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sentra_stat_on_figures_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sentra_stat SET fig_year = NULL, business_units = NULL, workers_male = NULL,
           workers_female = NULL, investment = NULL, production_value = NULL,
           material_value = NULL
     WHERE fig_year IS NOT NULL;
    PERFORM sentra_pull_sync(ARRAY(SELECT sentra_id FROM sentra_pull));
    RETURN NULL;
END $$;

-- The records already stored when this migration runs.
DO $$ BEGIN PERFORM sentra_pull_sync(ARRAY(SELECT id FROM sentra)); END $$;
