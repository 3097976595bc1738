#!/bin/bash
# bench-sync.sh: the figures of the "Sync" section of docs/BENCHMARKS.md,
# measured in one run on a private throwaway cluster:
#
#   pull   full PullChanges of RECORDS records (national token, pages of
#          5000 and of 500, one client), records/s; a district's first
#          pull (its region of the national feed), latency
#          vs COPY (SELECT * FROM sentra_rows) TO STDOUT (the same rows)
#   push   PushChanges of new records with one figures year each, 500 a
#          batch (1 client) and 100 a batch (4 clients), records/s
#          vs COPY of the same number of rows into sentra + sentra_figures
#          (every trigger firing, as for a push), and into plain tables,
#          and vs pgbench's single-row INSERT (one row a transaction into a
#          narrow table, 1 and 4 clients), and vs pgbench inserting one
#          record and its figures a transaction into the real tables (the
#          yardstick make bench uses)
#
#   scripts/bench-sync.sh [RECORDS] [SECONDS]     default 100000 and 15
#
# Environment: SENTRAD (bin/sentrad), LOADGEN (build/bench/loadgen),
# SENTRA_MIGRATIONS (default: migrations/ beside SENTRAD; a directory with
# fewer files measures an earlier schema), SENTRA_PG_FAST=1 for a cluster
# without fsync (default: durable, as in production). Numbers are printed,
# never asserted. Needs make all loadgen.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
RECORDS=${1:-100000}
SECS=${2:-15}
SENTRAD=${SENTRAD:-bin/sentrad}
LOADGEN=${LOADGEN:-build/bench/loadgen}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PSQL=$PGBIN/psql
PGBENCH=$PGBIN/pgbench

die() { echo "bench-sync: $*" >&2; exit 1; }
[ -x "$SENTRAD" ] || die "no $SENTRAD (make all)"
[ -x "$LOADGEN" ] || die "no $LOADGEN (make loadgen)"

WORK=$(mktemp -d /tmp/bench-sync.XXXXXX)
chmod 755 "$WORK"
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    scripts/pgcluster.sh destroy "$WORK/pg" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }   # value of key=value in a loadgen line

CONN=$(scripts/pgcluster.sh ensure "$WORK/pg") || die "cluster"
"$SENTRAD" migrate --db "$CONN" >/dev/null || die "migrate"
echo "bench-sync: loading $RECORDS records (scripts/gen-national.sh)..." >&2
t0=$(ms)
scripts/gen-national.sh "$CONN" "$RECORDS" >/dev/null || die "gen-national.sh"
LOAD_MS=$(( $(ms) - t0 ))
"$PSQL" "$CONN" -X -q -c "VACUUM ANALYZE sentra, sentra_figures, sentra_change" || die "vacuum"

"$SENTRAD" --db "$CONN" --port 0 --port-file "$WORK/port" --log-level warn \
    >"$WORK/sentrad.log" 2>&1 &
SPID=$!
for _ in $(seq 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port" 2>/dev/null) || { tail -5 "$WORK/sentrad.log" >&2; die "sentrad did not start"; }
TOK_NAT=$("$SENTRAD" token create --db "$CONN" --role national --label bench-sync 2>/dev/null | tail -1)
TOK_PROV=$("$SENTRAD" token create --db "$CONN" --role province --region 18 --label bench-sync 2>/dev/null | tail -1)
DIST=$("$PSQL" "$CONN" -X -At -c "SELECT regency_code FROM sentra GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
DIST_N=$("$PSQL" "$CONN" -X -At -c "SELECT count(*) FROM sentra WHERE regency_code = '$DIST'")
TOK_DIST=$("$SENTRAD" token create --db "$CONN" --role district --region "$DIST" --label bench-sync 2>/dev/null | tail -1)
[ -n "$TOK_NAT" ] && [ -n "$TOK_PROV" ] && [ -n "$TOK_DIST" ] || die "token create"
"$PSQL" "$CONN" -X -At -c "SELECT code FROM region WHERE parent_code = '18' AND level IN ('regency', 'city')" \
    >"$WORK/regions"

ROWS=$("$PSQL" "$CONN" -X -At -c "SELECT count(*) FROM sentra_rows")
CHANGES=$("$PSQL" "$CONN" -X -At -c "SELECT count(*) FROM sentra_change")

# ---------------------------------------------------------------- pull
echo "bench-sync: pull..." >&2
PULL5000=$("$LOADGEN" -p "$PORT" -c 1 -t "$SECS" -w pull --page-size 5000 -T "$TOK_NAT" 2>>"$WORK/lg.err")
PULL500=$("$LOADGEN" -p "$PORT" -c 1 -t "$SECS" -w pull --page-size 500 -T "$TOK_NAT" 2>>"$WORK/lg.err")
PULLD=$("$LOADGEN" -p "$PORT" -c 1 -t 5 -w pull --page-size 5000 -T "$TOK_DIST" 2>>"$WORK/lg.err")
# best_copy_ms QUERY: the fastest of three COPY (QUERY) TO STDOUT, in ms
best_copy_ms() {
    local best= t t0
    for _ in 1 2 3; do
        t0=$(ms)
        "$PSQL" "$CONN" -X -q -c "COPY ($1) TO STDOUT" >/dev/null
        t=$(( $(ms) - t0 ))
        [ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
    done
    echo "$best"
}
COPY_OUT_MS=$(best_copy_ms "SELECT * FROM sentra_rows ORDER BY id, fig_year")
# What the pull itself reads: each record printed once (sentra_pull).
COPY_PULL_MS=$(best_copy_ms "SELECT sentra_id, version, deleted, packed FROM sentra_pull")

# ---------------------------------------------------------------- push
echo "bench-sync: push..." >&2
P0=$("$PSQL" "$CONN" -X -At -c "SELECT count(*) FROM sentra")
PUSH500=$("$LOADGEN" -p "$PORT" -c 1 -t "$SECS" -w push --batch 500 --regions "$WORK/regions" -T "$TOK_PROV" 2>>"$WORK/lg.err")
PUSH100=$("$LOADGEN" -p "$PORT" -c 4 -t "$SECS" -w push --batch 100 --regions "$WORK/regions" -T "$TOK_PROV" 2>>"$WORK/lg.err")
P1=$("$PSQL" "$CONN" -X -At -c "SELECT count(*) FROM sentra")
NPUSH=$(( P1 - P0 ))
[ "$NPUSH" -gt 0 ] || NPUSH=10000

# COPY in: as many rows as the pushes stored, records and their figures,
# with fresh ids, into the real tables (all triggers) and plain copies.
"$PSQL" "$CONN" -X -q -v ON_ERROR_STOP=1 <<EOF || die "copy prep"
CREATE TABLE bench_src AS
SELECT gen_random_uuid() AS id, regency_code, name || ' (copy)' AS name, commodity,
       main_product, kbli_code, kbli_version, sector_group, status, formed_on,
       decree_number, decree_date, contact_name, contact_phone
  FROM sentra WHERE deleted_at IS NULL AND status NOT IN (2, 3) LIMIT $NPUSH;
\copy (SELECT * FROM bench_src) TO '$WORK/rec.tsv'
\copy (SELECT id, 2024, 12, 20, 31, 250000000, 900000000 FROM bench_src) TO '$WORK/fig.tsv'
CREATE TABLE plain_sentra AS SELECT * FROM bench_src WITH NO DATA;
CREATE TABLE plain_fig (sentra_id uuid, year int, business_units int, workers_male int,
                        workers_female int, investment bigint, production_value bigint);
EOF
NCOPY=$(wc -l <"$WORK/rec.tsv")
COLS="id, regency_code, name, commodity, main_product, kbli_code, kbli_version, sector_group, status, formed_on, decree_number, decree_date, contact_name, contact_phone"
FCOLS="sentra_id, year, business_units, workers_male, workers_female, investment, production_value"
t0=$(ms)
"$PSQL" "$CONN" -X -q -v ON_ERROR_STOP=1 <<EOF || die "copy in"
BEGIN;
\copy sentra ($COLS) FROM '$WORK/rec.tsv'
\copy sentra_figures ($FCOLS) FROM '$WORK/fig.tsv'
COMMIT;
EOF
COPY_IN_MS=$(( $(ms) - t0 ))
t0=$(ms)
"$PSQL" "$CONN" -X -q -v ON_ERROR_STOP=1 <<EOF || die "copy in plain"
BEGIN;
\copy plain_sentra FROM '$WORK/rec.tsv'
\copy plain_fig FROM '$WORK/fig.tsv'
COMMIT;
EOF
COPY_PLAIN_MS=$(( $(ms) - t0 ))

# pgbench: one single-row INSERT a transaction, as many as it can.
"$PSQL" "$CONN" -X -q -c "CREATE TABLE bench_pgb (id bigserial PRIMARY KEY, v text NOT NULL)" || die "pgbench table"
echo "INSERT INTO bench_pgb (v) VALUES ('bench');" >"$WORK/pgb.sql"
tps() { awk '/^tps/ { printf "%.0f", $3; exit }'; }
PGB1=$("$PGBENCH" -n -c 1 -j 1 -T "$SECS" -f "$WORK/pgb.sql" "$CONN" 2>>"$WORK/lg.err" | tps)
PGB4=$("$PGBENCH" -n -c 4 -j 4 -T "$SECS" -f "$WORK/pgb.sql" "$CONN" 2>>"$WORK/lg.err" | tps)
# One record and its figures a transaction, into the real tables: the
# yardstick of make bench (bench/insert_record.sql).
REC1=$("$PGBENCH" -n -c 1 -j 1 -T "$SECS" -f bench/insert_record.sql "$CONN" 2>>"$WORK/lg.err" | tps)
REC4=$("$PGBENCH" -n -c 4 -j 4 -T "$SECS" -f bench/insert_record.sql "$CONN" 2>>"$WORK/lg.err" | tps)

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "?" }'; }
COPY_OUT_RATE=$(rate "$ROWS" "$COPY_OUT_MS")
COPY_OUT_RECS=$(rate "$RECORDS" "$COPY_OUT_MS")
COPY_PULL_RATE=$(rate "$RECORDS" "$COPY_PULL_MS")
COPY_IN_RATE=$(rate "$NCOPY" "$COPY_IN_MS")
COPY_PLAIN_RATE=$(rate "$NCOPY" "$COPY_PLAIN_MS")

cat <<EOF

Sync benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $("$PSQL" -V | awk '{print $3}'), SENTRA_PG_FAST=${SENTRA_PG_FAST:-0}
Data: $RECORDS records (scripts/gen-national.sh, $ROWS rows of sentra_rows with figures, $CHANGES change rows), loaded in $LOAD_MS ms.

| what | records/s | detail |
| --- | ---: | --- |
| PullChanges, full pull, pages of 5000, 1 client | $(echo "$PULL5000" | kv records_per_s) | passes=$(echo "$PULL5000" | kv passes) p50_ms=$(echo "$PULL5000" | kv p50_ms) p99_ms=$(echo "$PULL5000" | kv p99_ms) errors=$(echo "$PULL5000" | kv errors) |
| PullChanges, full pull, pages of 500, 1 client | $(echo "$PULL500" | kv records_per_s) | p50_ms=$(echo "$PULL500" | kv p50_ms) p99_ms=$(echo "$PULL500" | kv p99_ms) errors=$(echo "$PULL500" | kv errors) |
| PullChanges, a district's whole pull ($DIST_N records of $DIST, from the empty cursor, pages of 5000) | $(echo "$PULLD" | kv records_per_s) | p50_ms=$(echo "$PULLD" | kv p50_ms) p99_ms=$(echo "$PULLD" | kv p99_ms) a pull, errors=$(echo "$PULLD" | kv errors) |
| COPY (SELECT * FROM sentra_rows) TO STDOUT, best of 3 | $COPY_OUT_RATE rows | $ROWS rows in $COPY_OUT_MS ms |
| COPY (SELECT ... FROM sentra_pull) TO STDOUT, best of 3 (what the pull reads) | $COPY_PULL_RATE | $RECORDS records in $COPY_PULL_MS ms |
| PushChanges, new records, 500 a batch, 1 client | $(echo "$PUSH500" | kv records_per_s) | p50_ms=$(echo "$PUSH500" | kv p50_ms) p99_ms=$(echo "$PUSH500" | kv p99_ms) errors=$(echo "$PUSH500" | kv errors) |
| PushChanges, new records, 100 a batch, 4 clients | $(echo "$PUSH100" | kv records_per_s) | p50_ms=$(echo "$PUSH100" | kv p50_ms) p99_ms=$(echo "$PUSH100" | kv p99_ms) errors=$(echo "$PUSH100" | kv errors) |
| COPY into sentra + sentra_figures (all triggers) | $COPY_IN_RATE | $NCOPY records in $COPY_IN_MS ms |
| COPY into plain tables (no triggers, no indexes) | $COPY_PLAIN_RATE | $NCOPY records in $COPY_PLAIN_MS ms |
| pgbench, single-row INSERT a transaction, 1 client | ${PGB1:-?} rows | -n -c 1 -T $SECS |
| pgbench, single-row INSERT a transaction, 4 clients | ${PGB4:-?} rows | -n -c 4 -T $SECS |
| pgbench, one record and its figures a transaction, 1 client | ${REC1:-?} records | -n -c 1 -T $SECS, into sentra + sentra_figures |
| pgbench, one record and its figures a transaction, 4 clients | ${REC4:-?} records | -n -c 4 -T $SECS |

Ratios: full pull (5000 a page) / COPY out, records/s over records/s ($COPY_OUT_RECS) $(ratio "$(echo "$PULL5000" | kv records_per_s)" "$COPY_OUT_RECS"); push 500 a batch, 1 client / pgbench 1 client $(ratio "$(echo "$PUSH500" | kv records_per_s)" "$PGB1"); push 100 a batch, 4 clients / pgbench 4 clients $(ratio "$(echo "$PUSH100" | kv records_per_s)" "$PGB4"); push / one record a transaction, 1 client $(ratio "$(echo "$PUSH500" | kv records_per_s)" "$REC1"), 4 clients $(ratio "$(echo "$PUSH100" | kv records_per_s)" "$REC4").
EOF
[ -s "$WORK/lg.err" ] && { echo; echo "loadgen stderr (first lines):"; head -5 "$WORK/lg.err"; }
exit 0
