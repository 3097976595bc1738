#!/bin/sh
# tls_pki.sh: the certificates of the TLS tests (tests/integration/test_tls.*),
# made afresh with the openssl command in DIR:
#
#   ca.pem              the root CA the clients trust ("sentra test root")
#   inter.pem           an intermediate CA under it, which issues the servers'
#   server.pem/.key     localhost, 127.0.0.1, ::1; server.pem is the leaf then
#                       the intermediate (a chain, as --tls-cert takes it)
#   server2.pem/.key    the same names, another key and serial (reloads)
#   wrongname.pem/.key  a valid chain for sentra.invalid only
#   expired.pem/.key    localhost, valid 2020-01-01 to 2021-01-01
#   client.pem/.key     a client certificate from the root (CN district-1871)
#   rogue-ca.pem        another root nobody trusts
#   rogue-client.pem/.key  a client certificate from the rogue root
#   garbage.pem         not a certificate
#
#   tests/lib/tls_pki.sh DIR
set -eu
DIR=$1
mkdir -p "$DIR"
cd "$DIR"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
root() { # NAME SUBJECT
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}
ext() { # FILE KIND [SAN]
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$2"
        if [ -n "${3:-}" ]; then echo "subjectAltName=$3"; fi
    } > "$1"
}
issue() { # NAME SUBJECT ISSUER EXTFILE
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$T/$1.csr"
    openssl x509 -req -in "$T/$1.csr" -CA "$3.pem" -CAkey "$3.key" -sha256 -days 30 \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$4" -out "$1.pem" 2>/dev/null
}

root ca "/O=sentra test/CN=sentra test root"
root rogue-ca "/O=rogue/CN=rogue root"

# The intermediate.
key inter.key
openssl req -new -key inter.key -subj "/O=sentra test/CN=sentra test intermediate" -out "$T/inter.csr"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$T/inter.ext"
openssl x509 -req -in "$T/inter.csr" -CA ca.pem -CAkey ca.key -sha256 -days 3650 \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$T/inter.ext" -out inter.pem 2>/dev/null

SAN="DNS:localhost,IP:127.0.0.1,IP:::1"
ext "$T/server.ext" serverAuth "$SAN"
ext "$T/wrong.ext" serverAuth "DNS:sentra.invalid"
ext "$T/client.ext" clientAuth
for s in server server2; do
    issue "$s" "/O=sentra test/CN=localhost" inter "$T/server.ext"
    cat inter.pem >> "$s.pem"
done
issue wrongname "/O=sentra test/CN=sentra.invalid" inter "$T/wrong.ext"
cat inter.pem >> wrongname.pem
issue client "/O=sentra test/CN=district-1871" ca "$T/client.ext"
issue rogue-client "/O=rogue/CN=district-1871" rogue-ca "$T/client.ext"

# Expired: openssl x509 cannot set dates in the past; openssl ca can.
mkdir -p "$T/ca/new"
: > "$T/ca/index.txt"
echo 01 > "$T/ca/serial"
cat > "$T/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $T/ca/index.txt
new_certs_dir = $T/ca/new
serial = $T/ca/serial
default_md = sha256
policy = p
[ p ]
commonName = supplied
CNF
key expired.key
openssl req -new -key expired.key -subj "/O=sentra test/CN=localhost" -out "$T/expired.csr"
openssl ca -batch -notext -config "$T/ca.cnf" -cert inter.pem -keyfile inter.key -in "$T/expired.csr" \
    -startdate 20200101000000Z -enddate 20210101000000Z -extfile "$T/server.ext" -out expired.pem 2>/dev/null
cat inter.pem >> expired.pem

echo "not a certificate" > garbage.pem
chmod 644 ./*.pem ./*.key
