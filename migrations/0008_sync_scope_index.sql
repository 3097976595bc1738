-- Sync: indexes that let a pull scoped to one regency or one province read
-- only that region's part of the change feed, in feed order, instead of
-- walking the national feed and filtering it (server/handlers_sync.c picks
-- the shape from the token's scope and the filter; docs/SYNC.md).
-- The old_regency_code ones are partial: only moves set that column.

CREATE INDEX sentra_change_regency
    ON sentra_change (regency_code, txid, seq);
CREATE INDEX sentra_change_old_regency
    ON sentra_change (old_regency_code, txid, seq) WHERE old_regency_code IS NOT NULL;
CREATE INDEX sentra_change_province
    ON sentra_change (split_part(regency_code, '.', 1), txid, seq);
CREATE INDEX sentra_change_old_province
    ON sentra_change (split_part(old_regency_code, '.', 1), txid, seq)
    WHERE old_regency_code IS NOT NULL;
