-- Less work per written record, the same rules (docs/BENCHMARKS.md,
-- "Write path, 2026-11-29"). Every check still runs for every writer; what
-- goes is work that could not find anything.

-- The change-log triggers fill regency_code themselves, and a created
-- record has no earlier change to compare with: sync_change_scope
-- (migrations/0006_sync.sql) has nothing to do for those rows, so it is
-- not called for them (one PL/pgSQL call fewer per created record).
DROP TRIGGER sync_change_scope ON sentra_change;
CREATE TRIGGER sync_change_scope BEFORE INSERT ON sentra_change
    FOR EACH ROW WHEN (NEW.regency_code IS NULL OR NEW.op <> 'C')
    EXECUTE FUNCTION sync_change_scope();

-- The designation rule (migrations/0004_sentra_functions.sql) can only be
-- broken by a figures row that is added with fewer than 5 business units,
-- or by one that is changed or removed: adding a year with 5 or more
-- either makes it the latest (which then passes) or leaves the latest as it
-- was. The rule is queued at commit for those rows only; records turning
-- designated are still checked by sentra_check_designation.
DROP TRIGGER sentra_figures_check_designation ON sentra_figures;
CREATE CONSTRAINT TRIGGER sentra_figures_check_designation
    AFTER UPDATE OR DELETE ON sentra_figures
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sentra_figures_check_designation();
CREATE CONSTRAINT TRIGGER sentra_figures_check_designation_ins
    AFTER INSERT ON sentra_figures
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.business_units < 5)
    EXECUTE FUNCTION sentra_figures_check_designation();

-- Set-wise pushes (migrations/0006_sync.sql) store each claim with its
-- outcome at once instead of claiming, then updating every claim: one
-- statement and a row version per mutation fewer.
CREATE OR REPLACE FUNCTION sync_push_new_records(p_token uuid, p_role text, p_region text,
                                      p_client text, p_batch jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    n int := jsonb_array_length(p_batch);
    k int;
BEGIN
    -- Only new records (op 1, base 0, an id, not refused by the service),
    -- each in a regency this token may write: sentra_create would refuse
    -- the others before writing anything, the table cannot.
    IF n = 0 OR EXISTS (
        SELECT 1 FROM jsonb_array_elements(p_batch) AS x(e)
         WHERE e ? 'reject' OR jsonb_typeof(e) <> 'object'
            OR (e ->> 'op') IS DISTINCT FROM '1'
            OR coalesce(e ->> 'base', '0') <> '0'
            OR (e ->> 'id') IS NULL OR (e ->> 'm') IS NULL
            OR NOT coalesce(sentra_can_write(p_role, p_region, e ->> 'regency'), false)) THEN
        RETURN false;
    END IF;
    BEGIN
        -- Claim every mutation id with its outcome (applied, version 1): if
        -- anything below fails, the claims are undone with the rest. One
        -- seen before (or being pushed right now: this waits for that
        -- transaction) sends the batch to the loop.
        INSERT INTO sync_mutation (token_id, client_id, mutation_id, outcome, sentra_id, version)
        SELECT p_token, p_client, x.e ->> 'm', 1, (x.e ->> 'id')::uuid, 1
          FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(e, o)
         ORDER BY x.o
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS k = ROW_COUNT;
        IF k <> n THEN
            RAISE EXCEPTION USING ERRCODE = 'SY002', MESSAGE = 'not new';
        END IF;
        -- As sentra_create stores them (same defaults), in batch order, so
        -- the change rows follow the batch as they did.
        INSERT INTO sentra (id, regency_code, district_code, village_code, address,
                            latitude, longitude, name, commodity, main_product,
                            kbli_code, kbli_version, sector_group, status, formed_on,
                            decree_number, decree_date, decree_official,
                            contact_name, contact_phone, created_by, updated_by)
        SELECT (m ->> 'id')::uuid, m ->> 'regency', m ->> 'district', m ->> 'village',
               coalesce(m ->> 'address', ''), (m ->> 'lat')::float8, (m ->> 'lon')::float8,
               m ->> 'name', coalesce(m ->> 'commodity', ''), coalesce(m ->> 'main_product', ''),
               m ->> 'kbli_code', (m ->> 'kbli_version')::smallint,
               (m ->> 'sector_group')::smallint, (m ->> 'status')::smallint,
               (m ->> 'formed_on')::date, m ->> 'decree_number', (m ->> 'decree_date')::date,
               m ->> 'decree_official', coalesce(m ->> 'contact_name', ''),
               coalesce(m ->> 'contact_phone', ''), p_token, p_token
          FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(m, o)
         ORDER BY x.o;
        -- As sentra_put_figures stores them.
        INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male,
                                    workers_female, investment, production_value,
                                    material_value, capacity, capacity_unit,
                                    export_share_bp, export_destinations)
        SELECT (x.m ->> 'id')::uuid, f.year, coalesce(f.business_units, 0),
               coalesce(f.workers_male, 0), coalesce(f.workers_female, 0),
               coalesce(f.investment, 0), coalesce(f.production_value, 0),
               coalesce(f.material_value, 0), coalesce(f.capacity, 0),
               coalesce(f.capacity_unit, ''), coalesce(f.export_share_bp, 0),
               coalesce(f.export_destinations, '{}')
          FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(m, o),
               jsonb_to_recordset(coalesce(x.m -> 'figures', '[]')) AS f(
                   year smallint, business_units integer, workers_male integer,
                   workers_female integer, investment bigint, production_value bigint,
                   material_value bigint, capacity bigint, capacity_unit text,
                   export_share_bp integer, export_destinations text[])
         ORDER BY x.o;
        -- The designation rule (deferred triggers), now, inside this attempt.
        SET CONSTRAINTS ALL IMMEDIATE;
        SET CONSTRAINTS ALL DEFERRED;
        RETURN true;
    EXCEPTION WHEN OTHERS THEN
        -- Everything above is undone; the loop decides each outcome.
        RETURN false;
    END;
END $$;
