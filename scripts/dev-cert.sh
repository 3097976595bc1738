#!/bin/sh
# dev-cert.sh: a local certificate authority and certificates signed by it,
# for trying TLS on one machine (`make dev-cert`). Never for production:
# docs/DEPLOY.md says what to use there.
#
#   scripts/dev-cert.sh [DIR] [--force]      DIR defaults to var/tls
#
# Writes into DIR (keys readable by their owner only):
#   ca.pem, ca.key         the CA (ECDSA P-256, 5 years)
#   server.pem, server.key a server certificate for localhost, 127.0.0.1 and
#                          ::1 (397 days), issued by the CA
#   client.pem, client.key a client certificate (CN dev-client) for trying
#                          mutual TLS (--tls-client-ca DIR/ca.pem)
# Existing files are kept unless --force. Needs the openssl command.
set -eu

DIR=var/tls
FORCE=0
for a in "$@"; do
    case "$a" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "dev-cert: unknown option $a" >&2; exit 2 ;;
    *) DIR=$a ;;
    esac
done
command -v openssl >/dev/null || { echo "dev-cert: the openssl command is needed (apt-get install openssl)" >&2; exit 1; }

if [ -f "$DIR/server.pem" ] && [ "$FORCE" = 0 ]; then
    echo "dev-cert: $DIR/server.pem exists (use --force to make new ones)"
    exit 0
fi
mkdir -p "$DIR"
umask 077
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA.
key "$DIR/ca.key"
openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 1825 -subj "/O=sentra dev/CN=sentra dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$DIR/ca.pem"

# sign NAME SUBJECT EXTFILE: NAME.key and NAME.pem issued by the CA.
sign() {
    key "$DIR/$1.key"
    openssl req -new -key "$DIR/$1.key" -subj "$2" -out "$T/$1.csr"
    openssl x509 -req -in "$T/$1.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -sha256 -days 397 \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$3" -out "$T/$1.leaf" 2>/dev/null
    mv "$T/$1.leaf" "$DIR/$1.pem"
}

cat > "$T/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EOF
cat > "$T/client.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EOF
sign server "/O=sentra dev/CN=localhost" "$T/server.ext"
sign client "/O=sentra dev/CN=dev-client" "$T/client.ext"
chmod 644 "$DIR"/*.pem

echo "dev-cert: wrote $DIR/{ca,server,client}.{pem,key}"
echo "  sentrad --tls-cert $DIR/server.pem --tls-key $DIR/server.key"
echo "  sentra-cli --addr tls://localhost:7600 --ca $DIR/ca.pem ping"
