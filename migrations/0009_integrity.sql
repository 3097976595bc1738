-- Integrity under every writer (issue 12): derived rows that stay right
-- when two writers touch one sentra at once, hard deletes that reach the
-- sync feed, compaction that keeps every scope's tombstones, replays that
-- stay inside the caller's scope, money bounded so that sums cannot
-- overflow, and a name for the designation CHECK. docs/DATA_MODEL.md,
-- docs/SYNC.md and docs/STATS.md say what each rule promises.

-- ---------------------------------------------------------------- derived rows

-- sentra_stat and sentra_pull (migrations/0005_stats.sql, 0007_pull_rows.sql)
-- are recomputed by statement-level triggers from the statement's view of
-- sentra and sentra_figures. Under READ COMMITTED that view could be stale:
-- a writer of figures alone took no lock on the sentra row, so a concurrent
-- writer of the same sentra computed its row from a snapshot without the
-- other's change, waited for the other's lock on the derived row, and then
-- upserted what it had computed (issue 12, item 2: figures lost after an
-- UPDATE of the sector; a newer figures year counted in the old sector).
-- sentra_pull escaped only by the order of the two upserts: the sentra_stat
-- upsert took the wait, and the reprint after it had a fresh snapshot.
--
-- The rule now: a derived row of sentra X is computed only by a statement
-- that runs after its transaction holds the row lock of X, and under READ
-- COMMITTED every statement of a PL/pgSQL function takes a new snapshot, so
-- the computation sees every change committed by an earlier holder of that
-- lock. Writers of a sentra row (INSERT, UPDATE) hold it already. Writers
-- of figures take it in their trigger (sentra_lock_rows, below) before
-- recomputing; that is the step that was missing. Every transaction that
-- changes a sentra's data thus holds X's lock when it last recomputes X and
-- keeps it until it ends, so the holders are serialised and the last one
-- computes from everything the others committed. At REPEATABLE READ or
-- SERIALIZABLE a writer's snapshot cannot move: one that meets this race
-- gets a serialization failure from the upsert of the derived row (its
-- snapshot cannot see the version there) and retries, as at those levels
-- any writer must.

-- The record as sentra_stat keeps it: one definition for the sync functions
-- and for sentra_derived_drift. Inlined by the planner, so the functions'
-- plans are those of the statement it replaces (a primary-key probe of
-- sentra and a backward index scan of its figures).
CREATE VIEW sentra_stat_src AS
SELECT s.id AS sentra_id, s.regency_code, s.province_code, s.status, s.sector_group,
       s.kbli_code, s.designated,
       coalesce(s.formed_on, (s.created_at AT TIME ZONE 'Asia/Jayapura')::date) AS formed_on,
       s.decree_date, s.updated_at, s.deleted_at, f.year AS fig_year, f.business_units,
       f.workers_male, f.workers_female, f.investment, f.production_value,
       f.material_value
  FROM sentra s
  LEFT JOIN LATERAL (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id
                      ORDER BY x.year DESC LIMIT 1) f ON true;

CREATE OR REPLACE FUNCTION sentra_stat_sync_many(p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO sentra_stat AS t (sentra_id, regency_code, province_code, status,
                                  sector_group, kbli_code, designated, formed_on,
                                  decree_date, updated_at, deleted_at, fig_year,
                                  business_units, workers_male, workers_female,
                                  investment, production_value, material_value)
    SELECT * FROM sentra_stat_src WHERE sentra_id = ANY (p_ids)
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
    SELECT * FROM sentra_stat_src WHERE sentra_id = p_ids[1]
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

-- Takes the row locks of the sentra p_ids (FOR NO KEY UPDATE: the mode of an
-- UPDATE that changes no key, so it waits for every other writer of those
-- rows and lets foreign-key checks through), in id order so that two
-- writers of the same sentra cannot deadlock here. Rows whose current
-- version this transaction wrote are skipped: it holds their lock already
-- (the service writes the sentra row before its figures, so its writes
-- take no second lock). Rows written in a subtransaction (sync pushes) are
-- locked again, which costs a lock record and is correct. One id has its
-- own statement, for the reason sentra_stat_sync gives
-- (migrations/0005_stats.sql).
CREATE FUNCTION sentra_lock_rows(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    ELSIF cardinality(p_ids) = 1 THEN
        PERFORM 1 FROM sentra s
         WHERE s.id = p_ids[1] AND s.xmin <> pg_current_xact_id()::xid
           FOR NO KEY UPDATE;
    ELSE
        -- a join, not "s.id = ANY (p_ids)": a generic plan of that may
        -- scan a whole index testing the array at every entry
        PERFORM 1 FROM unnest(p_ids) AS i(id) JOIN sentra s ON s.id = i.id
         WHERE s.xmin <> pg_current_xact_id()::xid
         ORDER BY s.id
           FOR NO KEY UPDATE OF s;
    END IF;
END $$;

-- The figures triggers: lock, then recompute (each PERFORM a statement of
-- its own, so the recomputation's snapshot is taken after the lock).
CREATE OR REPLACE FUNCTION sentra_stat_on_figures_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT sentra_id FROM new_rows ORDER BY 1);
BEGIN
    PERFORM sentra_lock_rows(ids);
    PERFORM sentra_stat_sync(ids);
    PERFORM sentra_pull_sync(ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sentra_stat_on_figures_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT sentra_id FROM old_rows ORDER BY 1);
BEGIN
    PERFORM sentra_lock_rows(ids);
    PERFORM sentra_stat_sync(ids);
    PERFORM sentra_pull_sync(ids);
    RETURN NULL;
END $$;

-- The sentra rows whose derived rows disagree with sentra and
-- sentra_figures: (id, 'sentra_stat' or 'sentra_pull'), a row missing or
-- extra included. Empty when the triggers did their work; for operators
-- after a bulk load with triggers disabled, and for the tests. Floats are
-- printed as sentra_pull_sync prints them.
CREATE FUNCTION sentra_derived_drift()
RETURNS TABLE (sentra_id uuid, derived text)
LANGUAGE sql STABLE SET extra_float_digits = 1 AS $$
    SELECT d.sentra_id, 'sentra_stat' FROM (
        (SELECT * FROM sentra_stat EXCEPT ALL SELECT * FROM sentra_stat_src)
        UNION
        (SELECT * FROM sentra_stat_src EXCEPT ALL SELECT * FROM sentra_stat)) d
    UNION
    SELECT d.sentra_id, 'sentra_pull' FROM (
        (SELECT * FROM sentra_pull EXCEPT ALL SELECT * FROM sentra_pull_src)
        UNION
        (SELECT * FROM sentra_pull_src EXCEPT ALL SELECT * FROM sentra_pull)) d
$$;

-- ---------------------------------------------------------------- hard deletes

-- A DELETE of a sentra row (psql, a loader; the service only tombstones)
-- used to leave no change row: an incremental puller kept the record for
-- ever, and a fresh pull sent a tombstone at the version it already held,
-- which "apply if newer" ignores (issue 12, item 3). Now every deleted row
-- is logged as a deletion (op D) at its version + 1, in the deleting
-- transaction, so every puller that could read the record gets a tombstone
-- above what it holds. The row itself is gone (its figures, sentra_stat and
-- sentra_pull rows cascade); the feed's D row stands for it, and sync_compact
-- always keeps it (the latest change of the record).
--
-- Its id stays taken, as a tombstone's does: a new record with that id would
-- start again at version 1, below the tombstone that apps already hold, and
-- would never reach them. sentra_purged remembers the ids, and inserting one
-- of them is refused (unique_violation: ALREADY_EXISTS through the service,
-- like any id in use).
CREATE TABLE sentra_purged (
    id         uuid PRIMARY KEY,
    version    bigint NOT NULL,       -- the version of the logged deletion
    purged_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION sentra_log_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code)
    SELECT o.id, 'D', o.version, o.version + 1, NULL, o.regency_code
      FROM old_rows o ORDER BY o.id;
    INSERT INTO sentra_purged (id, version)
    SELECT o.id, o.version + 1 FROM old_rows o;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_log_del AFTER DELETE ON sentra
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_log_deleted();

-- TRUNCATE fires no DELETE trigger: log every record the same way first.
CREATE FUNCTION sentra_log_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code)
    SELECT s.id, 'D', s.version, s.version + 1, NULL, s.regency_code
      FROM sentra s ORDER BY s.id;
    INSERT INTO sentra_purged (id, version)
    SELECT s.id, s.version + 1 FROM sentra s;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_log_truncate BEFORE TRUNCATE ON sentra
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_log_truncated();

-- The insert log of migrations/0003_sentra.sql, which now also refuses the
-- ids of deleted records (one probe of sentra_purged per statement: a hash
-- join over the inserted rows, nothing when the table is empty).
CREATE OR REPLACE FUNCTION sentra_log_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone uuid;
BEGIN
    SELECT n.id INTO gone FROM new_rows n JOIN sentra_purged p ON p.id = n.id LIMIT 1;
    IF gone IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '23505',
            MESSAGE = format('a sentra with id %s existed and was deleted: its id is not used again',
                             gone);
    END IF;
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code)
    SELECT n.id, 'C', NULL, n.version, n.updated_by, n.regency_code FROM new_rows n;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------- compaction

-- sync_compact of migrations/0006_sync.sql deleted every change row that a
-- later change of the same record superseded. A pull filters the feed by
-- scope, so "later" must be later *for the same readers*: after create in
-- 18.71, move to 18.72, update in 18.72, it deleted the move, the only row
-- district 18.71 could see after the create, and 18.71's apps behind it
-- never got their tombstone (issue 12, item 4).
--
-- A row is visible to the readers of its regency_code and of its
-- old_regency_code (a move; docs/SYNC.md, "Tombstones and scope"); every
-- pull scope (a regency, a province, the country) is a union of regencies.
-- So a row may go only when, for each of those one or two regencies, a
-- later row of the record touches that regency too. What stays is, per
-- record and per regency it has been in, the latest row touching that
-- regency; so the latest row of every record stays, and a reader of any
-- scope behind a deleted row still reaches a later row it can see, served
-- as the record's current state or as a tombstone.
CREATE OR REPLACE FUNCTION sync_compact(p_keep interval DEFAULT interval '30 days')
RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM sentra_change c
         WHERE c.changed_at < now() - p_keep
           AND EXISTS (SELECT 1 FROM sentra_change d
                        WHERE d.sentra_id = c.sentra_id AND d.seq > c.seq
                          AND c.regency_code IN (d.regency_code, d.old_regency_code))
           AND (c.old_regency_code IS NULL
                OR EXISTS (SELECT 1 FROM sentra_change d
                            WHERE d.sentra_id = c.sentra_id AND d.seq > c.seq
                              AND c.old_regency_code IN (d.regency_code, d.old_regency_code)))
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- ---------------------------------------------------------------- push replays

-- sync_push of migrations/0006_sync.sql, with one change in its last
-- statement: the record shown with a CONFLICT is read under the caller's
-- scope. A repeated mutation id returns its stored outcome, and a stored
-- CONFLICT was joined to the record as it is now, wherever it is now: after
-- a province moved the record out of a district, the district read it by
-- replaying an old mutation id (issue 12, item 5). A record the caller can
-- no longer read (moved away, or deleted by SQL) is shown as a pull would
-- show it: a tombstone with its id and current version, nothing else.
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
    -- A conflict's record: as the caller may read it now (one row per
    -- figures year), else its tombstone.
    RETURN QUERY
        SELECT CASE WHEN sr.id IS NOT NULL THEN sr ELSE tomb.t END,
               x.idx, x.outcome, x.version, x.violations
          FROM unnest(res) x
          LEFT JOIN sentra_rows sr ON x.outcome = 2 AND sr.id = x.sentra_id
               AND sentra_can_read(p_role, p_region, sr.regency_code, sr.province_code)
          LEFT JOIN LATERAL (
               SELECT jsonb_populate_record(NULL::sentra_rows, jsonb_build_object(
                          'id', x.sentra_id, 'deleted', true,
                          'version', coalesce(
                              (SELECT s.version FROM sentra s WHERE s.id = x.sentra_id),
                              (SELECT max(c.new_version) FROM sentra_change c
                                WHERE c.sentra_id = x.sentra_id)))) AS t
                WHERE x.outcome = 2 AND sr.id IS NULL) tomb ON true
         ORDER BY x.idx, sr.fig_year;
END $$;

-- ---------------------------------------------------------------- money bounds

-- Money figures (whole rupiah) are at most 10^14, Rp 100 trillion, in C
-- (server/services/validate.c, VALIDATE_MONEY_MAX) and here, for every
-- writer. One record holding 2^63 - 1 made every sum over it overflow, so
-- GetStatistics failed for its whole province (issue 12, item 9). Why this
-- bound (docs/DATA_MODEL.md, "Validation"): a medium industry invests at
-- most Rp 15 billion (Permenperin 64/2016), so a cluster of 5,000 of them
-- at that ceiling stays below it, while 92,233 figures at the bound still
-- fit a 64-bit sum; the statistics sum in numeric regardless
-- (server/services/handlers_stats.c).
--
-- Added NOT VALID, then validated where the stored rows allow: a database
-- that already holds a larger value keeps it (and a warning tells so) until
-- it is corrected, while every new or changed row is checked.
ALTER TABLE sentra_figures ADD CONSTRAINT sentra_figures_money_bound CHECK (
    investment <= 100000000000000 AND production_value <= 100000000000000
    AND material_value <= 100000000000000) NOT VALID;

DO $$
BEGIN
    ALTER TABLE sentra_figures VALIDATE CONSTRAINT sentra_figures_money_bound;
EXCEPTION WHEN check_violation THEN
    RAISE WARNING 'sentra_figures holds money values above 10^14 rupiah; they stay until corrected (SELECT sentra_id, year FROM sentra_figures WHERE greatest(investment, production_value, material_value) > 100000000000000)';
END $$;

-- ---------------------------------------------------------------- names

-- The CHECK "designated and revitalised sentra hold a decree" of
-- migrations/0003_sentra.sql was unnamed (PostgreSQL called it
-- sentra_check3); its name is what psql and loaders print when they break
-- it, so it says what it holds.
ALTER TABLE sentra RENAME CONSTRAINT sentra_check3 TO sentra_designated_decree;
