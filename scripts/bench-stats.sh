#!/bin/bash
# bench-stats.sh: GetStatistics answered by sentrad against the equivalent
# GROUP BY run by psql, on the same national-scale data, in one run.
#
#   scripts/bench-stats.sh [--records N] [--runs R] [--calls C] [--keep]
#
# Builds nothing but a tiny client (bench/stats_latency.c, linked with
# build/lib/libsentra.a: run `make` first); starts a private throwaway
# PostgreSQL cluster (fast mode: no fsync) under a temporary directory,
# migrates it, loads N synthetic sentra with scripts/gen-national.sh
# (default 20,000 over all 514 regencies/cities), starts sentrad on a free
# port, and for each case and each of R rounds (default 5) times C calls
# (default 30, after warm-up) three ways:
#
#   server    GetStatistics through libsentra (request sent to response
#             decoded: the server, its query, protobuf both ways)
#   psql      the equivalent GROUP BY over the registry's own tables
#             (sentra, and each sentra's latest sentra_figures row), with
#             the same output (keys, region names, measures, total row),
#             timed by psql's \timing in one session
#   psql-stat the same GROUP BY over sentra_stat, the table the server
#             reads (what is left is the server's own overhead)
#
# Each value is the median of C calls; the table shows the median over the
# R rounds and the ratios server/psql and server/psql-stat. The cluster and
# server are removed at the end unless --keep.
set -eu

RECORDS=20000
RUNS=5
CALLS=30
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --calls) CALLS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--records N] [--runs R] [--calls C] [--keep]" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SENTRAD=${SENTRAD:-bin/sentrad}
LIB=${LIBSENTRA:-build/lib/libsentra.a}
PSQL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
[ -x "$PSQL" ] || PSQL=psql
[ -x "$SENTRAD" ] && [ -f "$LIB" ] || { echo "bench-stats: run make first ($SENTRAD, $LIB)" >&2; exit 1; }

log() { echo "bench-stats: $*" >&2; }
die() { log "$*"; exit 1; }

WORK=$(mktemp -d /tmp/sentra-bstats.XXXXXX)
chmod 755 "$WORK"
PGDIR=$WORK/pg
SENTRAD_PID=""
cleanup() {
    [ -n "$SENTRAD_PID" ] && kill "$SENTRAD_PID" 2>/dev/null && wait "$SENTRAD_PID" 2>/dev/null
    if [ "$KEEP" = 1 ]; then
        log "kept $WORK (stop with: scripts/pgcluster.sh destroy $PGDIR)"
    else
        scripts/pgcluster.sh destroy "$PGDIR" >/dev/null 2>&1
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- set-up

CONN=$(SENTRA_PG_FAST=1 scripts/pgcluster.sh ensure "$PGDIR") || die "cannot start a cluster in $PGDIR"
"$SENTRAD" migrate --db "$CONN" >/dev/null || die "migrations failed"
scripts/gen-national.sh "$CONN" "$RECORDS" >&2 || die "gen-national.sh failed"
"$PSQL" "$CONN" -X -q -c "VACUUM ANALYZE sentra, sentra_figures, sentra_stat, region" ||
    die "vacuum failed"
TOKEN=$("$SENTRAD" token create --db "$CONN" --role national --label bench-stats 2>/dev/null | tail -1)
[ -n "$TOKEN" ] || die "cannot create a token"

CLIENT=$WORK/stats_latency
cc -std=gnu11 -O2 -Ibuild/gen -Iclient/include -Icommon -o "$CLIENT" bench/stats_latency.c \
    "$LIB" $(pkg-config --libs libuv libprotobuf-c) -lm || die "cannot build bench/stats_latency.c"

"$SENTRAD" --db "$CONN" --host 127.0.0.1 --port 0 --port-file "$WORK/port" --no-migrate \
    --log-level warn >"$WORK/sentrad.log" 2>&1 &
SENTRAD_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/port" ] && break
    kill -0 "$SENTRAD_PID" 2>/dev/null || die "sentrad exited: $(tail -5 "$WORK/sentrad.log")"
    sleep 0.1
done
[ -s "$WORK/port" ] || die "sentrad wrote no port file"
ADDR=127.0.0.1:$(cat "$WORK/port")

# ---------------------------------------------------------------- queries

# query FROM F KEYS NAMES WHERE DESIGNATED: the GROUP BY an analyst would write over the
# registry's tables: each live sentra with its latest figures, grouped by
# KEYS (expressions over s) with a total row, region names joined after.
measures() {
    local f=$1 des=$2
    echo "count(*) AS n, count(*) FILTER (WHERE $des) AS d,
       coalesce(sum($f.business_units), 0)::bigint, coalesce(sum($f.workers_male), 0)::bigint,
       coalesce(sum($f.workers_female), 0)::bigint, coalesce(sum($f.investment), 0)::bigint,
       coalesce(sum($f.production_value), 0)::bigint, coalesce(sum($f.material_value), 0)::bigint"
}
query() {
    local from=$1 f=$2 keys=$3 names=$4 where=$5 des=$6 sel grp
    if [ -n "$keys" ]; then
        sel="GROUPING($keys) AS gset, $keys,"
        grp="GROUP BY GROUPING SETS (($keys), ())"
    else
        sel="1 AS gset,"
        grp=""
    fi
    echo "SELECT g.*$names FROM (SELECT $sel $(measures "$f" "$des")
  FROM $from WHERE s.deleted_at IS NULL $where $grp) g"
}
BASE_FROM="sentra s LEFT JOIN LATERAL (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id
                                    ORDER BY x.year DESC LIMIT 1) f ON true"
STAT_FROM="sentra_stat s"

# name | stats_latency groups | province filter | keys | name joins | as_of
CASES=(
"total|none|||"
"province|province||s.province_code|, rp.name FROM_JOIN_P"
"regency|regency||s.regency_code|, rr.name FROM_JOIN_R"
"status,sector|status,sector||s.status, s.sector_group|"
"province 18 by regency|regency|18|s.regency_code|, rr.name FROM_JOIN_R"
"as of 2023-06-30, province|province||s.province_code|, rp.name FROM_JOIN_P|2023-06-30"
)

# Median of the "Time: X ms" lines psql prints for C runs of SQL.
psql_median() {
    local sql=$1
    { echo '\timing on'; echo '\o /dev/null'; for _ in $(seq 1 3); do echo "$sql;"; done
      for _ in $(seq 1 "$CALLS"); do echo "$sql;"; done; } |
        "$PSQL" "$CONN" -X -q -v ON_ERROR_STOP=1 |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n "$CALLS" | sort -g |
        awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}
median() {
    sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

log "$(nproc) cores; $RECORDS sentra; $RUNS rounds of $CALLS calls per case"
RES=$WORK/results
mkdir -p "$RES"
for r in $(seq 1 "$RUNS"); do
    i=0
    for c in "${CASES[@]}"; do
        IFS='|' read -r name groups prov keys names asof <<<"$c"
        where=""
        [ -n "$prov" ] && where="AND s.province_code = '$prov'"
        bwhere=$where swhere=$where bfrom=$BASE_FROM sfrom=$STAT_FROM bf=f sf=s des="s.designated"
        if [ -n "$asof" ]; then
            # as of a date (docs/STATS.md): formed by then (registration date
            # when no formation date), designated by a decree by then, the
            # latest figures up to that year
            bwhere="$where AND coalesce(s.formed_on, (s.created_at AT TIME ZONE 'Asia/Jayapura')::date) <= DATE '$asof'"
            swhere="$where AND s.formed_on <= DATE '$asof'"
            des="s.designated AND s.decree_date <= DATE '$asof'"
            lat="SELECT * FROM sentra_figures x WHERE x.year <= extract(year FROM DATE '$asof')::int"
            bfrom="sentra s LEFT JOIN LATERAL ($lat AND x.sentra_id = s.id ORDER BY x.year DESC LIMIT 1) f ON true"
            # (over sentra_stat, as the server does for the whole country:
            # one backward pass over the figures' primary key)
            sfrom="sentra_stat s LEFT JOIN (SELECT DISTINCT ON (x.sentra_id) x.* FROM sentra_figures x
                   WHERE x.year <= extract(year FROM DATE '$asof')::int
                   ORDER BY x.sentra_id DESC, x.year DESC) f ON f.sentra_id = s.sentra_id"
            sf=f
        fi
        joins=""
        case "$names" in
        *FROM_JOIN_P*) names=", rp.name"; joins=" LEFT JOIN region rp ON rp.code = g.province_code" ;;
        *FROM_JOIN_R*) names=", rr.name"; joins=" LEFT JOIN region rr ON rr.code = g.regency_code" ;;
        esac
        order="ORDER BY 1"
        if [ -n "$keys" ]; then
            nk=$(awk -F, '{print NF}' <<<"$keys")
            for j in $(seq 2 $((nk + 1))); do order="$order, $j"; done
        fi
        base="$(query "$bfrom" "$bf" "$keys" "$names" "$bwhere" "$des")$joins $order"
        stat="$(query "$sfrom" "$sf" "$keys" "$names" "$swhere" "$des")$joins $order"
        line=$("$CLIENT" "$ADDR" "$TOKEN" "$CALLS" "$groups" "${prov:--}" $asof) || die "stats_latency failed"
        echo "$(field "$line" median_ms)" >>"$RES/$i.server"
        psql_median "$base" >>"$RES/$i.psql"
        psql_median "$stat" >>"$RES/$i.stat"
        if [ "$r" = 1 ]; then
            # The psql queries must answer what the server answers.
            for q in "$base" "$stat"; do
                chk=$("$PSQL" "$CONN" -X -At -F ' ' -c "SELECT n, d, count(*) OVER () - 1 FROM ($q) z ORDER BY gset DESC LIMIT 1")
                [ "$chk" = "$(field "$line" sentra) $(field "$line" designated) $(field "$line" rows)" ] ||
                    die "$name: psql gives (sentra designated rows) $chk, the server $(field "$line" sentra) $(field "$line" designated) $(field "$line" rows)"
            done
            log "  $name: $(field "$line" rows) rows, total $(field "$line" sentra) sentra, $(field "$line" designated) designated (psql agrees)"
        fi
        i=$((i + 1))
    done
    log "round $r/$RUNS done"
done

# ---------------------------------------------------------------- report

printf '\nGetStatistics vs the equivalent GROUP BY, %s sentra, national token; median of %s rounds x %s calls (ms)\n\n' \
    "$RECORDS" "$RUNS" "$CALLS"
printf '| %-26s | %10s | %10s | %8s | %10s | %8s |\n' case server psql ratio psql-stat ratio
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------" "-----------:" "-----------:" "---------:" "-----------:" "---------:"
i=0
for c in "${CASES[@]}"; do
    IFS='|' read -r name _ <<<"$c"
    s=$(median <"$RES/$i.server"); p=$(median <"$RES/$i.psql"); t=$(median <"$RES/$i.stat")
    printf '| %-26s | %10s | %10s | %8s | %10s | %8s |\n' "$name" "$s" "$p" \
        "$(awk -v a="$s" -v b="$p" 'BEGIN {printf "%.2f", a / b}')" "$t" \
        "$(awk -v a="$s" -v b="$t" 'BEGIN {printf "%.2f", a / b}')"
    i=$((i + 1))
done
echo
echo "ratio < 1: the server answers faster than psql runs the GROUP BY."
