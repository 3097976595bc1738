// model.test.mjs: the dashboard's pure modules (web/js/model.js,
// format.js, i18n.js, csv.js) under node's test runner.
import test from 'node:test';
import assert from 'node:assert/strict';

import { DICTS, t, setLang } from '../../web/js/i18n.js';
import { int64, fmtInt, fmtRate, fmtRupiah, fmtRupiahShort } from '../../web/js/format.js';
import { toCsv, parseCsv } from '../../web/js/csv.js';
import * as M from '../../web/js/model.js';

test('i18n: both languages have the same keys, and no empty text', () => {
    const id = Object.keys(DICTS.id).sort(), en = Object.keys(DICTS.en).sort();
    assert.deepEqual(id, en);
    for (const lang of ['id', 'en'])
        for (const [k, v] of Object.entries(DICTS[lang])) assert.ok(v.length > 0, `${lang} ${k}`);
});

test('i18n: every t() key used in web/js exists', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const files = ['web/js', 'web/js/views'].flatMap((d) =>
        readdirSync(d).filter((f) => f.endsWith('.js')).map((f) => `${d}/${f}`));
    let n = 0;
    for (const f of files) {
        for (const m of readFileSync(f, 'utf8').matchAll(/\bt\('([a-zA-Z.]+)'(?!\s*\+)/g)) {
            assert.ok(m[1] in DICTS.id, `${f}: ${m[1]}`);
            n++;
        }
    }
    assert.ok(n > 100, `only ${n} keys found`);
});

test('i18n: substitution, language switch, unknown key', () => {
    setLang('id');
    assert.equal(t('list.page', { page: 3 }), 'Halaman 3');
    setLang('en');
    assert.equal(t('list.page', { page: 3 }), 'Page 3');
    assert.throws(() => t('no.such.key'));
    assert.throws(() => setLang('fr'));
    setLang('id');
});

test('format: int64 strings beyond 2^53 stay exact', () => {
    setLang('id');
    assert.equal(int64('9007199254740993'), 9007199254740993n);
    assert.equal(fmtInt('9007199254740993'), '9.007.199.254.740.993');
    assert.equal(fmtInt(undefined), '0');
    assert.equal(fmtRupiah('1500000'), 'Rp 1.500.000');
    setLang('en');
    assert.equal(fmtInt('1234567'), '1,234,567');
    setLang('id');
    assert.throws(() => int64('12abc'));
});

test('format: large sums in words beside the exact figure', () => {
    setLang('id');
    assert.equal(fmtRupiahShort('31584000000'), 'Rp 31,6 miliar');
    assert.equal(fmtRupiahShort('1500000000000'), 'Rp 1,5 triliun');
    assert.equal(fmtRupiahShort('999999'), 'Rp 999.999');
    setLang('en');
    assert.equal(fmtRupiahShort('31584000000'), 'Rp 31.6 billion');
    setLang('id');
});

test('format: the rate as sentra-cli stats prints it (percent, one decimal)', () => {
    setLang('en');
    assert.equal(fmtRate(54 / 73), '74.0%');    // cli: "%.1f%%", rate * 100
    assert.equal(fmtRate(0.5), '50.0%');
    assert.equal(fmtRate(undefined), '0.0%');
    setLang('id');
    assert.equal(fmtRate(54 / 73), '74,0%');
});

test('csv: quoting, CRLF, BOM, and a round trip', () => {
    const text = toCsv(['a', 'b', 'c'], [['x,y', 'say "hi"', 'line\nbreak'], [1n, -5, '']]);
    assert.ok(text.startsWith('\uFEFFa,b,c\r\n'));
    assert.ok(text.includes('"x,y","say ""hi""","line\nbreak"\r\n'));
    assert.deepEqual(parseCsv(text), [['a', 'b', 'c'], ['x,y', 'say "hi"', 'line\nbreak'], ['1', '-5', '']]);
});

test('csv: text that a spreadsheet would run as a formula is defused; numbers are not', () => {
    const rows = parseCsv(toCsv(['v'], [['=HYPERLINK("x")'], ['+62 721'], ['@SUM(A1)'], ['-1+1'], [-7], ['<img src=x onerror=alert(1)>']]));
    assert.deepEqual(rows.slice(1).map((r) => r[0]),
        ["'=HYPERLINK(\"x\")", "'+62 721", "'@SUM(A1)", "'-1+1", '-7', '<img src=x onerror=alert(1)>']);
});

test('filter: the address round trip keeps known values and drops the rest', () => {
    const f = M.parseFilter('regency=18.04&status=STATUS_DESIGNATED&sector=BOGUS&designation=x&q=kopi');
    assert.equal(f.province, '18');
    assert.equal(f.regency, '18.04');
    assert.equal(f.status, 'STATUS_DESIGNATED');
    assert.equal(f.sector, '');
    assert.equal(f.designation, '');
    assert.equal(f.q, 'kopi');
    assert.equal(M.filterQuery(f), 'regency=18.04&status=STATUS_DESIGNATED&q=kopi');
    assert.deepEqual(M.parseFilter(M.filterQuery(f)), f);
});

test('filter: the API filter uses proto3 JSON names and enum names', () => {
    const f = { ...M.emptyFilter(), province: '18', regency: '18.71', status: 'STATUS_FORMED',
                sector: 'SECTOR_GROUP_FOOD', designation: 'not_designated', q: '  tapis ' };
    assert.deepEqual(M.apiFilter(f), {
        provinceCode: '18', regencyCode: '18.71', status: ['STATUS_FORMED'],
        sectorGroup: ['SECTOR_GROUP_FOOD'], designation: 'DESIGNATION_NOT_DESIGNATED', text: 'tapis',
    });
    assert.equal(M.apiFilter(f, { withoutRegency: true }).regencyCode, undefined);
    assert.deepEqual(M.apiFilter(M.emptyFilter()), {});
});

test('overview: the TOTAL row of GetStatistics, absent fields as zero', () => {
    // The shape of GetStatisticsResponse.total in proto3 JSON: int64 as
    // strings, zero fields left out.
    const o = M.overview({ sentra: '73', designated: '54', designationRate: 0.7397260273972602,
                           businessUnits: '812', workersMale: '1200', workersFemale: '1100',
                           workersTotal: '2300', investment: '25000000000' });
    assert.equal(o.sentra, 73n);
    assert.equal(o.designated, 54n);
    assert.equal(o.workers, 2300n);
    assert.equal(o.production, 0n);
    assert.equal(o.material, 0n);
    assert.equal(M.overview(undefined).sentra, 0n);
});

test('series: region bars, sectors with the API labels, cumulative lines', () => {
    const resp = { groupBy: ['GROUP_BY_REGENCY'], rows: [
        { keys: ['18.01'], labels: ['Kabupaten Lampung Selatan'], sentra: '6', designated: '4', designationRate: 0.666 },
        { keys: ['18.02'], labels: ['Kabupaten Lampung Tengah'], sentra: '6' },
    ] };
    const s = M.regionSeries(resp);
    assert.deepEqual(s.codes, ['18.01', '18.02']);
    assert.deepEqual(s.labels, ['Kabupaten Lampung Selatan', 'Kabupaten Lampung Tengah']);
    assert.deepEqual(s.formed, [6, 6]);
    assert.deepEqual(s.designated, [4, 0]);

    const sec = M.sectorSeries({ groupBy: ['GROUP_BY_SECTOR_GROUP'],
                                 rows: [{ keys: ['food'], labels: ['Pangan (dari API)'], sentra: '40' }] });
    assert.deepEqual(sec.values, ['SECTOR_GROUP_FOOD']);
    assert.deepEqual(sec.labels, ['Pangan (dari API)']);
    assert.equal(M.sectorLabel('SECTOR_GROUP_FOOD'), 'Pangan (dari API)');  // learnt

    const ts = M.timeSeries({ points: [{ year: 2015, formed: '3', formedCumulative: '3' },
                                       { year: 2016, formed: '2', designated: '1', formedCumulative: '5', designatedCumulative: '1' }] });
    assert.deepEqual(ts, { years: ['2015', '2016'], formed: [3, 5], designated: [0, 1] });
});

test('scope: the token itself, as TokenService/WhoAmI answers it', () => {
    assert.deepEqual(M.scopeOf({ id: 'a', role: 'ROLE_PROVINCE', regionCode: '18', label: 'Dinas Lampung', createdAtMs: '1' }),
        { role: 'province', provinceCode: '18', regencyCode: '', canWrite: true, label: 'Dinas Lampung' });
    assert.deepEqual(M.scopeOf({ id: 'b', role: 'ROLE_DISTRICT', regionCode: '18.04' }),
        { role: 'district', provinceCode: '18', regencyCode: '18.04', canWrite: true, label: '' });
    assert.deepEqual(M.scopeOf({ id: 'c', role: 'ROLE_NATIONAL', label: 'Kemenperin' }),
        { role: 'national', provinceCode: '', regencyCode: '', canWrite: false, label: 'Kemenperin' });
    assert.equal(M.scopeOf({ role: 'ROLE_ADMIN' }).role, 'admin');
    assert.equal(M.scopeOf({ role: 'ROLE_ADMIN' }).canWrite, false);
    assert.equal(M.scopeOf({}).role, 'unknown');
    assert.equal(M.scopeOf(null).role, 'unknown');
});

test('region names: from statistics labels and ListRegions', () => {
    const names = new Map();
    M.learnRegionNames(names, { groupBy: ['GROUP_BY_PROVINCE', 'GROUP_BY_REGENCY'],
                                rows: [{ keys: ['18', '18.71'], labels: ['Lampung', 'Kota Bandar Lampung'] }] });
    M.learnRegionNames(names, { regions: [{ code: '18.72', name: 'Kota Metro', level: 'REGION_LEVEL_CITY' }] });
    assert.equal(names.get('18'), 'Lampung');
    assert.equal(names.get('18.71'), 'Kota Bandar Lampung');
    assert.equal(names.get('18.72'), 'Kota Metro');
});

const RECORD = {
    id: '5f2b1c3e-0000-4000-8000-000000000001', regencyCode: '18.04', provinceCode: '18',
    name: '<img src=x onerror=alert(1)>', sectorGroup: 'SECTOR_GROUP_FOOD', status: 'STATUS_DESIGNATED',
    formedOn: '2016-04-12', decree: { number: 'B/214', date: '2018-08-20', official: 'Bupati' },
    location: { latitude: -5.03, longitude: 104.07 }, version: '3',
    figures: [{ year: 2021, businessUnits: '22', workersMale: '13', workersFemale: '48', investment: '836000000' },
              { year: 2019, businessUnits: '19' }],
};

test('records: latest figures, list CSV rows, figures CSV rows', () => {
    assert.equal(M.latestFigures(RECORD).year, 2021);
    assert.equal(M.workersOf(M.latestFigures(RECORD)), 61n);
    const [row] = M.listCsvRows([RECORD], (c) => (c === '18.04' ? 'Kabupaten Lampung Barat' : c));
    assert.equal(row.length, M.LIST_CSV_HEADERS.length);
    const byName = Object.fromEntries(M.LIST_CSV_HEADERS.map((h, i) => [h, row[i]]));
    assert.equal(byName.name, '<img src=x onerror=alert(1)>');
    assert.equal(byName.regency_name, 'Kabupaten Lampung Barat');
    assert.equal(byName.business_units, 22n);
    assert.equal(byName.figures_year, 2021);
    assert.equal(byName.version, 3n);
    const figs = M.figuresCsvRows(RECORD);
    assert.deepEqual(figs.map((r) => r[2]), [2019, 2021]);
    assert.equal(figs[0][FIG('business_units')], 19n);
    assert.equal(figs[0][FIG('workers_male')], 0n);
});
const FIG = (name) => M.FIGURES_CSV_HEADERS.indexOf(name);

test('edits: update_mask lists exactly the fields changed', () => {
    const same = JSON.parse(JSON.stringify(RECORD));
    assert.deepEqual(M.changedPaths(RECORD, same), []);
    same.figures.reverse();                       // order does not matter
    same.figures[1].businessUnits = 22;           // 2021's, as a number
    assert.deepEqual(M.changedPaths(RECORD, same), []);
    const edited = { ...same, name: 'Sentra baru', decree: { ...RECORD.decree, date: '2018-09-01' } };
    assert.deepEqual(M.changedPaths(RECORD, edited), ['name', 'decree']);
    const moved = { ...same, location: { latitude: -5.1, longitude: 104.07 } };
    assert.deepEqual(M.changedPaths(RECORD, moved), ['location']);
    const noDecree = { ...RECORD, decree: undefined };
    assert.deepEqual(M.changedPaths(noDecree, { ...noDecree, decree: {} }), []);
    assert.equal(M.violationInput('sentra.decree.date'), 'decree.date');
    assert.equal(M.violationInput('figures[0].year'), 'figures[0].year');
});
