-- PushChanges of new records, applied set-wise: the same records, figures,
-- change rows, statistics and stored outcomes as sync_push's loop, for
-- about half the work per record (docs/BENCHMARKS.md, "Write path and pull
-- performance").
--
-- sync_push (migrations/0006_sync.sql) applies a batch one mutation at a
-- time, each through sentra_create in a subtransaction of its own: per
-- record, some 25 statements, two subtransactions and a statement-level
-- statistics trigger run three times. A batch that only creates records,
-- all inside the token's scope (the common case: a district app's first
-- sync, or a day of field work), is now tried first as a few statements
-- over the whole batch: the claims, one INSERT of the records, one of
-- their figures, the deferred designation rule, the outcomes. The rules
-- hold as for any writer: the row triggers and constraints of migrations
-- 0003 to 0007 check every record, the designation rule runs before the
-- outcomes are stored. If anything at all fails (a record the rules refuse,
-- an id already used, a mutation id seen before, a concurrent writer), the
-- attempt is undone as a whole and the batch goes through the loop as
-- before, which finds and reports each outcome exactly as it always did.

-- Returns true when every mutation of the batch was applied here, false
-- (with nothing changed) when the batch must go through the loop.
CREATE FUNCTION sync_push_new_records(p_token uuid, p_role text, p_region text,
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
        -- Claim every mutation id; one seen before (or being pushed right
        -- now: this waits for that transaction) sends the batch to the loop.
        INSERT INTO sync_mutation (token_id, client_id, mutation_id, outcome)
        SELECT p_token, p_client, x.e ->> 'm', 0
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
        UPDATE sync_mutation s SET outcome = 1, sentra_id = (x.e ->> 'id')::uuid, version = 1
          FROM jsonb_array_elements(p_batch) AS x(e)
         WHERE s.token_id = p_token AND s.client_id = p_client AND s.mutation_id = x.e ->> 'm';
        RETURN true;
    EXCEPTION WHEN OTHERS THEN
        -- Everything above is undone; the loop decides each outcome.
        RETURN false;
    END;
END $$;

-- sync_push as in migrations/0006_sync.sql, trying the set-wise path first.
CREATE OR REPLACE FUNCTION sync_push(p_token uuid, p_role text, p_region text, p_client text,
                          p_atomic boolean, p_batch jsonb)
RETURNS TABLE (rec sentra_rows, idx int, outcome smallint, version bigint,
               violations text)
LANGUAGE plpgsql AS $$
DECLARE
    res sync_result[] := '{}';
    r sync_result;
    m jsonb;
    i int := 0;
    mid text;
    failed int := -1;
    failed_mid text;
BEGIN
    IF jsonb_typeof(p_batch) <> 'array' OR jsonb_array_length(p_batch) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid batch',
            DETAIL = 'mutations: at most 500 per push';
    END IF;
    IF random() < 0.01 THEN
        DELETE FROM sync_mutation WHERE created_at < now() - interval '30 days';
    END IF;
    IF sync_push_new_records(p_token, p_role, p_region, p_client, p_batch) THEN
        RETURN QUERY
            SELECT NULL::sentra_rows, (x.o - 1)::int, 1::smallint, 1::bigint, NULL::text
              FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(e, o)
             ORDER BY x.o;
        RETURN;
    END IF;
    BEGIN
        FOR m IN SELECT e FROM jsonb_array_elements(p_batch) AS x(e) LOOP
            mid := m ->> 'm';
            -- Claim the mutation id. A concurrent push of the same id (a
            -- retry racing its original) waits here for the other
            -- transaction and then sees its stored outcome.
            INSERT INTO sync_mutation AS s (token_id, client_id, mutation_id, outcome)
            VALUES (p_token, p_client, mid, 0) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT i, s.outcome, s.sentra_id, s.version, s.violations, false
                  INTO r FROM sync_mutation s
                 WHERE s.token_id = p_token AND s.client_id = p_client AND s.mutation_id = mid;
            ELSIF m ? 'reject' THEN
                r := ROW(i, 3::smallint, NULL, NULL, m ->> 'reject', true)::sync_result;
            ELSE
                r := sync_apply(p_token, p_role, p_region, m);
                r.idx := i;
                r.fresh := true;
            END IF;
            IF r.fresh THEN
                UPDATE sync_mutation s SET outcome = r.outcome, sentra_id = r.sentra_id,
                       version = r.version, violations = r.violations
                 WHERE s.token_id = p_token AND s.client_id = p_client AND s.mutation_id = mid;
                IF r.outcome <> 1 AND failed < 0 THEN
                    failed := i;
                    failed_mid := mid;
                END IF;
            END IF;
            res := res || r;
            i := i + 1;
        END LOOP;
        IF p_atomic AND failed >= 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'SY001', MESSAGE = 'atomic batch refused';
        END IF;
    EXCEPTION WHEN SQLSTATE 'SY001' THEN
        -- Everything this call did is undone (claims included). Report the
        -- mutations that had applied as refused, naming the culprit.
        FOR j IN 1 .. cardinality(res) LOOP
            r := res[j];
            IF r.fresh AND r.outcome = 1 THEN
                r.outcome := 3;
                r.version := NULL;
                r.violations := format('atomic: not applied, because mutations[%s] (%s) was not',
                                       failed, failed_mid);
                res[j] := r;
            END IF;
        END LOOP;
    END;
    RETURN QUERY
        SELECT sr, x.idx, x.outcome, x.version, x.violations
          FROM unnest(res) x
          LEFT JOIN sentra_rows sr ON x.outcome = 2 AND sr.id = x.sentra_id
         ORDER BY x.idx, sr.fig_year;
END $$;
