// geo.js: the map's arithmetic, without the DOM: GeoJSON to SVG path text
// through an equirectangular projection, the shapes' figures from the
// statistics, and the colour scale. Indonesia spans 11 degrees south to 6
// north, where a degree of longitude is 0.98 to 1 degree of latitude: a
// plate carree (scaled by the cosine of the middle latitude) draws it with
// no visible distortion, so no projection library is needed. No tiles, no
// network: the shapes are web/data/provinces.geojson.

// [minLon, minLat, maxLon, maxLat] of a geometry or feature collection.
export function bbox(obj) {
    let b = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = (c) => {
        if (typeof c[0] === 'number') {
            if (c[0] < b[0]) b[0] = c[0];
            if (c[1] < b[1]) b[1] = c[1];
            if (c[0] > b[2]) b[2] = c[0];
            if (c[1] > b[3]) b[3] = c[1];
        } else {
            for (const x of c) walk(x);
        }
    };
    const geom = (g) => g && g.coordinates && walk(g.coordinates);
    if (obj.type === 'FeatureCollection') obj.features.forEach((f) => geom(f.geometry));
    else if (obj.type === 'Feature') geom(obj.geometry);
    else geom(obj);
    return b;
}

// Widens a box by frac of its size on every side.
export function pad(b, frac) {
    const w = (b[2] - b[0]) * frac, hgt = (b[3] - b[1]) * frac;
    return [b[0] - w, b[1] - hgt, b[2] + w, b[3] + hgt];
}

// A projection for a map whose full extent is box: [x, y] in SVG units,
// x to the east, y downward, `width` units across.
export function projection(box, width) {
    const mid = ((box[1] + box[3]) / 2) * Math.PI / 180;
    const kx = Math.cos(mid);
    const scale = width / ((box[2] - box[0]) * kx);
    const project = ([lon, lat]) => [(lon - box[0]) * kx * scale, (box[3] - lat) * scale];
    return { project, width, height: (box[3] - box[1]) * scale, scale };
}

const r1 = (v) => Math.round(v * 10) / 10;

// SVG path text ("M..L..Z") of a Polygon or MultiPolygon.
export function pathData(geometry, project) {
    const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
    let d = '';
    for (const poly of polys) {
        for (const ring of poly) {
            let prev = null;
            ring.forEach((pt, i) => {
                const [x, y] = project(pt).map(r1);
                if (prev && prev[0] === x && prev[1] === y) return;
                d += (i === 0 ? 'M' : 'L') + x + ' ' + y;
                prev = [x, y];
            });
            d += 'Z';
        }
    }
    return d;
}

// The SVG viewBox ("x y w h") that shows box under a projection.
export function viewBox(box, proj) {
    const [x0, y0] = proj.project([box[0], box[3]]);
    const [x1, y1] = proj.project([box[2], box[1]]);
    return [r1(x0), r1(y0), r1(x1 - x0), r1(y1 - y0)].join(' ');
}

// The shape that draws province code, or null.
export function shapeOf(features, code) {
    return features.find((f) => (f.properties.codes || []).includes(code)) || null;
}

// Sums per shape of province rows: rows is regionSeries() of a GetStatistics
// answer grouped by province. Returns Map shapeId -> {sentra, designated,
// rate, codes: [codes with data]}.
export function shapeTotals(features, rows) {
    const out = new Map();
    rows.codes.forEach((code, i) => {
        const f = shapeOf(features, code);
        if (!f) return;
        const t = out.get(f.id) || { sentra: 0, designated: 0, rate: 0, codes: [] };
        t.sentra += rows.formed[i];
        t.designated += rows.designated[i];
        t.codes.push(code);
        out.set(f.id, t);
    });
    for (const t of out.values()) t.rate = t.sentra ? t.designated / t.sentra : 0;
    return out;
}

// Sequential colour scale, light to dark green, in five classes; value in
// 0..1 (a share of the largest count, or a rate). Returned as "#rrggbb".
const CLASSES = ['#e5f5e0', '#c7e9c0', '#a1d99b', '#74c476', '#31a354', '#006d2c'];

export function shade(value) {
    if (!(value > 0)) return CLASSES[0];
    const i = Math.min(CLASSES.length - 1, 1 + Math.floor(Math.min(value, 1) * (CLASSES.length - 1) - 1e-9));
    return CLASSES[Math.max(1, i)];
}

export const SHADES = CLASSES;

// Regency markers: the mean position of the sentra of each regency that
// have coordinates. points: [{regency, lon, lat}]. Returns Map code ->
// {lon, lat, n}.
export function regencyCentres(points) {
    const acc = new Map();
    for (const p of points) {
        const a = acc.get(p.regency) || { lon: 0, lat: 0, n: 0 };
        a.lon += p.lon;
        a.lat += p.lat;
        a.n += 1;
        acc.set(p.regency, a);
    }
    for (const a of acc.values()) {
        a.lon /= a.n;
        a.lat /= a.n;
    }
    return acc;
}

// The points of records that carry a location inside Indonesia's box.
export function pointsOf(records) {
    const out = [];
    for (const s of records) {
        const l = s.location;
        if (!l) continue;
        const lat = Number(l.latitude || 0), lon = Number(l.longitude || 0);
        if (!lat && !lon) continue;
        if (lat < -11.5 || lat > 6.5 || lon < 94.5 || lon > 141.5) continue;
        out.push({ id: s.id, name: s.name || '', regency: s.regencyCode || '', lon, lat,
                   designated: s.status === 'STATUS_DESIGNATED' || s.status === 'STATUS_REVITALISED' });
    }
    return out;
}
