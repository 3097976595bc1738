-- Statistics: the scope indexes of sentra_stat become hash indexes.
--
-- Measured (docs/STATS.md): with B-tree indexes on province_code and
-- regency_code, the planner answered a national GROUP BY province by
-- walking the province index in order (a sorted GroupAggregate and a merge
-- join with region, costed cheap with random_page_cost 1.1), touching one
-- heap page per row: 9,100 buffer hits and about 10 ms for 20,000 sentra,
-- against 556 pages and about 6 ms for a sequential scan with a hash
-- aggregate. A hash index serves the equality lookups the district and
-- province scopes need (a bitmap scan of a few hundred rows) and offers no
-- order, so national groupings scan the table.
DROP INDEX sentra_stat_regency;
DROP INDEX sentra_stat_province;
CREATE INDEX sentra_stat_regency ON sentra_stat USING hash (regency_code) WHERE deleted_at IS NULL;
CREATE INDEX sentra_stat_province ON sentra_stat USING hash (province_code) WHERE deleted_at IS NULL;
