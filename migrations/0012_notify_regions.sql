-- Long polls wake only the pulls a change concerns: NOTIFY sentra_change
-- now names the regencies/cities the statement's changes touched (a moved
-- record names its old regency too), comma-separated. A server wakes a
-- district token's pull only for its regency, a province token's only for
-- its province; national pulls wake for every change. An empty payload
-- still means "anything may have changed" (server/call.c wait_concerns).
-- With 514 districts polling at once, one district's edit used to make
-- every one of them query again.

DROP TRIGGER sync_notify ON sentra_change;

CREATE OR REPLACE FUNCTION sync_notify() RETURNS trigger LANGUAGE plpgsql AS $$
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
