-- Sync for district apps: the change feed's scope trigger, regional
-- indexes and wake-up signal, the exactly-once store of pushed mutations,
-- the batched push function (with its set-wise path for new records) and
-- feed compaction. docs/SYNC.md explains the guarantee and why it holds;
-- server/handlers_sync.c runs the pull statement and calls sync_push (one
-- SQL call per request).
--
-- The feed itself is sentra_change (migrations/0003_sentra.sql), written by
-- the triggers sentra_log_ins and sentra_log for every writer. A pull serves
-- its rows ordered by (txid, seq), only those with txid below the xmin of
-- the reading statement's snapshot: every such transaction has finished,
-- and every transaction that had not (or had not started) gets a txid >=
-- that xmin, so a change that becomes visible later always sorts after
-- everything already served.

-- ---------------------------------------------------------------- feed scope

-- Where the record was when it changed: sentra_change.regency_code and
-- old_regency_code (migrations/0003_sentra.sql), so a pull can filter the
-- feed by scope without joining the record, and a record moved to another
-- regency reaches both its old readers (as a tombstone: it left their scope)
-- and its new ones. The change-log triggers write regency_code; this
-- trigger fills it for any other writer and sets old_regency_code, only on
-- the change that moved the record.
CREATE FUNCTION sync_change_scope() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev text;
BEGIN
    IF NEW.regency_code IS NULL THEN
        SELECT s.regency_code INTO NEW.regency_code FROM sentra s WHERE s.id = NEW.sentra_id;
    END IF;
    IF NEW.op <> 'C' THEN
        -- The previous change of this record is committed: writers of one
        -- record are serialised by its row lock (sentra_lock_for_write).
        SELECT c.regency_code INTO prev FROM sentra_change c
         WHERE c.sentra_id = NEW.sentra_id ORDER BY c.seq DESC LIMIT 1;
        IF prev IS DISTINCT FROM NEW.regency_code THEN
            NEW.old_regency_code := prev;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sync_change_scope BEFORE INSERT ON sentra_change
    FOR EACH ROW EXECUTE FUNCTION sync_change_scope();

-- Indexes that let a pull scoped to one regency or one province read only
-- that region's part of the feed, in feed order, instead of walking the
-- national feed and filtering it (server/handlers_sync.c picks the shape
-- from the token's scope and the filter; docs/SYNC.md). The
-- old_regency_code ones are partial: only moves set that column.
CREATE INDEX sentra_change_regency
    ON sentra_change (regency_code, txid, seq);
CREATE INDEX sentra_change_old_regency
    ON sentra_change (old_regency_code, txid, seq) WHERE old_regency_code IS NOT NULL;
CREATE INDEX sentra_change_province
    ON sentra_change (split_part(regency_code, '.', 1), txid, seq);
CREATE INDEX sentra_change_old_province
    ON sentra_change (split_part(old_regency_code, '.', 1), txid, seq)
    WHERE old_regency_code IS NOT NULL;

-- Long polls: the server LISTENs on sentra_change and wakes its waiting
-- pulls. NOTIFY is delivered at commit (never for a rolled-back change) and
-- repeats within one transaction collapse into one. The payload names the
-- regencies/cities the statement's changes touched (a moved record names
-- its old regency too), comma-separated, so that long polls wake only the
-- pulls a change concerns: a server wakes a district token's pull only for
-- its regency, a province token's only for its province; national pulls
-- wake for every change. An empty payload still means "anything may have
-- changed" (server/call.c wait_concerns). With 514 districts polling at
-- once, a payload-less NOTIFY made every one of them query again at one
-- district's edit.
CREATE FUNCTION sync_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    codes text;
BEGIN
    SELECT string_agg(DISTINCT code, ',') INTO codes
      FROM (SELECT regency_code AS code FROM new_changes
            UNION ALL
            SELECT old_regency_code FROM new_changes) c
     WHERE code IS NOT NULL;
    -- NOTIFY payloads stop at 8000 bytes; all 514 codes take about 3.1 kB.
    IF codes IS NULL OR length(codes) > 7900 THEN
        codes := '';
    END IF;
    PERFORM pg_notify('sentra_change', codes);
    RETURN NULL;
END $$;

CREATE TRIGGER sync_notify AFTER INSERT ON sentra_change
    REFERENCING NEW TABLE AS new_changes
    FOR EACH STATEMENT EXECUTE FUNCTION sync_notify();

-- May (role, region), with an optional province/regency filter, see a
-- record of regency p_regency? One expression, so it inlines into the
-- pull's WHERE clause.
CREATE FUNCTION sync_visible(p_role text, p_region text, p_f_province text,
                             p_f_regency text, p_regency text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_regency IS NOT NULL
       AND sentra_can_read(p_role, p_region, p_regency, split_part(p_regency, '.', 1))
       AND (p_f_province IS NULL OR split_part(p_regency, '.', 1) = p_f_province)
       AND (p_f_regency IS NULL OR p_regency = p_f_regency)
$$;

-- ---------------------------------------------------------------- retention

-- Deletes the change rows that a later change of the same record
-- supersedes, when older than p_keep. Safe for every cursor: a pull serves
-- the record's current state, so a client behind the deleted row still gets
-- the record through the later row, and a client past it has seen it. The
-- latest change of every record (tombstones included) is always kept.
-- Returns the number of rows deleted.
CREATE FUNCTION sync_compact(p_keep interval DEFAULT interval '30 days')
RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM sentra_change c
         WHERE c.changed_at < now() - p_keep
           AND EXISTS (SELECT 1 FROM sentra_change d
                        WHERE d.sentra_id = c.sentra_id AND d.seq > c.seq)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- ---------------------------------------------------------------- push

-- One row per pushed mutation, per (token, client, mutation id), written in
-- the transaction that applied (or refused) it: the row exists exactly when
-- that outcome committed, so a repeat returns it and changes nothing.
-- outcome: MutationOutcome numbers (1 applied, 2 conflict, 3 rejected);
-- 0 only while the claiming transaction runs. Kept 30 days (sync_push
-- forgets older ones now and then; see docs/SYNC.md for why a very late
-- repeat still cannot apply twice).
CREATE TABLE sync_mutation (
    token_id    uuid NOT NULL,
    client_id   text NOT NULL CHECK (char_length(client_id) BETWEEN 1 AND 200),
    mutation_id text NOT NULL CHECK (char_length(mutation_id) BETWEEN 1 AND 200),
    outcome     smallint NOT NULL CHECK (outcome BETWEEN 0 AND 3),
    sentra_id   uuid,                -- the record (conflict: the one to show)
    version     bigint,              -- applied: the version produced
    violations  text,                -- rejected: "field: reason" lines
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, client_id, mutation_id)
);

CREATE INDEX sync_mutation_created ON sync_mutation (created_at);

CREATE TYPE sync_result AS (
    idx         int,                 -- 0-based position in the batch
    outcome     smallint,
    sentra_id   uuid,
    version     bigint,
    violations  text,
    fresh       boolean              -- applied by this call (not a repeat)
);

-- The canonical field names of a full replacement (server/validate.c
-- validate_field_name): an upsert of a known record replaces all of them.
CREATE FUNCTION sync_all_fields() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['regency_code', 'district_code', 'village_code', 'address',
                 'location', 'name', 'commodity', 'main_product', 'kbli_code',
                 'kbli_version', 'sector_group', 'status', 'formed_on',
                 'decree.number', 'decree.date', 'decree.official', 'figures',
                 'contact_name', 'contact_phone']
$$;

-- The outcome of a failed write of record p_id: a conflict (with the
-- record to show) when the token may read the record, else a rejection
-- that does not reveal the record.
CREATE FUNCTION sync_conflict_or_reject(p_role text, p_region text, p_id uuid,
                                        p_reason text)
RETURNS sync_result LANGUAGE plpgsql STABLE AS $$
DECLARE
    r sync_result;
BEGIN
    IF EXISTS (SELECT 1 FROM sentra s WHERE s.id = p_id
                AND sentra_can_read(p_role, p_region, s.regency_code, s.province_code)) THEN
        r.outcome := 2;
        r.sentra_id := p_id;
    ELSE
        r.outcome := 3;
        r.violations := 'sentra.id: ' || p_reason;
    END IF;
    RETURN r;
END $$;

-- Applies one mutation m (a record of the batch, see sync_push) inside a
-- subtransaction, so that a refused one undoes only itself. Returns its
-- outcome. Errors other than the refusals listed (deadlocks, lost
-- connections, bugs) propagate: the whole batch fails, nothing commits and
-- the client repeats it.
CREATE FUNCTION sync_apply(p_token uuid, p_role text, p_region text, m jsonb)
RETURNS sync_result LANGUAGE plpgsql AS $$
DECLARE
    r sync_result;
    v_id uuid := (m ->> 'id')::uuid;
    base bigint := coalesce((m ->> 'base')::bigint, 0);
    st text;
    msg text;
    det text;
BEGIN
    r.sentra_id := v_id;
    BEGIN
        IF (m ->> 'op')::int = 2 THEN
            SELECT d.version INTO r.version
              FROM sentra_delete(p_token, p_role, p_region, NULL, v_id, base) d;
        ELSIF base = 0 THEN
            PERFORM 1 FROM sentra_create(p_token, p_role, p_region, NULL, v_id,
                m ->> 'regency', m ->> 'district', m ->> 'village', m ->> 'address',
                (m ->> 'lat')::float8, (m ->> 'lon')::float8, m ->> 'name',
                m ->> 'commodity', m ->> 'main_product', m ->> 'kbli_code',
                (m ->> 'kbli_version')::smallint, (m ->> 'sector_group')::smallint,
                (m ->> 'status')::smallint, (m ->> 'formed_on')::date,
                m ->> 'decree_number', (m ->> 'decree_date')::date,
                m ->> 'decree_official', m ->> 'contact_name', m ->> 'contact_phone',
                m -> 'figures');
            r.version := 1;
        ELSE
            PERFORM 1 FROM sentra_update(p_token, p_role, p_region, NULL, v_id, base,
                sync_all_fields(),
                m ->> 'regency', m ->> 'district', m ->> 'village', m ->> 'address',
                (m ->> 'lat')::float8, (m ->> 'lon')::float8, m ->> 'name',
                m ->> 'commodity', m ->> 'main_product', m ->> 'kbli_code',
                (m ->> 'kbli_version')::smallint, (m ->> 'sector_group')::smallint,
                (m ->> 'status')::smallint, (m ->> 'formed_on')::date,
                m ->> 'decree_number', (m ->> 'decree_date')::date,
                m ->> 'decree_official', m ->> 'contact_name', m ->> 'contact_phone',
                m -> 'figures');
            r.version := base + 1;
        END IF;
        -- The deferred designation rule would otherwise run at commit,
        -- outside this subtransaction, and fail the whole batch: run it now.
        SET CONSTRAINTS ALL IMMEDIATE;
        SET CONSTRAINTS ALL DEFERRED;
        r.outcome := 1;
    EXCEPTION
        WHEN SQLSTATE 'SE003' OR integrity_constraint_violation OR data_exception
             OR SQLSTATE 'SE005' OR SQLSTATE 'SE007' OR SQLSTATE 'SE010' THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        r.version := NULL;
        IF st = 'SE003' THEN
            r.outcome := 3;
            r.violations := regexp_replace(coalesce(nullif(det, ''), msg), '^', 'sentra.', 'gn');
        ELSIF st = 'SE010' THEN
            r.outcome := 2;                     -- the version moved on
        ELSIF st = 'SE005' THEN
            -- no live record: a readable tombstone is a conflict
            r := sync_conflict_or_reject(p_role, p_region, v_id, 'no sentra with this id in your region');
        ELSIF st = 'SE007' THEN
            r.outcome := 3;
            r.violations := 'sentra.regency_code: ' || msg;
        ELSIF st = '23505' THEN
            -- a create of an id that exists
            r := sync_conflict_or_reject(p_role, p_region, v_id, 'is already used by another sentra');
        ELSE
            r.outcome := 3;
            r.violations := 'sentra: ' || msg;
        END IF;
    END;
    RETURN r;
END $$;

-- PushChanges of new records, applied set-wise: the same records, figures,
-- change rows, statistics and stored outcomes as sync_push's loop, for
-- about half the work per record (docs/BENCHMARKS.md, "Write path and pull
-- performance"). The loop applies a batch one mutation at a time, each
-- through sentra_create in a subtransaction of its own: per record, some 25
-- statements, two subtransactions and a statement-level statistics trigger
-- run three times. A batch that only creates records, all inside the
-- token's scope (the common case: a district app's first sync, or a day of
-- field work), is tried first as a few statements over the whole batch: the
-- claims, one INSERT of the records, one of their figures, the deferred
-- designation rule, the outcomes. The rules hold as for any writer: the row
-- triggers and constraints of migrations/0003_sentra.sql and
-- 0004_sentra_functions.sql check every record, the designation rule runs
-- before the outcomes are stored. If anything at all fails (a record the
-- rules refuse, an id already used, a mutation id seen before, a concurrent
-- writer), the attempt is undone as a whole and the batch goes through the
-- loop, which finds and reports each outcome exactly as it always did.
--
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

-- PushChanges. p_batch: a JSON array of mutations, each an object with
--   m          mutation id (text, required)
--   op         1 upsert, 2 delete
--   base       the version the client based it on (0: new to the client)
--   id         the record's UUID (chosen by the client)
--   reject     "field: reason" lines when the service's C validation
--              refused the record (then nothing else is read)
--   regency, district, village, address, lat, lon, name, commodity,
--   main_product, kbli_code, kbli_version (the year), sector_group, status,
--   formed_on, decree_number, decree_date, decree_official, contact_name,
--   contact_phone (text or null), figures (a JSON array of Figures)
-- Returns one row per mutation, in batch order: rec is the current record
-- (rows of sentra_rows, one per figures year) for a conflict, NULL
-- otherwise.
-- Atomic: either every mutation not seen before applies, or none does; a
-- refusal rolls the batch back and every mutation that would have applied
-- is reported REJECTED with the violation "atomic: ..." (and is not stored,
-- so the client may send it again as it is).
-- A batch of new records only is first tried set-wise
-- (sync_push_new_records, above); any other batch, or one that attempt
-- gives back, goes through the loop.
CREATE FUNCTION sync_push(p_token uuid, p_role text, p_region text, p_client text,
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
