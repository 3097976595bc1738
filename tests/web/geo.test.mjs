// geo.test.mjs: the map's data and arithmetic (web/js/geo.js,
// web/data/provinces.geojson): every Kemendagri province has exactly one
// shape, the shapes are where they should be, projection and paths.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

import * as G from '../../web/js/geo.js';
import { regionSeries } from '../../web/js/model.js';

const geo = JSON.parse(readFileSync('web/data/provinces.geojson', 'utf8'));
const provinces = gunzipSync(readFileSync('data/regions/provinces.csv.gz')).toString('utf8')
    .trim().split('\n').slice(1).map((l) => l.split(',')[0]);

// Ray casting over every ring of a MultiPolygon (holes count as outside).
function inside(feature, [x, y]) {
    let hit = false;
    for (const poly of feature.geometry.coordinates)
        for (const ring of poly)
            for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
                const [xi, yi] = ring[i], [xj, yj] = ring[j];
                if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
            }
    return hit;
}

test('shapes: each of the 38 Kemendagri provinces maps onto exactly one shape', () => {
    assert.equal(provinces.length, 38);
    const codes = geo.features.flatMap((f) => f.properties.codes);
    assert.deepEqual([...codes].sort(), [...provinces].sort());
    for (const p of provinces) assert.ok(G.shapeOf(geo.features, p), p);
    // The shapes shared since the splits of 2012 and 2022.
    assert.deepEqual(G.shapeOf(geo.features, '65').properties.codes, ['64', '65']);
    assert.deepEqual(G.shapeOf(geo.features, '94').properties.codes, ['91', '93', '94', '95']);
    assert.deepEqual(G.shapeOf(geo.features, '96').properties.codes, ['92', '96']);
});

test('shapes: valid multipolygons inside Indonesia\'s box', () => {
    for (const f of geo.features) {
        assert.equal(f.geometry.type, 'MultiPolygon');
        assert.ok(f.geometry.coordinates.length > 0, f.id);
        for (const poly of f.geometry.coordinates)
            for (const ring of poly) {
                assert.ok(ring.length >= 4, `${f.id}: ring of ${ring.length}`);
                for (const [lon, lat] of ring) assert.ok(lon > 94 && lon < 142 && lat > -12 && lat < 7, `${f.id}: ${lon},${lat}`);
            }
    }
});

test('shapes: the demo data\'s regency centres fall inside Lampung, Jakarta inside Jakarta', () => {
    const sql = readFileSync('data/demo/lampung.sql', 'utf8');
    const block = sql.slice(sql.indexOf('INSERT INTO demo_centre'), sql.indexOf(';', sql.indexOf('INSERT INTO demo_centre')));
    const centres = [...block.matchAll(/\('(18\.\d\d)', (-?[\d.]+), (-?[\d.]+)\)/g)].map((m) => [m[1], +m[3], +m[2]]);
    assert.equal(centres.length, 15);
    const lampung = G.shapeOf(geo.features, '18');
    const near = (f, [lon, lat], d) => [[0, 0], [d, 0], [-d, 0], [0, d], [0, -d]].some(([a, b]) => inside(f, [lon + a, lat + b]));
    for (const [code, lon, lat] of centres) {
        // Coastal centres may sit a few hundred metres off a simplified coast.
        assert.ok(near(lampung, [lon, lat], 0.05), `${code} at ${lat},${lon}`);
        for (const other of ['16', '17', '36']) assert.ok(!inside(G.shapeOf(geo.features, other), [lon, lat]), `${code} in ${other}`);
    }
    assert.ok(inside(G.shapeOf(geo.features, '31'), [106.82, -6.2]));       // Monas, Jakarta
    assert.ok(inside(G.shapeOf(geo.features, '51'), [115.2, -8.65]));       // Denpasar, Bali
    assert.ok(inside(G.shapeOf(geo.features, '94'), [138.9, -4.1]));        // Wamena: Papua's shape
});

test('projection: corners, aspect and path text', () => {
    const box = [100, -10, 110, 0];
    const p = G.projection(box, 1000);
    assert.deepEqual(p.project([100, 0]).map(Math.round), [0, 0]);
    assert.deepEqual(p.project([110, -10]).map(Math.round), [1000, Math.round(1000 / Math.cos(5 * Math.PI / 180))]);
    const d = G.pathData({ type: 'Polygon', coordinates: [[[100, 0], [110, 0], [110, -10], [100, 0]]] }, p.project);
    assert.match(d, /^M0 0L1000 0L1000 \d+(\.\d)?L0 0Z$/);
    assert.equal(G.viewBox(box, p), `0 0 1000 ${Math.round(p.height * 10) / 10}`);
    assert.deepEqual(G.bbox({ type: 'Polygon', coordinates: [[[1, 2], [3, -4], [0, 0]]] }), [0, -4, 3, 2]);
});

test('shading: shared shapes add up the codes they carry; five classes', () => {
    const rows = regionSeries({ rows: [
        { keys: ['64'], labels: ['Kalimantan Timur'], sentra: '10', designated: '5' },
        { keys: ['65'], labels: ['Kalimantan Utara'], sentra: '6', designated: '5' },
        { keys: ['18'], labels: ['Lampung'], sentra: '73', designated: '54' },
    ] });
    const tot = G.shapeTotals(geo.features, rows);
    const kaltim = tot.get(G.shapeOf(geo.features, '64').id);
    assert.deepEqual([kaltim.sentra, kaltim.designated, kaltim.codes], [16, 10, ['64', '65']]);
    assert.equal(kaltim.rate, 10 / 16);
    assert.equal(tot.get('18').sentra, 73);
    assert.equal(G.shade(0), G.SHADES[0]);
    assert.equal(G.shade(1), G.SHADES[5]);
    assert.equal(G.shade(0.01), G.SHADES[1]);
    assert.equal(G.shade(0.5), G.SHADES[3]);
});

test('points: located records inside Indonesia; regency centres are means', () => {
    const pts = G.pointsOf([
        { id: 'a', regencyCode: '18.04', location: { latitude: -5, longitude: 104 }, status: 'STATUS_DESIGNATED' },
        { id: 'b', regencyCode: '18.04', location: { latitude: -5.2, longitude: 104.2 }, status: 'STATUS_REVOKED' },
        { id: 'c', regencyCode: '18.04' },                                   // no location
        { id: 'd', regencyCode: '18.04', location: { latitude: 40, longitude: 104 } },
    ]);
    assert.deepEqual(pts.map((p) => [p.id, p.designated]), [['a', true], ['b', false]]);
    const c = G.regencyCentres(pts).get('18.04');
    assert.equal(c.n, 2);
    assert.ok(Math.abs(c.lat + 5.1) < 1e-9 && Math.abs(c.lon - 104.1) < 1e-9);
});
