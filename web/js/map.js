// map.js: the dashboard's map, an SVG drawn from web/data/provinces.geojson
// (Natural Earth's provinces; docs/DATA_SOURCES.md). Provinces are shaded
// by their number of sentra or their designation rate; inside a province,
// each regency/city with located sentra gets a circle (no regency
// boundaries with a redistributable licence exist) and every sentra a dot.
// Clicking a province or a regency circle filters the page; clicking a dot
// opens the record. Names go into <title> elements as text.

import { h, s } from './dom.js';
import { t } from './i18n.js';
import { fmtInt, fmtRate } from './format.js';
import { bbox, pad, projection, pathData, viewBox, shapeOf, shapeTotals, shade, SHADES,
         regencyCentres } from './geo.js';

const WIDTH = 1000;
let shapes = null;

// Loads the shapes once (same origin; the browser caches the file).
export async function loadShapes() {
    if (shapes) return shapes;
    const res = await fetch('data/provinces.geojson', { credentials: 'omit' });
    if (!res.ok) throw new Error(`data/provinces.geojson: HTTP ${res.status}`);
    shapes = await res.json();
    return shapes;
}

// opts: {provinces: regionSeries of the province level (or null), regencies:
// regionSeries of the regency level (or null), points, focus: province code
// to zoom to, selectedRegency, mode: 'count'|'rate', names (Map),
// canPick(codes): whether a shape may be clicked (a province token's own
// province only), onProvince(codes), onRegency(code), onPoint(id)}
export function drawMap(geo, opts) {
    const all = bbox(geo);
    const proj = projection(all, WIDTH);
    const focusShape = opts.focus ? shapeOf(geo.features, opts.focus) : null;
    const view = focusShape ? pad(bbox(focusShape), 0.08) : all;
    // Sizes in SVG units that look the same whatever the zoom.
    const unit = ((view[2] - view[0]) / (all[2] - all[0]));
    const vb = viewBox(view, proj);

    const totals = opts.provinces ? shapeTotals(geo.features, opts.provinces) : new Map();
    const maxCount = Math.max(1, ...[...totals.values()].map((x) => x.sentra));
    const value = (x) => (opts.mode === 'rate' ? x.rate : x.sentra / maxCount);

    const svg = s('svg', { viewBox: vb, class: 'map-svg', role: 'img',
                           'aria-label': t('map.title'), preserveAspectRatio: 'xMidYMid meet' });
    const land = s('g.shapes');
    for (const f of geo.features) {
        const tot = totals.get(f.id);
        const codes = f.properties.codes || [];
        const inFocus = !opts.focus || codes.includes(opts.focus);
        // Zoomed into a province, its regency circles carry the colours
        // and the province is plain land; across Indonesia the provinces
        // are shaded.
        let fill;
        if (!codes.length) fill = '#dedede';
        else if (opts.focus) fill = inFocus ? '#fbfaf3' : '#ececec';
        else fill = tot ? shade(value(tot)) : '#f3f3f3';
        const pickable = codes.length > 0 && (!opts.canPick || opts.canPick(codes));
        const path = s('path', {
            d: pathData(f.geometry, proj.project),
            fill,
            class: 'shape' + (pickable ? ' clickable' : '') + (inFocus ? '' : ' dim') +
                   (opts.focus && codes.includes(opts.focus) ? ' focus' : ''),
            'vector-effect': 'non-scaling-stroke',
            dataset: { shape: f.id, codes: codes.join(' ') },
        });
        if (codes.length) {
            const names = codes.map((c) => opts.names.get(c) || c).join(', ');
            const tip = tot ? `${names}: ${fmtInt(tot.sentra)} sentra, ${fmtRate(tot.rate)}` : names;
            path.appendChild(s('title', null, tip));
            if (pickable) path.addEventListener('click', () => opts.onProvince(codes, tot));
        }
        land.appendChild(path);
    }
    svg.appendChild(land);

    // Regency circles (mean position of their located sentra) and dots.
    const points = opts.points || [];
    if (points.length) {
        const centres = regencyCentres(points);
        const reg = opts.regencies;
        const circles = s('g.regencies');
        const maxN = Math.max(1, ...(reg ? reg.formed : [1]));
        for (const [code, c] of centres) {
            const i = reg ? reg.codes.indexOf(code) : -1;
            const n = i >= 0 ? reg.formed[i] : c.n;
            const rate = i >= 0 ? reg.rates[i] : 0;
            const [x, y] = proj.project([c.lon, c.lat]);
            const r = (7 + 20 * Math.sqrt(n / maxN)) * unit;
            const circle = s('circle', {
                cx: x.toFixed(2), cy: y.toFixed(2), r: r.toFixed(3),
                fill: opts.mode === 'rate' ? shade(rate) : shade(n / maxN),
                class: 'regency clickable' + (opts.selectedRegency === code ? ' selected' : ''),
                'vector-effect': 'non-scaling-stroke',
                dataset: { regency: code },
            });
            circle.appendChild(s('title', null,
                `${opts.names.get(code) || code}: ${fmtInt(n)} sentra, ${fmtRate(rate)}`));
            circle.addEventListener('click', (ev) => { ev.stopPropagation(); opts.onRegency(code); });
            circles.appendChild(circle);
        }
        svg.appendChild(circles);

        const dots = s('g.points');
        for (const p of points) {
            const [x, y] = proj.project([p.lon, p.lat]);
            const dot = s('circle', {
                cx: x.toFixed(2), cy: y.toFixed(2), r: (2.4 * unit).toFixed(3),
                class: 'point' + (p.designated ? ' designated' : '') +
                       (opts.selectedRegency && p.regency !== opts.selectedRegency ? ' dim' : ''),
                'vector-effect': 'non-scaling-stroke',
                dataset: { id: p.id },
            });
            dot.appendChild(s('title', null, p.name));
            dot.addEventListener('click', (ev) => { ev.stopPropagation(); opts.onPoint(p.id); });
            dots.appendChild(dot);
        }
        svg.appendChild(dots);
    }
    return svg;
}

// The colour legend under the map.
export function legend(mode, maxCount) {
    const steps = SHADES.slice(1);
    const items = steps.map((c, i) => {
        const lo = i / steps.length, hi = (i + 1) / steps.length;
        const label = mode === 'rate'
            ? `${Math.round(lo * 100)}–${Math.round(hi * 100)}%`
            : `${fmtInt(Math.max(1, Math.ceil(lo * maxCount)))}–${fmtInt(Math.floor(hi * maxCount))}`;
        return h('li', h('span.swatch', { dataset: { shade: String(i + 1) } }), label);
    });
    items.unshift(h('li', h('span.swatch', { dataset: { shade: '0' } }), t('map.legend.none')));
    return h('ul.legend', items);
}
