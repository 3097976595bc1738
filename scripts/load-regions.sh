#!/bin/bash
# load-regions.sh: loads Indonesia's ~7,285 sub-districts (kecamatan) and
# ~83,762 villages (desa/kelurahan) into table region, beside the provinces
# and regencies/cities that migration 0001 already holds.
#
#   scripts/load-regions.sh [CONNINFO]
#
# CONNINFO defaults to $SENTRA_DB_URL, else the private cluster of `make run`
# (scripts/pgcluster.sh ensure var/pg). The schema must be migrated first
# (bin/sentrad migrate, or one `make run`).
#
# Idempotent: rows are upserted from data/regions/*.csv.gz (\copy into a
# temporary table, then INSERT ... ON CONFLICT), all in one transaction; a
# second run changes nothing. Names are taken as published, except that the
# data writes an apostrophe as a double quote (Ra"as): it is stored as Ra'as.
#
# Data: idn-area-data 4.0.1 by fityannugroho, Open Database License 1.0
# (data/regions/LICENSE-ODbL.md, docs/DATA_SOURCES.md).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/data/regions

die() { echo "load-regions: $*" >&2; exit 1; }

if [ $# -ge 1 ]; then
    CONN=$1
elif [ -n "${SENTRA_DB_URL:-}" ]; then
    CONN=$SENTRA_DB_URL
else
    CONN=$("$ROOT/scripts/pgcluster.sh" ensure "$ROOT/var/pg") || exit 1
fi

for f in districts villages; do
    [ -r "$DATA/$f.csv.gz" ] || die "missing $DATA/$f.csv.gz"
done
case "$DATA" in *"'"*) die "the repository path must not contain a single quote: $DATA" ;; esac

PSQL=$(command -v psql || true)
if [ -z "$PSQL" ]; then
    PSQL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
    [ -x "$PSQL" ] || die "psql not found"
fi

have=$("$PSQL" -X -Atq -d "$CONN" -c "SELECT to_regclass('region') IS NOT NULL") ||
    die "cannot connect with: $CONN"
[ "$have" = t ] || die "no table region: apply the migrations first (bin/sentrad migrate --db '$CONN')"

# One transaction: either every row lands or none.
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CONN" <<EOF
BEGIN;
CREATE TEMP TABLE region_in (code text, parent_code text, name text) ON COMMIT DROP;

\copy region_in FROM PROGRAM 'gzip -dc "$DATA/districts.csv.gz"' WITH (FORMAT csv, HEADER true)
INSERT INTO region (code, level, name, parent_code)
SELECT code, 'district', replace(name, '"', ''''), parent_code FROM region_in
ON CONFLICT (code) DO UPDATE
    SET level = EXCLUDED.level, name = EXCLUDED.name, parent_code = EXCLUDED.parent_code
    WHERE (region.level, region.name, region.parent_code)
          IS DISTINCT FROM (EXCLUDED.level, EXCLUDED.name, EXCLUDED.parent_code);
TRUNCATE region_in;

\copy region_in FROM PROGRAM 'gzip -dc "$DATA/villages.csv.gz"' WITH (FORMAT csv, HEADER true)
INSERT INTO region (code, level, name, parent_code)
SELECT code, 'village', replace(name, '"', ''''), parent_code FROM region_in
ON CONFLICT (code) DO UPDATE
    SET level = EXCLUDED.level, name = EXCLUDED.name, parent_code = EXCLUDED.parent_code
    WHERE (region.level, region.name, region.parent_code)
          IS DISTINCT FROM (EXCLUDED.level, EXCLUDED.name, EXCLUDED.parent_code);
COMMIT;
ANALYZE region;
EOF

"$PSQL" -X -Atq -d "$CONN" -F ' ' -c "
    SELECT count(*) FILTER (WHERE level = 'province'),
           count(*) FILTER (WHERE level IN ('regency', 'city')),
           count(*) FILTER (WHERE level = 'district'),
           count(*) FILTER (WHERE level = 'village')
    FROM region" | {
    read -r p r d v
    echo "load-regions: region now holds $p provinces, $r regencies/cities, $d sub-districts, $v villages"
}
