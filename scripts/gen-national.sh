#!/bin/bash
# gen-national.sh: N synthetic sentra (default 20,000) spread over all 514
# regencies/cities (one each first, then at random), with figures for 2022,
# 2023 and 2024, for benchmarks at national scale; optionally their records
# (issue 18): member businesses, obstacles, assistance, and an institution
# for three sentra in five. SYNTHETIC: every name ends in "(data sintetis)",
# every NIB starts with 0000.
#
#   scripts/gen-national.sh CONNINFO [N] [--members M] [--obstacles K] [--assistance K]
#
# Records go to sentra drawn at random among the N (about M / N members
# each); none unless asked (`make national-data` asks for 1,000,000
# members, 100,000 obstacles and 100,000 assistance records). Members are
# inserted in one statement: every trigger runs (scope from the sentra,
# rules, change rows, the per-sentra statistics row) as for any writer.
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

usage() { echo "usage: $0 CONNINFO [N] [--members M] [--obstacles K] [--assistance K]" >&2; exit 2; }
[ $# -ge 1 ] || usage
CONN=$1
shift
N=20000
if [ $# -ge 1 ] && [[ "$1" != --* ]]; then
    N=$1
    shift
fi
MEMBERS=0
OBSTACLES=0
ASSISTANCE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --members) MEMBERS=${2:-}; shift ;;
    --obstacles) OBSTACLES=${2:-}; shift ;;
    --assistance) ASSISTANCE=${2:-}; shift ;;
    *) usage ;;
    esac
    shift
done
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 10000000 ] ||
    { echo "gen-national: N must be a whole number from 1 to 10000000" >&2; exit 2; }
for v in "$MEMBERS" "$OBSTACLES" "$ASSISTANCE"; do
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -le 50000000 ] ||
        { echo "gen-national: --members, --obstacles and --assistance take 0 to 50000000" >&2; exit 2; }
done

start=$(date +%s%N)
psql "$CONN" -X -q -v ON_ERROR_STOP=1 -v n="$N" -v members="$MEMBERS" -v obstacles="$OBSTACLES" \
    -v assistance="$ASSISTANCE" <<'EOF'
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

-- ---------------------------------------------------------------- records

-- Member businesses: each to a sentra drawn at random; owners 43 % women;
-- 55 % with an NIB; workers mostly under 20 and investment mostly under
-- Rp 1 billion (small industry), a few medium and very few large ones; one
-- in twelve has left.
CREATE TEMP TABLE gen_m ON COMMIT DROP AS
SELECT i, 1 + floor(random() * :n)::int AS j, random() AS r_sex, random() AS r_nib,
       random() AS r_w, random() AS r_inv, random() AS r_join, random() AS r_left
  FROM generate_series(1, :members) AS i
 ORDER BY i;

INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex, nib, kbli_code,
                    kbli_version, products, workers_male, workers_female, investment,
                    production_value, joined_year, left_year)
SELECT md5('member-national-' || m.i)::uuid, s.id, s.regency,
       format('IKM %s %s (data sintetis)', s.commodity, lpad(m.i::text, 7, '0')),
       CASE WHEN m.r_sex < 0.43 THEN 'Ibu ' ELSE 'Bapak ' END || 'pemilik ' || m.i || ' (data sintetis)',
       CASE WHEN m.r_sex < 0.43 THEN 2 ELSE 1 END,
       CASE WHEN m.r_nib < 0.55 THEN '0000' || lpad(m.i::text, 9, '0') END,
       s.kbli, 2020, s.product,
       w.n - round(w.n * (0.2 + 0.6 * m.r_sex))::int, round(w.n * (0.2 + 0.6 * m.r_sex))::int,
       CASE WHEN m.r_inv < 0.94 THEN 10000000 + floor(m.r_inv * 900000000)::bigint
            WHEN m.r_inv < 0.999 THEN 1000000000 + floor((m.r_inv - 0.94) * 200000000000)::bigint
            ELSE 16000000000 END,
       CASE WHEN m.r_inv < 0.94 THEN 30000000 + floor(m.r_inv * 2000000000)::bigint
            ELSE 3000000000 + floor(m.r_inv * 20000000000)::bigint END,
       least(2024, extract(year FROM s.formed_on)::int + floor(m.r_join * 6)::int),
       CASE WHEN m.r_left < 0.083 THEN 2024 END
  FROM gen_m m
  JOIN gen_s s ON s.i = m.j
 CROSS JOIN LATERAL (SELECT 1 + floor(m.r_w * m.r_w * (CASE WHEN m.r_inv >= 0.999 THEN 120 ELSE 24 END))::int AS n) w
 -- in index order of the regional and per-sentra indexes: each insert then
 -- lands next to the previous one instead of on a random page
 ORDER BY s.regency, s.id, m.i
ON CONFLICT (id) DO NOTHING;

-- Institutions: three sentra in five; revitalised ones a cooperative with a
-- UPT, designated ones a KUB or an association, formed ones a board or none.
INSERT INTO institution (sentra_id, regency_code, form, legal_basis, registration_number,
                         board_chair, board_secretary, board_treasurer, facility_name,
                         facility_provides, facility_condition)
SELECT s.id, s.regency, f.form,
       CASE WHEN f.form <> 1 THEN 'Akta notaris sintetis No. ' || s.i ELSE '' END,
       CASE WHEN f.form = 2 THEN s.i || '/BH/' || replace(s.regency, '.', '') ELSE '' END,
       CASE WHEN f.form <> 1 THEN 'Ketua ' || s.i || ' (data sintetis)' ELSE '' END, '', '',
       CASE WHEN s.status = 3 THEN 'UPT sintetis ' || s.i ELSE '' END,
       CASE WHEN s.status = 3 THEN 'mesin dan ruang produksi bersama' ELSE '' END,
       CASE WHEN s.status = 3 THEN 1 + s.i % 3 END
  FROM gen_s s
 CROSS JOIN LATERAL (SELECT CASE WHEN s.status = 3 THEN 2
                                 WHEN s.status IN (2, 5) THEN 3 + s.i % 2
                                 WHEN s.i % 2 = 0 THEN 5 ELSE 1 END::smallint AS form) f
 WHERE :members + :obstacles + :assistance > 0 AND s.i % 5 < 3
 ORDER BY s.i
ON CONFLICT (sentra_id) DO NOTHING;

-- Assistance: kinds weighted as the ministry's programmes run (training
-- and certification most often), providers by kind, years 2015 to 2024.
CREATE TEMP TABLE gen_a ON COMMIT DROP AS
SELECT i, 1 + floor(random() * :n)::int AS j, random() AS r_kind, random() AS r_prov,
       random() AS r_year, random() AS r_val
  FROM generate_series(1, :assistance) AS i
 ORDER BY i;

INSERT INTO assistance (id, sentra_id, regency_code, kind, certification, provider,
                        provider_name, programme, year, value)
SELECT md5('assistance-national-' || a.i)::uuid, s.id, s.regency, k.kind,
       CASE WHEN k.kind = 3 THEN 1 + floor(a.r_val * 3)::int END,
       CASE WHEN k.kind = 6 THEN 1 ELSE 1 + floor(a.r_prov * 5)::int END,
       'Penyelenggara sintetis', 'Program sintetis ' || k.kind || '-' || a.i,
       greatest(2015 + floor(a.r_year * 10)::int, extract(year FROM s.formed_on)::int),
       CASE k.kind WHEN 1 THEN 100000000 + floor(a.r_val * 400000000)::bigint
                   WHEN 6 THEN 1000000000 + floor(a.r_val * 2000000000)::bigint
                   ELSE 10000000 + floor(a.r_val * 90000000)::bigint END
  FROM gen_a a
  JOIN gen_s s ON s.i = a.j
 CROSS JOIN LATERAL (SELECT CASE WHEN a.r_kind < 0.30 THEN 2 WHEN a.r_kind < 0.50 THEN 3
                                 WHEN a.r_kind < 0.65 THEN 4 WHEN a.r_kind < 0.77 THEN 1
                                 WHEN a.r_kind < 0.87 THEN 7 WHEN a.r_kind < 0.95 THEN 5
                                 ELSE 6 END::smallint AS kind) k
 ORDER BY a.i
ON CONFLICT (id) DO NOTHING;

-- Obstacles: categories as district reports name them most often (raw
-- materials, capital, marketing first), reported from the sentra's
-- formation to 2024; half open, a quarter being handled, a quarter
-- resolved within two years.
CREATE TEMP TABLE gen_o ON COMMIT DROP AS
SELECT i, 1 + floor(random() * :n)::int AS j, random() AS r_cat, random() AS r_sev,
       random() AS r_date, random() AS r_status
  FROM generate_series(1, :obstacles) AS i
 ORDER BY i;

INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,
                      reported_on, status, resolution, resolved_on)
SELECT md5('obstacle-national-' || o.i)::uuid, s.id, s.regency, c.category,
       'Hambatan sintetis ' || c.category || '-' || o.i || ' (data sintetis)',
       1 + floor(o.r_sev * 3)::int, d.reported_on,
       CASE WHEN o.r_status < 0.5 THEN 1 WHEN o.r_status < 0.75 THEN 2 ELSE 3 END,
       CASE WHEN o.r_status >= 0.75 THEN 'Penyelesaian sintetis ' || o.i ELSE '' END,
       CASE WHEN o.r_status >= 0.75
            THEN least(d.reported_on + 30 + floor(o.r_sev * 700)::int, DATE '2024-12-31') END
  FROM gen_o o
  JOIN gen_s s ON s.i = o.j
 CROSS JOIN LATERAL (SELECT CASE WHEN o.r_cat < 0.22 THEN 1 WHEN o.r_cat < 0.38 THEN 5
                                 WHEN o.r_cat < 0.54 THEN 4 WHEN o.r_cat < 0.66 THEN 2
                                 WHEN o.r_cat < 0.76 THEN 3 WHEN o.r_cat < 0.84 THEN 6
                                 WHEN o.r_cat < 0.91 THEN 7 WHEN o.r_cat < 0.96 THEN 8
                                 WHEN o.r_cat < 0.98 THEN 9 ELSE 10 END::smallint AS category) c
 CROSS JOIN LATERAL (SELECT least(s.formed_on + floor(o.r_date * (DATE '2024-12-31' - s.formed_on))::int,
                                  DATE '2024-12-31') AS reported_on) d
 ORDER BY o.i
ON CONFLICT (id) DO NOTHING;
COMMIT;
EOF
# Planner statistics for what was just loaded: until autovacuum gets to
# them, statements are planned for empty tables (sentra_derived_drift()
# took minutes instead of seconds over a million fresh members).
psql "$CONN" -X -q -v ON_ERROR_STOP=1 -c "ANALYZE sentra, sentra_figures, sentra_stat, sentra_pull,
    sentra_change, member, institution, obstacle, assistance"
end=$(date +%s%N)
count=$(psql "$CONN" -X -Atc "SELECT count(*) FROM sentra WHERE name LIKE 'Sentra IKM % (data sintetis)' AND id IN (SELECT md5('sentra-national-' || i)::uuid FROM generate_series(1, $N) i)")
ms=$(( (end - start) / 1000000 ))
printf 'gen-national: %s synthetic sentra present (asked for %s); took %d.%03d s\n' \
    "$count" "$N" $((ms / 1000)) $((ms % 1000))
if [ $((MEMBERS + OBSTACLES + ASSISTANCE)) -gt 0 ]; then
    psql "$CONN" -X -At -F ' ' -c "SELECT (SELECT count(*) FROM member), (SELECT count(*) FROM institution),
                                         (SELECT count(*) FROM obstacle), (SELECT count(*) FROM assistance)" | {
        read -r m i o a
        echo "gen-national: with $m members, $i institutions, $o obstacles, $a assistance records (all records in the database)"
    }
fi
