#!/bin/bash
# gen-national.sh: N synthetic sentra (default 20,000) spread over all 514
# regencies/cities (one each first, then at random), with figures for 2022,
# 2023 and 2024, for benchmarks at national scale. SYNTHETIC: every name
# ends in "(data sintetis)".
#
#   scripts/gen-national.sh CONNINFO [N]
#
# Deterministic (setseed: the same N gives the same records, ids included:
# md5('sentra-national-<i>')) and idempotent (records already there are
# left alone). Fast: two INSERT ... SELECT statements over generate_series
# in one transaction; every trigger and CHECK constraint runs as for any
# other writer (rules, change log, latest figures).
#
# Sector shares follow the ministry's 2017 national figures (food 40 %,
# crafts 25 %, textiles 15 %, chemicals/building 10 %, furniture 5 %,
# metal 5 %); statuses: 62 % designated, 8 % revitalised, 22 % formed,
# 5 % inactive, 3 % revoked. Needs the region table (migrations/0001).
set -eu

[ $# -ge 1 ] || { echo "usage: $0 CONNINFO [N]" >&2; exit 2; }
CONN=$1
N=${2:-20000}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 10000000 ] ||
    { echo "gen-national: N must be a whole number from 1 to 10000000" >&2; exit 2; }

start=$(date +%s%N)
psql "$CONN" -X -q -v ON_ERROR_STOP=1 -v n="$N" <<'EOF'
\set QUIET on
BEGIN;
\o /dev/null
SELECT setseed(0.20220927);
\o

-- Commodity templates, 20 rows weighted by sector (8 food, 5 crafts,
-- 3 textiles, 2 chemicals/building, 1 furniture, 1 metal).
CREATE TEMP TABLE gen_tpl (k int, commodity text, product text, kbli text,
                           sector smallint, unit text) ON COMMIT DROP;
INSERT INTO gen_tpl VALUES
 (1, 'Kopi', 'Kopi bubuk', '10761', 1, 'kg'),
 (2, 'Keripik pisang', 'Keripik pisang', '10794', 1, 'kg'),
 (3, 'Ubi kayu', 'Keripik singkong', '10794', 1, 'kg'),
 (4, 'Gula aren', 'Gula semut', '10721', 1, 'kg'),
 (5, 'Ikan', 'Ikan asin', '10213', 1, 'kg'),
 (6, 'Tahu tempe', 'Tempe', '10392', 1, 'kg'),
 (7, 'Kerupuk', 'Kerupuk ikan', '10299', 1, 'kg'),
 (8, 'Roti dan kue', 'Kue kering', '10710', 1, 'kg'),
 (9, 'Anyaman bambu', 'Tikar dan keranjang', '16291', 4, 'pcs'),
 (10, 'Gerabah', 'Gerabah hias', '23931', 4, 'pcs'),
 (11, 'Kerajinan kayu', 'Ukiran kayu', '16299', 4, 'pcs'),
 (12, 'Perhiasan', 'Perak', '32112', 4, 'pcs'),
 (13, 'Kerajinan rotan', 'Keranjang rotan', '16293', 4, 'pcs'),
 (14, 'Tenun', 'Kain tenun', '13121', 2, 'm'),
 (15, 'Batik', 'Kain batik', '13134', 2, 'm'),
 (16, 'Konveksi', 'Pakaian jadi', '14111', 2, 'pcs'),
 (17, 'Batu bata', 'Batu bata merah', '23921', 3, 'pcs'),
 (18, 'Minyak atsiri', 'Minyak nilam', '20294', 3, 'kg'),
 (19, 'Mebel kayu', 'Mebel', '31001', 5, 'pcs'),
 (20, 'Pandai besi', 'Alat pertanian', '25932', 6, 'pcs');

CREATE TEMP TABLE gen_reg ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY code)::int AS k, code, name
  FROM region WHERE level IN ('regency', 'city');

-- One row of random draws per sentra, drawn in a fixed order.
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT i, random() AS r_reg, random() AS r_tpl, random() AS r_status,
       random() AS r_formed, random() AS r_decree, random() AS r_units,
       random() AS r_workers, random() AS r_female, random() AS r_inv,
       random() AS r_prod, random() AS r_mat
  FROM generate_series(1, :n) AS i
 ORDER BY i;

CREATE TEMP TABLE gen_s ON COMMIT DROP AS
SELECT g.*, md5('sentra-national-' || g.i)::uuid AS id, r.code AS regency, r.name AS regency_name,
       t.commodity, t.product, t.kbli, t.sector, t.unit,
       CASE WHEN g.r_status < 0.62 THEN 2 WHEN g.r_status < 0.70 THEN 3
            WHEN g.r_status < 0.92 THEN 1 WHEN g.r_status < 0.97 THEN 4 ELSE 5 END::smallint AS status,
       date '2005-01-01' + floor(g.r_formed * 7100)::int AS formed_on
  FROM gen g
  -- the first 514 go one to each regency/city, so that every one has a
  -- sentra once N >= 514; the rest are spread at random
  JOIN gen_reg r ON r.k = CASE WHEN g.i <= (SELECT count(*) FROM gen_reg) THEN g.i
                               ELSE 1 + floor(g.r_reg * (SELECT count(*) FROM gen_reg))::int END
  JOIN gen_tpl t ON t.k = 1 + floor(g.r_tpl * 20)::int;

INSERT INTO sentra (id, regency_code, address, name, commodity, main_product,
                    kbli_code, kbli_version, sector_group, status, formed_on,
                    decree_number, decree_date, decree_official,
                    contact_name, contact_phone)
SELECT id, regency, 'Alamat sintetis ' || i,
       format('Sentra IKM %s %s (data sintetis)', commodity, lpad(i::text, 6, '0')),
       commodity, product, kbli, 2020, sector, status, formed_on,
       CASE WHEN status IN (2, 3, 5)
            THEN format('%s/%s/KPTS/%s', 100 + i % 900, replace(regency, '.', ''),
                        extract(year FROM least(formed_on + 30 + floor(r_decree * 1000)::int,
                                                date '2024-12-31'))) END,
       CASE WHEN status IN (2, 3, 5)
            THEN least(formed_on + 30 + floor(r_decree * 1000)::int, date '2024-12-31') END,
       CASE WHEN status IN (2, 3, 5)
            THEN CASE WHEN regency_name LIKE 'Kota %' THEN 'Walikota ' ELSE 'Bupati ' END
                 || regexp_replace(regency_name, '^(Kabupaten|Kota) ', '') END,
       'Pengurus sentra (data sintetis)', '0800' || lpad(i::text, 8, '0')
  FROM gen_s
 ORDER BY i
ON CONFLICT (id) DO NOTHING;

-- Three reporting years; business units never below 5 (a designated
-- sentra needs 5 in its latest year), growing a little each year.
INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male,
                            workers_female, investment, production_value,
                            material_value, capacity, capacity_unit)
SELECT s.id, y,
       u, w - round(w * (0.2 + 0.6 * s.r_female))::int, round(w * (0.2 + 0.6 * s.r_female))::int,
       inv, prod, round(prod * (0.35 + 0.3 * s.r_mat))::bigint,
       u * 1200, s.unit
  FROM gen_s s
 CROSS JOIN generate_series(2022, 2024) AS y
 CROSS JOIN LATERAL (SELECT 5 + floor(s.r_units * 55)::int + (y - 2022) * (1 + floor(s.r_units * 4)::int) AS u) a
 CROSS JOIN LATERAL (SELECT (a.u * (2 + s.r_workers * 5))::int AS w,
                            a.u * (20000000 + floor(s.r_inv * 180000000)::bigint) * (100 + 5 * (y - 2022)) / 100 AS inv) b
 CROSS JOIN LATERAL (SELECT (b.inv * (1.2 + 1.8 * s.r_prod))::bigint AS prod) c
 ORDER BY s.i, y
ON CONFLICT (sentra_id, year) DO NOTHING;
COMMIT;
EOF
end=$(date +%s%N)
count=$(psql "$CONN" -X -Atc "SELECT count(*) FROM sentra WHERE name LIKE 'Sentra IKM % (data sintetis)' AND id IN (SELECT md5('sentra-national-' || i)::uuid FROM generate_series(1, $N) i)")
ms=$(( (end - start) / 1000000 ))
printf 'gen-national: %s synthetic sentra present (asked for %s); took %d.%03d s\n' \
    "$count" "$N" $((ms / 1000)) $((ms % 1000))
