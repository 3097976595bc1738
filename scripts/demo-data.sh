#!/bin/bash
# demo-data.sh: loads the SYNTHETIC Lampung demonstration dataset
# (data/demo/lampung.sql): 73 Sentra IKM over Lampung's 15 regencies/cities,
# 54 of them designated, with sub-districts, decrees and 2019-2021 figures,
# and their records: members (kept by three districts), institutions,
# obstacles and assistance.
# Every record is labelled "(data sintetis)"; none of it is real.
#
#   scripts/demo-data.sh CONNINFO
#
# Idempotent: records already loaded are left as they are. Needs the schema
# (sentrad migrate) with the region table loaded.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 CONNINFO" >&2; exit 2; }
CONN=$1
HERE=$(cd "$(dirname "$0")/.." && pwd)

have=$(psql "$CONN" -X -Atc "SELECT count(*) FROM region WHERE parent_code = '18'") ||
    { echo "demo-data: cannot read the region table (is the schema migrated?)" >&2; exit 1; }
[ "$have" = 15 ] ||
    { echo "demo-data: the region table has $have regencies/cities of Lampung (18), expected 15" >&2; exit 1; }

psql "$CONN" -X -q -v ON_ERROR_STOP=1 -1 -f "$HERE/data/demo/lampung.sql"

psql "$CONN" -X -At -F ' ' -c "
SELECT count(*), count(*) FILTER (WHERE designated)
  FROM sentra
 WHERE id IN (SELECT md5('demo-lampung-' || n)::uuid FROM generate_series(1, 73) n)
   AND deleted_at IS NULL" | {
    read -r formed designated
    echo "demo-data: synthetic Lampung dataset loaded: $formed sentra formed, $designated designated (data sintetis)"
}
psql "$CONN" -X -At -F ' ' -c "
SELECT (SELECT count(*) FROM member WHERE deleted_at IS NULL AND sentra_id IN (SELECT md5('demo-lampung-' || n)::uuid FROM generate_series(1, 73) n)),
       (SELECT count(*) FROM institution WHERE deleted_at IS NULL AND sentra_id IN (SELECT md5('demo-lampung-' || n)::uuid FROM generate_series(1, 73) n)),
       (SELECT count(*) FROM obstacle WHERE deleted_at IS NULL AND sentra_id IN (SELECT md5('demo-lampung-' || n)::uuid FROM generate_series(1, 73) n)),
       (SELECT count(*) FROM assistance WHERE deleted_at IS NULL AND sentra_id IN (SELECT md5('demo-lampung-' || n)::uuid FROM generate_series(1, 73) n))" | {
    read -r members institutions obstacles assistance
    echo "demo-data: and $members members, $institutions institutions, $obstacles obstacles, $assistance assistance records (data sintetis)"
}
