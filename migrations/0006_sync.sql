-- Sync for district apps: the change feed's scope columns and wake-up
-- signal, the exactly-once store of pushed mutations, the batched push
-- function and feed compaction. docs/SYNC.md explains the guarantee and
-- why it holds; server/handlers_sync.c runs the pull statement and calls
-- sync_push (one SQL call per request).
--
-- The feed itself is sentra_change (migrations/0003_sentra.sql), written by
-- the trigger sentra_log for every writer. A pull serves its rows ordered by
-- (txid, seq), only those with txid below the xmin of the reading
-- statement's snapshot: every such transaction has finished, and every
-- transaction that had not (or had not started) gets a txid >= that xmin,
-- so a change that becomes visible later always sorts after everything
-- already served.

-- ---------------------------------------------------------------- feed scope

-- Where the record was when it changed, so a pull can filter the feed by
-- scope without joining the record, and a record moved to another regency
-- reaches both its old readers (as a tombstone: it left their scope) and its
-- new ones. old_regency_code is set only on the change that moved it.
ALTER TABLE sentra_change
    ADD COLUMN regency_code text,
    ADD COLUMN old_regency_code text;

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

UPDATE sentra_change c SET regency_code = s.regency_code
  FROM sentra s WHERE s.id = c.sentra_id AND c.regency_code IS NULL;

-- Long polls: the server LISTENs on sentra_change and wakes its waiting
-- pulls. NOTIFY is delivered at commit (never for a rolled-back change) and
-- repeats within one transaction collapse into one.
CREATE FUNCTION sync_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sentra_change', '');
    RETURN NULL;
END $$;

CREATE TRIGGER sync_notify AFTER INSERT ON sentra_change
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
