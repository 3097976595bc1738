-- The change rows of new records, one INSERT per statement: an INSERT of
-- many records into sentra (a set-wise push, migration 0011; COPY; a bulk
-- load) writes their change rows together from the statement's transition
-- table instead of one PL/pgSQL call and one INSERT per record (and so one
-- NOTIFY trigger call per statement, migration 0012, not one per record).
-- The same rows as sentra_log (migrations/0003_sentra.sql, 0009_perf.sql)
-- writes for an INSERT, in the order the records were inserted; updates
-- keep the row trigger, which needs OLD.

DROP TRIGGER sentra_log ON sentra;

CREATE FUNCTION sentra_log_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code)
    SELECT n.id, 'C', NULL, n.version, n.updated_by, n.regency_code FROM new_rows n;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_log_ins AFTER INSERT ON sentra
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_log_inserted();
CREATE TRIGGER sentra_log AFTER UPDATE ON sentra
    FOR EACH ROW EXECUTE FUNCTION sentra_log();
