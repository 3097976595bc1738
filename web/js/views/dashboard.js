// dashboard.js: the page a provincial office opens: filters, the overview
// (the numbers of sentra-cli stats' TOTAL row), the charts, the map and the
// paged list of sentra with its CSV download. The filter lives in the
// address (#/?regency=18.04&status=...), so back and forward work and a view
// can be bookmarked; a click on a region (bar, shape or circle) changes it,
// and everything on the page reloads for the new filter.

import { h, replace, download } from '../dom.js';
import { t } from '../i18n.js';
import { fmtInt, fmtRate, fmtRupiah, fmtRupiahShort } from '../format.js';
import { SENTRA, STATS } from '../api.js';
import { toCsv } from '../csv.js';
import { STATUSES, SECTORS, sectorLabel, parseFilter, filterQuery, apiFilter, overview,
         regionSeries, sectorSeries, timeSeries, latestFigures, workersOf, LIST_CSV_HEADERS,
         listCsvRows } from '../model.js';
import { pointsOf } from '../geo.js';
import { regionChart, seriesChart, sectorChart } from '../charts.js';
import { loadShapes, drawMap, legend } from '../map.js';

const PAGE_SIZE = 20;
const MAP_PAGES = 2;          // at most 2 x 1000 located sentra on the map
let generation = 0;           // renders started; late answers of older ones are dropped
let charts = [];              // Chart.js instances to destroy on the next render
let mapMode = 'count';

function errorBox(e) {
    return h('p.error', { role: 'alert' }, t('error.section', { message: e && e.message ? e.message : String(e) }));
}

function section(id, title, ...body) {
    return h('section.panel', { id }, title ? h('h2', title) : null, ...body);
}

export function renderDashboard(view, app, query) {
    const gen = ++generation;
    for (const c of charts) c.destroy();
    charts = [];
    const f = parseFilter(query);
    const scope = app.scope;
    const live = () => gen === generation;
    const go = (changes) => app.navigate('#/?' + filterQuery({ ...f, ...changes }));
    const pickRegency = (code) => go(code === f.regency ? { regency: '' } : { province: code.slice(0, 2), regency: code });
    const province = f.province || scope.provinceCode;

    // ------------------------------------------------------------ layout
    const overviewBody = h('div.cards', { id: 'overview-cards' });
    const regionsBody = h('div.chart-slot', { id: 'chart-regions' });
    const seriesBody = h('div.chart-slot', { id: 'chart-series' });
    const sectorsBody = h('div.chart-slot', { id: 'chart-sectors' });
    const mapBody = h('div.map-slot', { id: 'map-body' });
    const mapNote = h('p.muted.small', { id: 'map-note' });
    const mapChooser = h('div.chooser', { id: 'map-chooser' });
    const listBody = h('div', { id: 'list-body' });

    const level = province ? 'GROUP_BY_REGENCY' : 'GROUP_BY_PROVINCE';
    replace(view,
        filterBar(app, f, go),
        section('overview', t('overview.title'), overviewBody, h('p.muted.small', t('overview.note'))),
        h('div.grid',
            section('regions', t(province ? 'chart.regions.regency' : 'chart.regions.province'),
                regionsBody, h('p.muted.small', t('chart.clickHint'))),
            section('series', t('chart.series'), seriesBody),
            section('sectors', t('chart.sectors'), sectorsBody)),
        section('map', t('map.title'), mapControls(() => drawTheMap()), mapBody, mapChooser, mapNote,
            h('p.muted.small', t('map.regencyHint')), h('p.muted.small', t('map.attribution'))),
        section('list', t('list.title'), listBody));
    view.dataset.view = 'dashboard';

    // ------------------------------------------------------------ overview
    app.call(STATS + '/GetStatistics', { filter: apiFilter(f), groupBy: [] }).then((resp) => {
        if (!live()) return;
        const o = overview(resp.total);
        const card = (id, label, value, raw, sub) => h('div.card', { id },
            h('span.label', label), h('strong.value', { dataset: { value: raw } }, value),
            sub ? h('span.sub', sub) : null);
        replace(overviewBody,
            card('ov-sentra', t('overview.formed'), fmtInt(o.sentra), o.sentra),
            card('ov-designated', t('overview.designated'), fmtInt(o.designated), o.designated),
            card('ov-rate', t('overview.rate'), fmtRate(o.rate), o.rate),
            card('ov-units', t('overview.units'), fmtInt(o.units), o.units),
            card('ov-workers', t('overview.workers'), fmtInt(o.workers), o.workers,
                t('overview.workersSplit', { m: fmtInt(o.male), f: fmtInt(o.female) })),
            card('ov-investment', t('overview.investment'), fmtRupiahShort(o.investment), o.investment,
                fmtRupiah(o.investment)),
            card('ov-production', t('overview.production'), fmtRupiahShort(o.production), o.production,
                fmtRupiah(o.production)));
    }).catch((e) => live() && replace(overviewBody, errorBox(e)));

    // ------------------------------------------------------------ charts
    let regionRows = null;   // the region chart's series, for the map's circles
    const regionsDone = app.call(STATS + '/GetStatistics',
        { filter: apiFilter(f, { withoutRegency: true }), groupBy: [level] }).then((resp) => {
        if (!live()) return;
        regionRows = regionSeries(resp);
        if (!regionRows.codes.length) return replace(regionsBody, h('p.muted', t('chart.empty')));
        const c = regionChart(regionRows, {
            title: t(province ? 'chart.regions.regency' : 'chart.regions.province'),
            selected: province ? f.regency : f.province,
            onPick: (code) => (province ? pickRegency(code) : go({ province: code, regency: '' })),
        });
        replace(regionsBody, c.box);
        charts.push(c.chart);
        regionsBody.dataset.level = level;
    }).catch((e) => live() && replace(regionsBody, errorBox(e)));

    app.call(STATS + '/GetTimeSeries', { filter: apiFilter(f) }).then((resp) => {
        if (!live()) return;
        const ts = timeSeries(resp);
        if (!ts.years.length) return replace(seriesBody, h('p.muted', t('chart.empty')));
        const c = seriesChart(ts);
        replace(seriesBody, c.box);
        charts.push(c.chart);
    }).catch((e) => live() && replace(seriesBody, errorBox(e)));

    app.call(STATS + '/GetStatistics', { filter: apiFilter(f), groupBy: ['GROUP_BY_SECTOR_GROUP'] }).then((resp) => {
        if (!live()) return;
        const ss = sectorSeries(resp);
        if (!ss.labels.length) return replace(sectorsBody, h('p.muted', t('chart.empty')));
        const c = sectorChart(ss, { onPick: (v) => go({ sector: v === f.sector ? '' : v }) });
        replace(sectorsBody, c.box);
        charts.push(c.chart);
    }).catch((e) => live() && replace(sectorsBody, errorBox(e)));

    // ------------------------------------------------------------ map
    let geo = null, provinceRows = null, points = [], pointsTotal = 0;
    const mapFilter = apiFilter({ ...f, province: '', regency: '' });
    const provincesDone = app.call(STATS + '/GetStatistics', { filter: mapFilter, groupBy: ['GROUP_BY_PROVINCE'] })
        .then((resp) => { provinceRows = regionSeries(resp); });
    const pointsDone = (async () => {
        if (!province) return;
        let token = '';
        for (let i = 0; i < MAP_PAGES; i++) {
            const resp = await app.call(SENTRA + '/ListSentra', {
                filter: apiFilter(f, { withoutRegency: true }), pageSize: 1000, pageToken: token,
                includeTotal: i === 0,
            });
            if (i === 0) pointsTotal = Number(resp.total || 0);
            points.push(...pointsOf(resp.sentra || []));
            token = resp.nextPageToken || '';
            if (!token) break;
        }
    })();
    function drawTheMap() {
        if (!geo || !live()) return;
        const svg = drawMap(geo, {
            provinces: provinceRows, regencies: province ? regionRows : null, points,
            focus: province, selectedRegency: f.regency, mode: mapMode, names: app.names,
            canPick: (codes) => scope.role === 'national' || scope.role === 'unknown' ||
                                codes.includes(scope.provinceCode),
            onProvince: (codes, tot) => {
                if (codes.length === 1) return go({ province: codes[0] === f.province && !f.regency ? '' : codes[0], regency: '' });
                replace(mapChooser, h('p', t('map.shared')), h('div.buttons', codes.map((c) =>
                    h('button', { type: 'button', on: { click: () => go({ province: c, regency: '' }) } },
                        `${app.regionName(c)} (${c})`))));
            },
            onRegency: pickRegency,
            onPoint: (id) => app.navigate('#/sentra/' + id),
        });
        // The legend speaks of what carries the colours: regency circles
        // inside a province, provinces across Indonesia.
        const coloured = province ? regionRows : provinceRows;
        replace(mapBody, svg, legend(mapMode, Math.max(1, ...((coloured && coloured.formed) || [1]))));
        mapBody.dataset.drawn = 'yes';
        if (province) {
            const shown = points.length;
            replace(mapNote, shown < pointsTotal && shown >= 1000
                ? t('map.pointsCut', { n: fmtInt(shown), total: fmtInt(pointsTotal) })
                : t('map.points', { n: fmtInt(shown) }), '. ', t('map.noShape'),
                ' ', f.province && scope.role === 'national'
                    ? h('a', { href: '#/?' + filterQuery({ ...f, province: '', regency: '' }) }, t('map.zoomOut')) : null);
        }
    }
    app.busyWhile(Promise.all([loadShapes().then((g) => { geo = g; }), provincesDone, pointsDone,
                               regionsDone.catch(() => {})])
        .then(() => drawTheMap())
        .catch((e) => live() && replace(mapBody, errorBox(e))));

    // ------------------------------------------------------------ list
    renderList(app, f, listBody, [''], live);
}

function mapControls(redraw) {
    const opt = (value, label) => h('option', { value, selected: mapMode === value }, label);
    return h('label.inline', t('map.shade') + ' ',
        h('select', {
            id: 'map-mode',
            on: { change: (ev) => { mapMode = ev.target.value; redraw(); } },
        }, opt('count', t('map.shade.count')), opt('rate', t('map.shade.rate'))));
}

// ---------------------------------------------------------------- filters

function filterBar(app, f, go) {
    const scope = app.scope;
    const crumbs = [];
    const national = scope.role === 'national' || scope.role === 'unknown';
    if (national) crumbs.push(h('a', { href: '#/?' + filterQuery({ ...f, province: '', regency: '' }) }, t('filter.indonesia')));
    const prov = f.province || scope.provinceCode;
    if (scope.role === 'district') {
        // A district token reads one regency: nothing to go up to.
        crumbs.push(h('span', app.regionName(scope.provinceCode)), h('span.current', app.regionName(scope.regencyCode)));
    } else {
        if (prov) crumbs.push(h('a', { href: '#/?' + filterQuery({ ...f, province: prov, regency: '' }) }, app.regionName(prov)));
        if (f.regency) crumbs.push(h('span.current', app.regionName(f.regency)));
    }
    const trail = [];
    crumbs.forEach((c, i) => { if (i) trail.push(h('span.sep', ' › ')); trail.push(c); });

    const select = (id, label, value, options, onChange) => h('label', { for: id }, label,
        h('select', { id, on: { change: (ev) => onChange(ev.target.value) } },
            h('option', { value: '' }, t('filter.all')),
            options.map(([v, l]) => h('option', { value: v, selected: v === value }, l))));

    const fields = [];
    if (national) {
        fields.push(select('f-province', t('filter.province'), f.province,
            app.regionsOf('').map((r) => [r.code, r.name]), (v) => {
                if (v) app.loadRegions(v).catch(() => {});
                go({ province: v, regency: '' });
            }));
    }
    if (prov && scope.role !== 'district') {
        const regencyOptions = () => app.regionsOf(prov).map((r) => [r.code, r.name]);
        const field = select('f-regency', t('filter.regency'), f.regency, regencyOptions(),
            (v) => go({ province: prov, regency: v }));
        if (!app.names.has('regions:' + prov)) {
            // The names arrive after the page is drawn: fill the options in.
            app.loadRegions(prov).then(() => {
                const sel = field.querySelector('select');
                replace(sel, h('option', { value: '' }, t('filter.all')),
                    regencyOptions().map(([v, l]) => h('option', { value: v, selected: v === f.regency }, l)));
            }).catch(() => {});
        }
        fields.push(field);
    }
    fields.push(select('f-status', t('filter.status'), f.status,
        STATUSES.map((s) => [s, t('status.' + s)]), (v) => go({ status: v })));
    fields.push(select('f-sector', t('filter.sector'), f.sector,
        SECTORS.map((s) => [s.value, s.label]), (v) => go({ sector: v })));
    fields.push(select('f-designation', t('filter.designation'), f.designation,
        [['designated', t('filter.designated')], ['not_designated', t('filter.notDesignated')]],
        (v) => go({ designation: v })));

    const text = h('input', { id: 'f-text', type: 'search', value: f.q, maxlength: '200',
                              placeholder: t('filter.text'), 'aria-label': t('filter.text') });
    const form = h('form.search', { on: { submit: (ev) => { ev.preventDefault(); go({ q: text.value }); } } },
        text, h('button', { type: 'submit', id: 'f-search' }, t('filter.search')));
    return h('section.panel.filters', { id: 'filters' },
        h('nav.crumbs', { 'aria-label': t('filter.region') }, trail),
        h('div.filter-fields', fields, form,
            h('a.reset', { href: '#/', id: 'f-reset' }, t('filter.reset'))));
}

// ---------------------------------------------------------------- list

// tokens: the page token of each page seen so far ('' for the first);
// the last one is the page shown.
function renderList(app, f, body, tokens, live) {
    const page = tokens.length;
    const request = {
        filter: apiFilter(f), orderBy: 'SENTRA_ORDER_NAME', pageSize: PAGE_SIZE,
        pageToken: tokens[tokens.length - 1], includeTotal: true,
    };
    body.dataset.loading = 'yes';
    app.call(SENTRA + '/ListSentra', request).then((resp) => {
        if (!live()) return;
        const records = resp.sentra || [];
        const total = Number(resp.total || 0);
        const next = resp.nextPageToken || '';
        const from = records.length ? (page - 1) * PAGE_SIZE + 1 : 0;
        const to = (page - 1) * PAGE_SIZE + records.length;

        const head = h('tr', ['list.name', 'list.regency', 'list.sector', 'list.status', 'list.formedOn',
            'list.decree', 'list.units', 'list.workers'].map((k, i) => h(i >= 6 ? 'th.num' : 'th', { scope: 'col' }, t(k))));
        const rows = records.map((s) => {
            const fig = latestFigures(s);
            return h('tr', { dataset: { id: s.id } },
                h('td', h('a.record-link', { href: '#/sentra/' + encodeURIComponent(s.id) }, s.name || s.id)),
                h('td', app.regionName(s.regencyCode || '')),
                h('td', sectorLabel(s.sectorGroup)),
                h('td', s.status ? t('status.' + s.status) : ''),
                h('td', s.formedOn || ''),
                h('td', (s.decree && s.decree.number) || ''),
                h('td.num', fig ? fmtInt(fig.businessUnits) : ''),
                h('td.num', fig ? fmtInt(workersOf(fig)) : ''));
        });
        const pager = h('div.pager',
            h('button', { type: 'button', id: 'list-prev', disabled: page <= 1,
                          on: { click: () => renderList(app, f, body, tokens.slice(0, -1), live) } }, t('list.prev')),
            h('span', { id: 'list-page', dataset: { page: String(page) } },
                t('list.page', { page }), ' · ', t('list.range', { from: fmtInt(from), to: fmtInt(to), total: fmtInt(total) })),
            h('button', { type: 'button', id: 'list-next', disabled: !next,
                          on: { click: () => renderList(app, f, body, [...tokens, next], live) } }, t('list.next')));
        const csv = h('button', {
            type: 'button', id: 'list-csv', title: t('list.csvTitle'), disabled: !records.length,
            on: {
                click: () => {
                    const where = f.regency || f.province || app.scope.regencyCode || app.scope.provinceCode || 'id';
                    const date = new Date().toISOString().slice(0, 10);
                    download(`sentra-${where}-${date}-p${page}.csv`,
                             toCsv(LIST_CSV_HEADERS, listCsvRows(records, (c) => app.regionName(c))));
                },
            },
        }, t('list.csv'));
        replace(body,
            h('div.list-tools', pager, csv),
            records.length
                ? h('div.table-wrap', h('table.list', { id: 'sentra-table' }, h('thead', head), h('tbody', rows)))
                : h('p.muted', t('list.empty')));
        body.dataset.loading = 'no';
    }).catch((e) => {
        if (!live()) return;
        replace(body, errorBox(e));
        body.dataset.loading = 'no';
    });
}
