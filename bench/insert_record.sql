-- pgbench script: one record, one transaction, one statement (a sentra and
-- its figures year, into the real tables, every rule, trigger and index
-- firing): what a client without batches would do. The yardstick for
-- PushChanges in bench/run.sh and scripts/bench-sync.sh.
\set n random(1, 1000000000)
WITH s AS (INSERT INTO sentra (id, regency_code, name, commodity, main_product, kbli_code,
                               kbli_version, sector_group, status, formed_on)
           VALUES (gen_random_uuid(), '18.71', 'Sentra Pgbench ' || :n, 'Keripik pisang',
                   'Keripik', '10792', 2020, 1, 1, '2021-03-15')
           RETURNING id)
INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male, workers_female,
                            investment, production_value)
SELECT id, 2024, 12, 20, 31, 250000000, 900000000 FROM s;
