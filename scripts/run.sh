#!/bin/bash
# run.sh: what `make run` does after building: prepares the database and
# runs sentrad in the foreground (Ctrl-C stops it cleanly).
#
#   1. the database: $SENTRA_DB_URL if set, else the private PostgreSQL
#      cluster in var/pg (scripts/pgcluster.sh ensure var/pg), created and
#      started as needed;
#   2. the schema: bin/sentrad migrate;
#   3. an admin token, created on first run and kept in var/admin.token
#      (mode 600); made again if that token is gone from the database (say
#      after `make destroy-db`) or was revoked;
#   4. exec bin/sentrad serve on 127.0.0.1:$SENTRA_PORT (default 7600).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SENTRAD=$ROOT/bin/sentrad
CLI=$ROOT/bin/sentra-cli
PORT=${SENTRA_PORT:-7600}
HOST=${SENTRA_HOST:-127.0.0.1}
TOKEN_FILE=$ROOT/var/admin.token

die() { echo "run: $*" >&2; exit 1; }

[ -x "$SENTRAD" ] || die "$SENTRAD is missing: run make first"
mkdir -p "$ROOT/var"

if [ -n "${SENTRA_DB_URL:-}" ]; then
    DB=$SENTRA_DB_URL
    echo "run: database from SENTRA_DB_URL" >&2
else
    DB=$("$ROOT/scripts/pgcluster.sh" ensure "$ROOT/var/pg") ||
        die "could not prepare the private PostgreSQL cluster in var/pg (its log: var/pg/log/)"
    echo "run: private PostgreSQL cluster in var/pg ($DB)" >&2
fi

"$SENTRAD" migrate --db "$DB" >&2 || die "migrations failed (see above)"

# Whether the kept admin token is still valid in this database.
token_valid() {
    [ -s "$TOKEN_FILE" ] || return 1
    local ok
    ok=$(psql -X -Atq -d "$DB" -v secret="$(cat "$TOKEN_FILE")" <<'EOF' 2>/dev/null
SELECT 1 FROM api_token
WHERE secret_hash = sha256(convert_to(:'secret', 'UTF8')) AND revoked_at IS NULL;
EOF
    ) || return 1
    [ "$ok" = 1 ]
}

if ! token_valid; then
    [ -s "$TOKEN_FILE" ] && echo "run: $TOKEN_FILE is not a valid token in this database; making a new one" >&2
    secret=$("$SENTRAD" token create --db "$DB" --role admin --label "make run") ||
        die "could not create the admin token"
    [ -n "$secret" ] || die "sentrad token create printed no secret"
    (umask 077 && printf '%s\n' "$secret" > "$TOKEN_FILE.tmp") && mv "$TOKEN_FILE.tmp" "$TOKEN_FILE"
    chmod 600 "$TOKEN_FILE"
    echo "run: created an admin token; it is kept in var/admin.token (mode 600)" >&2
fi

cat >&2 <<EOF

sentrad will listen on $HOST:$PORT. From another terminal:

    SENTRA_ADDR=$HOST:$PORT SENTRA_TOKEN=\$(cat var/admin.token) bin/sentra-cli health

The admin token is in var/admin.token. Ctrl-C stops the server; \`make stop\`
then stops PostgreSQL, \`make destroy-db\` deletes its data.

EOF
[ -x "$CLI" ] || echo "run: note: $CLI is not built yet" >&2

exec "$SENTRAD" serve --db "$DB" --host "$HOST" --port "$PORT"
