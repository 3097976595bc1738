#!/bin/bash
# test_cli.sh: sentra-cli end to end against two live servers on two empty
# databases: create records, list, get, update, stats, export to CSV, import
# the CSV into the other (empty) database, and check that the same records
# and the same statistics come out; then bad rows, exit codes, --help of
# every command, sync pull and sync stream, with and without --kinds. Ends
# with "N passed, N failed".
#
# Environment (set by the test runner; defaults for a manual run from the
# repository root): SENTRAD, SENTRA_CLI, SENTRA_TEST_PGDIR,
# SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS.
set -u

SENTRAD=${SENTRAD:-bin/sentrad}
CLI=${SENTRA_CLI:-bin/sentra-cli}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-cli-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-migrations}

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-cli.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; }
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2], got [$3]"; fi
}
checkerr() { # like check, showing $TMP/err on failure
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2], got [$3]"; sed 's/^/       /' "$TMP/err" | head -20; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

# ---------------------------------------------------------------- setup

"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || { bad "private PostgreSQL cluster"; finish; }
DB_A=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_cli_a) || { bad "createdb a"; finish; }
DB_B=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_cli_b) || { bad "createdb b"; finish; }

# start_server DB NAME: starts sentrad on a free port; sets PORT.
start_server() {
    local pf="$TMP/$2.port"
    "$SENTRAD" serve --port 0 --port-file "$pf" --db "$1" --migrations "$MIGRATIONS" \
        --log-level warn >"$TMP/$2.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 400); do
        if [ -s "$pf" ]; then PORT=$(cat "$pf"); return 0; fi
        sleep 0.05
    done
    echo "sentrad did not start:"; cat "$TMP/$2.log"
    return 1
}
start_server "$DB_A" a || { bad "start server a"; finish; }
ADDR_A=127.0.0.1:$PORT
start_server "$DB_B" b || { bad "start server b"; finish; }
ADDR_B=127.0.0.1:$PORT

admin_token() { "$SENTRAD" token create --role admin --label test_cli --db "$1" 2>/dev/null | tail -1; }
ADMIN_A=$(admin_token "$DB_A")
ADMIN_B=$(admin_token "$DB_B")
[ -n "$ADMIN_A" ] && [ -n "$ADMIN_B" ] && ok "admin tokens bootstrapped" || { bad "admin tokens"; finish; }

# Province 18 tokens (read and write all of Lampung), made through the CLI.
prov_token() {
    "$CLI" --addr "$1" --token "$2" tokens create --role province --region 18 --label test_cli 2>/dev/null |
        awk '$1 == "secret" { print $2 }'
}
PROV_A=$(prov_token "$ADDR_A" "$ADMIN_A")
PROV_B=$(prov_token "$ADDR_B" "$ADMIN_B")
[ -n "$PROV_A" ] && [ -n "$PROV_B" ] && ok "tokens create (province 18)" || { bad "tokens create"; finish; }

A() { "$CLI" --addr "$ADDR_A" --token "$PROV_A" "$@"; }
B() { "$CLI" --addr "$ADDR_B" --token "$PROV_B" "$@"; }

# whoami: the token in use, for any role (the admin's too).
out=$(A whoami 2>&1)
grep -q '^role     province$' <<<"$out" && grep -q '^region   18$' <<<"$out" &&
    grep -q '^label    test_cli$' <<<"$out" && ok "whoami (province 18)" || bad "whoami (province 18)" "$out"
out=$("$CLI" --addr "$ADDR_A" --token "$ADMIN_A" --json whoami 2>&1)
grep -q '"role":"ROLE_ADMIN"' <<<"$out" && ok "whoami --json (admin)" || bad "whoami --json (admin)" "$out"

# ---------------------------------------------------------------- basics

A health >/dev/null; check "health exits 0" 0 $?
A ping -c 3 >/dev/null; check "ping exits 0" 0 $?
n=$(A describe 2>/dev/null | grep -c '^/sentra.v1.')
[ "$n" -ge 17 ] && ok "describe lists $n methods" || bad "describe lists methods" "got $n"

# ---------------------------------------------------------------- create

create() { A create --quiet "$@" >/dev/null 2>"$TMP/err"; }
created=0
create --name "Sentra Keripik Pisang Way Halim" --regency 18.71 --commodity "keripik pisang" \
    --product keripik --kbli 10794 --kbli-version 2020 --sector food --status formed \
    --formed-on 2021-03-01 --year 2023 --units 12 --workers-male 20 --workers-female 25 \
    --investment 150000000 --production 900000000 --export-dest SG,JP --lat -5.3971 --lon 105.2668 &&
    created=$((created + 1))
create --name "Sentra Tapis Lampung" --regency 18.71 --commodity "kain tapis" --product "kain tapis" \
    --kbli 13912 --kbli-version 2020 --sector textiles --status designated --formed-on 2019-07-10 \
    --decree-number "SK 510/2020" --decree-date 2020-02-14 --decree-official "Walikota Bandar Lampung" \
    --year 2022 --units 30 --workers-male 5 --workers-female 61 --investment 420000000 \
    --production 2100000000 --material 800000000 && created=$((created + 1))
create --name "Sentra Kopi Metro" --regency 18.72 --commodity kopi --product "kopi bubuk" \
    --kbli 10761 --kbli-version 2020 --sector food --status designated --formed-on 2018-01-20 \
    --decree-number "SK 7/2019" --decree-date 2019-03-01 --decree-official "Walikota Metro" \
    --year 2023 --units 9 --workers-male 14 --workers-female 9 --investment 95000000 \
    --production 610000000 && created=$((created + 1))
create --name "Sentra Mebel Rotan, \"Metro\"" --regency 18.72 --commodity rotan --product kursi \
    --kbli 31001 --kbli-version 2020 --sector furniture --status inactive --formed-on 2015-05-05 \
    --year 2021 --units 6 --workers-male 11 && created=$((created + 1))
check "create 4 sentra" 4 "$created"
[ "$created" -eq 4 ] || cat "$TMP/err"

# A second year of figures for the first record (update keeps other years).
ID1=$(A list --json --text "Way Halim" | head -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
A update "$ID1" --quiet --year 2022 --units 10 --workers-male 18 --workers-female 20 >/dev/null 2>&1
check "update adds a year" 2 "$(A get "$ID1" --json | grep -o '"year":' | wc -l | tr -d ' ')"
# --json is proto3's JSON mapping with proto field names: int64 as strings.
A get "$ID1" --json | grep -q '"business_units":"10","workers_male":"18"' &&
    ok "get --json: proto field names, int64 as strings" || bad "get --json shape" "$(A get "$ID1" --json)"

# Refused create: exit 13 and the field named.
A create --name "" --regency 18.71 --kbli 99999 >/dev/null 2>"$TMP/err"
check "invalid create exits 13" 13 $?
grep -q "kbli_code" "$TMP/err" && ok "violations printed" || bad "violations printed" "$(cat "$TMP/err")"

# ---------------------------------------------------------------- list/get

check "list shows 4 rows" 4 "$(A list --json | wc -l | tr -d ' ')"
check "list table has header+rule+4" 6 "$(A list 2>/dev/null | wc -l | tr -d ' ')"
check "list --status designated" 2 "$(A list --json --status designated | wc -l | tr -d ' ')"
check "list --regency 18.72" 2 "$(A list --json --regency 18.72 | wc -l | tr -d ' ')"
A get 00000000-0000-4000-8000-000000000000 >/dev/null 2>&1
check "get unknown id exits 15 (NOT_FOUND)" 15 $?

# ---------------------------------------------------------------- stats

A stats --group-by regency,status --csv >"$TMP/stats_a.csv" 2>"$TMP/err"
check "stats --csv exits 0" 0 $?
grep -q "Kota Bandar Lampung" "$TMP/stats_a.csv" && ok "stats names regions" || bad "stats names regions" "$(cat "$TMP/stats_a.csv" "$TMP/err")"
total=$(A stats --json | grep '"total":true')
echo "$total" | grep -q '"sentra":"4"' && ok "stats total counts 4 sentra" || bad "stats total" "$total"
A stats --group-by regency | grep -q '^TOTAL' && ok "stats table has a TOTAL row" || bad "stats TOTAL row"

# ---------------------------------------------------------------- export / import

A export --csv --out "$TMP/a.csv" 2>/dev/null
check "export exits 0" 0 $?
check "export has header + 4 rows" 5 "$(wc -l <"$TMP/a.csv" | tr -d ' ')"

B import "$TMP/a.csv" 2>"$TMP/import.err" >/dev/null
check "import into the empty database exits 0" 0 $?
grep -q "4 imported, 0 refused" "$TMP/import.err" && ok "import reports 4 imported" || bad "import summary" "$(cat "$TMP/import.err")"

B stats --group-by regency,status --csv >"$TMP/stats_b.csv" 2>/dev/null
if cmp -s "$TMP/stats_a.csv" "$TMP/stats_b.csv"; then ok "same statistics after the round trip"
else bad "same statistics after the round trip" "$(diff "$TMP/stats_a.csv" "$TMP/stats_b.csv" | head -5)"; fi
A stats --group-by sector --year 2022 --csv >"$TMP/s2a.csv" 2>/dev/null
B stats --group-by sector --year 2022 --csv >"$TMP/s2b.csv" 2>/dev/null
cmp -s "$TMP/s2a.csv" "$TMP/s2b.csv" && ok "same 2022 statistics (earlier figures survive)" ||
    bad "same 2022 statistics" "$(diff "$TMP/s2a.csv" "$TMP/s2b.csv" | head -5)"

B export --csv --out "$TMP/b.csv" 2>/dev/null
if cmp -s <(sort "$TMP/a.csv") <(sort "$TMP/b.csv"); then ok "export of the copy equals the original export"
else bad "export of the copy equals the original" "$(diff <(sort "$TMP/a.csv") <(sort "$TMP/b.csv") | head -5)"; fi

# Importing again: every row exists already.
B import --skip-existing "$TMP/a.csv" 2>"$TMP/err" >/dev/null
checkerr "re-import with --skip-existing exits 0" 0 $?

# Bad rows: reported by line with the server's reasons; good rows applied.
cat >"$TMP/bad.csv" <<'EOF'
name,regency_code,address,commodity,kbli_code,kbli_version,sector_group,status,formed_on,year,business_units
Sentra Gula Aren,18.71,,gula aren,10721,2020,food,formed,2022-01-01,2023,7
,18.71,,gula,99999,2020,food,formed,2022-01-01,2023,7
Sentra Batik,18.71,,batik,13134,2020,textiles,formed,2022-01-01,2023,lots
Sentra Anyaman Bambu,18.72,"Jl. Bambu
No. 5",bambu,16291,2020,crafts,formed,2020-06-01,2023,8
Sentra Arang,18.72,"Jl. Arang
No. 9",arang,99999,2020,crafts,formed,2020-06-01,2023,8
EOF
B import "$TMP/bad.csv" >/dev/null 2>"$TMP/err"
check "import with bad rows exits 1" 1 $?
grep -q "bad.csv:3: INVALID_ARGUMENT" "$TMP/err" && grep -A3 "bad.csv:3:" "$TMP/err" | grep -q kbli_code &&
    ok "bad row 3 reported with line and reason" || bad "bad row 3 reported" "$(cat "$TMP/err")"
grep -q "bad.csv:4: .*" "$TMP/err" && grep -A2 "bad.csv:4:" "$TMP/err" | grep -q "business_units" &&
    ok "bad row 4 (not an integer) reported" || bad "bad row 4 reported" "$(cat "$TMP/err")"
grep -q "bad.csv:7: INVALID_ARGUMENT" "$TMP/err" &&
    ok "a multi-line bad row is reported at its first line" || bad "multi-line row line number" "$(cat "$TMP/err")"
grep -q "5 rows: 2 imported, 3 refused" "$TMP/err" && ok "valid rows applied (multi-line field too)" ||
    bad "valid rows applied" "$(cat "$TMP/err")"

printf 'name,color\nx,red\n' >"$TMP/unknown.csv"
B import "$TMP/unknown.csv" >/dev/null 2>"$TMP/err"
checkerr "unknown column exits 3" 3 $?

# ---------------------------------------------------------------- exit codes, help

"$CLI" --addr 127.0.0.1:1 --token x ping -c 1 >/dev/null 2>&1
check "unreachable server exits 24 (UNAVAILABLE)" 24 $?
"$CLI" --addr "$ADDR_A" --token wrong list >/dev/null 2>&1
check "bad token exits 26 (UNAUTHENTICATED)" 26 $?
"$CLI" frobnicate >/dev/null 2>&1
check "unknown command exits 2" 2 $?
A list --bogus >/dev/null 2>&1
check "unknown option exits 2" 2 $?
helps=0
for cmd in health ping describe create get update delete list regions region stats timeseries \
    tokens whoami sync import export sleep; do
    "$CLI" "$cmd" --help 2>/dev/null | grep -q "usage:" && helps=$((helps + 1))
done
check "--help on all 18 commands" 18 "$helps"

# ---------------------------------------------------------------- delete, sync

ID2=$(A list --json --text Tapis | head -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
A delete "$ID2" >/dev/null 2>&1
check "delete exits 0" 0 $?
A get "$ID2" >/dev/null 2>&1
check "deleted record is NOT_FOUND" 15 $?

A sync pull --journal "$TMP/journal.jsonl" --cursor-file "$TMP/cursor" >/dev/null 2>"$TMP/err"
rc=$?
if grep -q UNIMPLEMENTED "$TMP/err"; then
    echo "skip - sync pull (PullChanges not served yet)"
else
    check "sync pull exits 0" 0 $rc
    [ -s "$TMP/cursor" ] && ok "sync pull stored a cursor" || bad "sync pull cursor" "$(cat "$TMP/err")"
    grep -q '"deleted":true' "$TMP/journal.jsonl" && ok "sync pull journal has the tombstone" ||
        bad "sync pull tombstone" "$(head -3 "$TMP/journal.jsonl")"
    A sync pull --journal "$TMP/journal2.jsonl" --cursor-file "$TMP/cursor" >/dev/null 2>&1
    check "second pull from the cursor is empty" 0 "$(wc -l <"$TMP/journal2.jsonl" | tr -d ' ')"
    # push: an edited record from the journal is applied...
    grep '"name":"Sentra Kopi Metro"' "$TMP/journal.jsonl" | tail -1 |
        sed 's/Sentra Kopi Metro/Sentra Kopi Robusta Metro/' >"$TMP/push1.jsonl"
    A sync push --client-id test-cli-1 "$TMP/push1.jsonl" >/dev/null 2>"$TMP/err"
    checkerr "sync push of an edited record exits 0" 0 $?
    KID=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$TMP/push1.jsonl")
    A get "$KID" --json | grep -q "Robusta" && ok "the pushed edit is on the server" || bad "pushed edit"
    # ...and a second edit based on the same old version is a conflict
    # (64-bit integers are strings in proto3 JSON; base_version is given as
    # a number below, which is read too.)
    OLDV=$(sed 's/.*"version":"\([0-9]*\)".*/\1/' "$TMP/push1.jsonl")
    REC=$(sed 's/Robusta/Arabika/; s/,"version":"[0-9]*"//' "$TMP/push1.jsonl")
    printf '{"mutation_id":"test-cli-m2","op":"MUTATION_OP_UPSERT","base_version":%s,"sentra":%s}\n' \
        "$OLDV" "$REC" >"$TMP/push2.jsonl"
    A sync push --client-id test-cli-1 "$TMP/push2.jsonl" >/dev/null 2>"$TMP/err"
    checkerr "sync push of a stale edit exits 1" 1 $?
    grep -q "push2.jsonl:1: test-cli-m2: CONFLICT" "$TMP/err" && ok "the conflict is reported by line" ||
        bad "conflict reported" "$(cat "$TMP/err")"

    # sync stream: the same files over one open StreamChanges stream. From
    # no cursor: every live record once, in messages of 2, for 2 s.
    ids() { sed 's/.*"id":"\([^"]*\)".*/\1/' "$1" | sort; }
    A sync stream --journal "$TMP/s1.jsonl" --cursor-file "$TMP/scursor" --batch 2 --seconds 2 \
        >/dev/null 2>"$TMP/err"
    checkerr "sync stream exits 0 after --seconds" 0 $?
    A list --all --json | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort >"$TMP/live"
    check "sync stream: every live record once" "$(cat "$TMP/live")" "$(ids "$TMP/s1.jsonl")"
    grep -q "streamed $(wc -l <"$TMP/live" | tr -d ' ') changes" "$TMP/err" &&
        ok "sync stream reports what it streamed" || bad "sync stream report" "$(cat "$TMP/err")"
    # Run again from its cursor while another client writes: only that write.
    A sync stream --journal "$TMP/s2.jsonl" --cursor-file "$TMP/scursor" --seconds 4 >/dev/null 2>&1 &
    spid=$!
    sleep 1.5
    create --name "Sentra Kopi Live" --regency 18.72 --commodity kopi --product "kopi bubuk" \
        --kbli 10761 --kbli-version 2020 --sector food --status formed --formed-on 2020-01-01
    wait $spid
    check "sync stream exits 0 again" 0 $?
    LIVE=$(A list --json --text "Kopi Live" | head -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
    check "resumed from its cursor, the stream brings only the record written meanwhile" "$LIVE" \
        "$(ids "$TMP/s2.jsonl")"

    # sync pull / stream --kinds: records of a sentra, each journal line a
    # Record whose one key names its kind.
    MID=$(A members create --sentra "$KID" --set name="IKM Kopi Jaya" --set owner_name="Pak Joko" \
        --set owner_sex=male --json 2>"$TMP/err" | sed 's/.*"id":"\([^"]*\)".*/\1/')
    OID=$(A obstacles create --sentra "$KID" --set category=marketing --set description="Pasar sempit" \
        --set severity=medium --set reported_on=2023-04-01 --set status=open --json 2>>"$TMP/err" |
        sed 's/.*"id":"\([^"]*\)".*/\1/')
    [ -n "$MID" ] && [ -n "$OID" ] && ok "members create and obstacles create" ||
        bad "members/obstacles create" "$(cat "$TMP/err")"
    A sync pull --kinds member,obstacle --journal "$TMP/k1.jsonl" --cursor-file "$TMP/kcursor" \
        >/dev/null 2>"$TMP/err"
    checkerr "sync pull --kinds exits 0" 0 $?
    check "sync pull --kinds: every line names its kind (member or obstacle)" \
        "$(wc -l <"$TMP/k1.jsonl" | tr -d ' ')" "$(grep -c '^{"\(member\|obstacle\)":{' "$TMP/k1.jsonl")"
    check "sync pull --kinds: the member, once" 1 "$(grep -c "^{\"member\":{\"id\":\"$MID\"" "$TMP/k1.jsonl")"
    check "sync pull --kinds: the obstacle, once" 1 "$(grep -c "^{\"obstacle\":{\"id\":\"$OID\"" "$TMP/k1.jsonl")"
    check "sync pull --kinds: no sentra" 0 "$(grep -c '"sentra":{' "$TMP/k1.jsonl")"
    A sync pull --kinds member,obstacle --journal "$TMP/k2.jsonl" --cursor-file "$TMP/kcursor" >/dev/null 2>&1
    check "sync pull --kinds again from its cursor is empty" 0 "$(wc -l <"$TMP/k2.jsonl" | tr -d ' ')"
    A sync pull --kinds sentra,member --journal "$TMP/k3.jsonl" >/dev/null 2>&1
    check "sync pull --kinds sentra,member: the sentra as Records" \
        "$(A list --all --json | wc -l | tr -d ' ')" \
        "$(grep '^{"sentra":{' "$TMP/k3.jsonl" | grep -vc '"deleted":true')"
    A sync pull --kinds member,bogus >/dev/null 2>"$TMP/err"
    checkerr "sync pull --kinds with an unknown kind exits 2" 2 $?
    A sync stream --kinds member,obstacle --journal "$TMP/k4.jsonl" --cursor-file "$TMP/kscursor" \
        --batch 1 --seconds 2 >/dev/null 2>"$TMP/err"
    checkerr "sync stream --kinds exits 0 after --seconds" 0 $?
    check "sync stream --kinds: the lines of sync pull --kinds" "$(cat "$TMP/k1.jsonl")" "$(cat "$TMP/k4.jsonl")"
    # Run again from its cursor while an obstacle is written: only that one.
    A sync stream --kinds obstacle --journal "$TMP/k5.jsonl" --cursor-file "$TMP/kscursor" \
        --seconds 4 >/dev/null 2>&1 &
    spid=$!
    sleep 1.5
    OID2=$(A obstacles create --sentra "$KID" --set category=capital --set description="Modal kurang" \
        --set severity=high --set reported_on=2023-05-01 --set status=open --json 2>/dev/null |
        sed 's/.*"id":"\([^"]*\)".*/\1/')
    A members create --sentra "$KID" --set name="IKM Tidak Diminta" --set owner_name="Bu Sari" \
        --set owner_sex=female >/dev/null 2>&1
    wait $spid
    check "sync stream --kinds exits 0 again" 0 $?
    check "sync stream --kinds, resumed, brings only the obstacle written meanwhile" \
        "{\"obstacle\":{\"id\":\"$OID2\"" "$(cut -c1-56 "$TMP/k5.jsonl")"
fi

finish
