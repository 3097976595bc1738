#!/bin/bash
# test_ci_scripts.sh: the scripts CI runs before any test can run are
# consistent. Every option of scripts/deps.sh that .ci/run or the Makefiles
# pass has its own case arm (a merge once dropped `--ha`: CI stopped at
# "usage:" after 20 s), the shell scripts parse, and the apt-get lines of
# deps.sh are not cut short (an install command whose continuation line
# is another command). Nothing is installed here. Ends with "N passed, N
# failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }

for f in "$ROOT"/scripts/*.sh "$ROOT"/.ci/run "$ROOT"/tests/ha/ha-test.sh; do
    [ -f "$f" ] || continue
    case "$(head -1 "$f")" in
    *bash*) bash -n "$f" 2>/dev/null && ok "bash -n ${f#"$ROOT"/}" || bad "bash -n ${f#"$ROOT"/}" ;;
    *) sh -n "$f" 2>/dev/null && ok "sh -n ${f#"$ROOT"/}" || bad "sh -n ${f#"$ROOT"/}" ;;
    esac
done

# Every deps.sh option used anywhere in the build and CI is handled.
used=$(grep -rhoE 'deps\.sh --[a-z]+' "$ROOT/.ci" "$ROOT/Makefile" "$ROOT"/tests/*/*.mk "$ROOT/bench" \
        "$ROOT/README.md" 2>/dev/null | sed 's/.*deps\.sh //' | sort -u)
[ -n "$used" ] && ok "deps.sh options found: $(echo $used)" || bad "no deps.sh option found in .ci/run or the Makefile"
for o in $used; do
    if grep -qE "^$o\)" "$ROOT/scripts/deps.sh"; then
        ok "deps.sh handles $o"
    else
        bad "deps.sh has no case arm for $o"
    fi
done
# The usage line names every arm and every arm is in the usage line.
usage=$(sed -n 's/.*usage: $0 \(.*\)" >&2/\1/p' "$ROOT/scripts/deps.sh" | tr -d '|' )
arms=$(grep -oE '^--[a-z]+\)' "$ROOT/scripts/deps.sh" | tr -d ')' | sort | tr '\n' ' ')
uarms=$(echo $usage | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$arms" = "$uarms" ] && ok "deps.sh usage names its arms ($arms)" ||
    bad "deps.sh arms [$arms] but usage says [$uarms]"

# A continued apt-get line must continue with package names, not a command.
if awk '/apt-get install.*\\$/ { cont = 1; next }
        cont { if ($1 ~ /^(echo|exit|if|fi|;;)/) bad = 1; cont = /\\$/ }
        END { exit bad }' "$ROOT/scripts/deps.sh"; then
    ok "deps.sh apt-get lines continue with packages"
else
    bad "deps.sh: an apt-get install line continues into a command"
fi

# The check that CI runs first succeeds on this machine (the suite runs).
"$ROOT/scripts/deps.sh" --check >/dev/null 2>&1 && ok "deps.sh --check" || bad "deps.sh --check"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
