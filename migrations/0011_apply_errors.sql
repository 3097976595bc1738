-- PushChanges refusals without PostgreSQL's words.
--
-- sync_apply (0006) answered a mutation that broke a database rule the
-- service's C checks had missed with PostgreSQL's own message as the
-- violation's reason ("new row for relation \"sentra\" violates check
-- constraint ..."), which names the schema's constraints and may quote
-- input. Unary writes never did (call_db_error in server/core/call.c
-- answers a plain reason and logs the rest). The same now holds for
-- pushes: the reason is plain and the text goes to PostgreSQL's log (RAISE
-- LOG: below client_min_messages, so it never reaches the client). Only
-- that branch changes; the function is otherwise 0006's.

CREATE OR REPLACE FUNCTION sync_apply(p_token uuid, p_role text, p_region text, m jsonb)
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
            -- A rule the service's checks missed (a bug there): PostgreSQL's
            -- own words name constraints and quote input, so they go to the
            -- server's log, never to the client.
            RAISE LOG 'sync_apply: mutation % refused: % (SQLSTATE %, %)', v_id, msg, st, coalesce(det, '');
            r.outcome := 3;
            r.violations := CASE WHEN st LIKE '22%'
                                 THEN 'sentra: a value is malformed or out of range'
                                 ELSE 'sentra: breaks a rule of the registry' END;
        END IF;
    END;
    RETURN r;
END $$;
