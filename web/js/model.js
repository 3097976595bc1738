// model.js: what the dashboard computes from the API's answers, without
// the DOM: the filter (as the page address keeps it and as the API wants
// it), enum labels, the overview figures, chart series, CSV rows, the
// token's scope. node's test runner loads this file as it is.

import { int64, int64Text, toNumber } from './format.js';

// ---------------------------------------------------------------- enums

export const STATUSES = ['STATUS_FORMED', 'STATUS_DESIGNATED', 'STATUS_REVITALISED',
                         'STATUS_INACTIVE', 'STATUS_REVOKED'];

// The ministry's sector groups. key: the key GetStatistics gives the group;
// label: the server's label (server/services/handlers_stats.c), replaced by
// the label the API sends as soon as one arrives (learnLabels), so that the
// page shows the API's words.
export const SECTORS = [
    { value: 'SECTOR_GROUP_FOOD', key: 'food', label: 'Pangan' },
    { value: 'SECTOR_GROUP_TEXTILES', key: 'textiles', label: 'Sandang' },
    { value: 'SECTOR_GROUP_CHEMICALS_BUILDING', key: 'chemicals_building', label: 'Kimia dan bahan bangunan' },
    { value: 'SECTOR_GROUP_CRAFTS', key: 'crafts', label: 'Kerajinan dan aneka' },
    { value: 'SECTOR_GROUP_FURNITURE', key: 'furniture', label: 'Furnitur' },
    { value: 'SECTOR_GROUP_METAL_MACHINERY', key: 'metal_machinery', label: 'Logam, mesin, elektronika dan alat angkut' },
];

export const KBLI_VERSIONS = [
    { value: 'KBLI_VERSION_2020', label: 'KBLI 2020' },
    { value: 'KBLI_VERSION_2025', label: 'KBLI 2025' },
];

export function sectorLabel(value) {
    const s = SECTORS.find((x) => x.value === value || x.key === value);
    return s ? s.label : (value || '');
}

// Takes the labels of a GetStatistics answer grouped by sector.
export function learnSectorLabels(resp) {
    const gi = (resp.groupBy || []).indexOf('GROUP_BY_SECTOR_GROUP');
    if (gi < 0) return;
    for (const row of resp.rows || []) {
        const key = (row.keys || [])[gi], label = (row.labels || [])[gi];
        const s = SECTORS.find((x) => x.key === key);
        if (s && label) s.label = label;
    }
}

// ---------------------------------------------------------------- filter

// The page's filter: what the address after "#/?" holds. Single values;
// empty strings mean "no filter".
export function emptyFilter() {
    return { province: '', regency: '', status: '', sector: '', designation: '', q: '' };
}

const FILTER_KEYS = Object.keys(emptyFilter());

export function parseFilter(query) {
    const f = emptyFilter();
    const p = new URLSearchParams(query || '');
    for (const k of FILTER_KEYS) {
        const v = p.get(k);
        if (v !== null) f[k] = v.slice(0, 200);
    }
    // A regency's province is its code's first two digits.
    if (f.regency && !f.province) f.province = f.regency.slice(0, 2);
    if (f.status && !STATUSES.includes(f.status)) f.status = '';
    if (f.sector && !SECTORS.some((s) => s.value === f.sector)) f.sector = '';
    if (!['', 'designated', 'not_designated'].includes(f.designation)) f.designation = '';
    return f;
}

export function filterQuery(f) {
    const p = new URLSearchParams();
    for (const k of FILTER_KEYS) if (f[k]) p.set(k, f[k]);
    if (f.regency) p.delete('province');   // implied by the regency
    return p.toString();
}

// The API's SentraFilter for the page's filter. withoutRegency: the same
// filter one level up (the region chart and the map show a regency's
// siblings, with the chosen one marked).
export function apiFilter(f, { withoutRegency = false } = {}) {
    const out = {};
    if (f.province) out.provinceCode = f.province;
    if (f.regency && !withoutRegency) out.regencyCode = f.regency;
    if (f.status) out.status = [f.status];
    if (f.sector) out.sectorGroup = [f.sector];
    if (f.designation === 'designated') out.designation = 'DESIGNATION_DESIGNATED';
    if (f.designation === 'not_designated') out.designation = 'DESIGNATION_NOT_DESIGNATED';
    if (f.q.trim()) out.text = f.q.trim();
    return out;
}

// ---------------------------------------------------------------- statistics

// The overview's figures from a StatsRow (GetStatisticsResponse.total): the
// same fields sentra-cli stats prints in its TOTAL row.
export function overview(row) {
    const r = row || {};
    return {
        sentra: int64(r.sentra),
        designated: int64(r.designated),
        rate: typeof r.designationRate === 'number' ? r.designationRate : 0,
        units: int64(r.businessUnits),
        male: int64(r.workersMale),
        female: int64(r.workersFemale),
        workers: int64(r.workersTotal),
        investment: int64(r.investment),
        production: int64(r.productionValue),
        material: int64(r.materialValue),
    };
}

// Bars of a GetStatistics answer grouped by one region level: codes,
// labels (region names as the API gives them), formed and designated.
export function regionSeries(resp) {
    const out = { codes: [], labels: [], formed: [], designated: [], rates: [] };
    for (const row of (resp && resp.rows) || []) {
        const code = (row.keys || [])[0] || '';
        if (!code) continue;
        out.codes.push(code);
        out.labels.push((row.labels || [])[0] || code);
        out.formed.push(toNumber(row.sentra));
        out.designated.push(toNumber(row.designated));
        out.rates.push(typeof row.designationRate === 'number' ? row.designationRate : 0);
    }
    return out;
}

// Sector bars: labels from the API, counts of sentra.
export function sectorSeries(resp) {
    learnSectorLabels(resp || {});
    const out = { values: [], labels: [], counts: [] };
    for (const row of (resp && resp.rows) || []) {
        const key = (row.keys || [])[0] || '';
        const s = SECTORS.find((x) => x.key === key);
        out.values.push(s ? s.value : key);
        out.labels.push((row.labels || [])[0] || (s ? s.label : key));
        out.counts.push(toNumber(row.sentra));
    }
    return out;
}

// The time series as cumulative lines.
export function timeSeries(resp) {
    const out = { years: [], formed: [], designated: [] };
    for (const p of (resp && resp.points) || []) {
        out.years.push(String(p.year || 0));
        out.formed.push(toNumber(p.formedCumulative));
        out.designated.push(toNumber(p.designatedCumulative));
    }
    return out;
}

// ---------------------------------------------------------------- records

// A record's figures of its latest reporting year, or null.
export function latestFigures(s) {
    let best = null;
    for (const f of (s && s.figures) || [])
        if (!best || (f.year || 0) > (best.year || 0)) best = f;
    return best;
}

export function workersOf(f) {
    return f ? int64(f.workersMale) + int64(f.workersFemale) : 0n;
}

// The list's CSV: one row per record shown, codes beside names.
export const LIST_CSV_HEADERS = [
    'id', 'name', 'province_code', 'regency_code', 'regency_name', 'district_code', 'commodity',
    'main_product', 'kbli_code', 'sector_group', 'sector_label', 'status', 'formed_on',
    'decree_number', 'decree_date', 'latitude', 'longitude', 'figures_year', 'business_units',
    'workers_male', 'workers_female', 'investment', 'production_value', 'version',
];

export function listCsvRows(records, regionName) {
    return records.map((s) => {
        const f = latestFigures(s);
        const loc = s.location || null;
        return [
            s.id || '', s.name || '', s.provinceCode || '', s.regencyCode || '',
            regionName(s.regencyCode || ''), s.districtCode || '', s.commodity || '',
            s.mainProduct || '', s.kbliCode || '', s.sectorGroup || '', sectorLabel(s.sectorGroup),
            s.status || '', s.formedOn || '', (s.decree && s.decree.number) || '',
            (s.decree && s.decree.date) || '',
            loc ? Number(loc.latitude || 0) : '', loc ? Number(loc.longitude || 0) : '',
            f ? Number(f.year || 0) : '', f ? int64(f.businessUnits) : '',
            f ? int64(f.workersMale) : '', f ? int64(f.workersFemale) : '',
            f ? int64(f.investment) : '', f ? int64(f.productionValue) : '',
            int64(s.version),
        ];
    });
}

export const FIGURES_CSV_HEADERS = [
    'sentra_id', 'sentra_name', 'year', 'business_units', 'workers_male', 'workers_female',
    'investment', 'production_value', 'material_value', 'capacity', 'capacity_unit',
    'export_share_bp', 'export_destinations',
];

export function figuresCsvRows(s) {
    return sortedFigures(s).map((f) => [
        s.id || '', s.name || '', Number(f.year || 0), int64(f.businessUnits),
        int64(f.workersMale), int64(f.workersFemale), int64(f.investment),
        int64(f.productionValue), int64(f.materialValue), int64(f.capacity),
        f.capacityUnit || '', Number(f.exportShareBp || 0), (f.exportDestinations || []).join(' '),
    ]);
}

export function sortedFigures(s) {
    return ((s && s.figures) || []).slice().sort((a, b) => (a.year || 0) - (b.year || 0));
}

// ---------------------------------------------------------------- scope

// What a token covers, from TokenService/WhoAmI's answer (the caller's own
// Token: role, regionCode, label). Returns {role, provinceCode,
// regencyCode, canWrite, label}: role is 'national', 'province',
// 'district' or 'admin' (which reads no sentra: the dashboard refuses it);
// a district's province is its regency code's first two digits.
export function scopeOf(token) {
    const region = (token && token.regionCode) || '';
    const base = { provinceCode: '', regencyCode: '', canWrite: false, label: (token && token.label) || '' };
    switch (token && token.role) {
    case 'ROLE_NATIONAL': return { ...base, role: 'national' };
    case 'ROLE_PROVINCE': return { ...base, role: 'province', provinceCode: region, canWrite: true };
    case 'ROLE_DISTRICT':
        return { ...base, role: 'district', provinceCode: region.slice(0, 2), regencyCode: region, canWrite: true };
    case 'ROLE_ADMIN': return { ...base, role: 'admin' };
    default: return { ...base, role: 'unknown' };
    }
}

// Region names from GetStatistics rows (labels beside province/regency keys)
// and ListRegions answers, into a Map code -> name.
export function learnRegionNames(names, resp) {
    if (!resp) return names;
    if (Array.isArray(resp.regions)) {
        for (const r of resp.regions) if (r.code && r.name) names.set(r.code, r.name);
    }
    const gb = resp.groupBy || [];
    for (const row of resp.rows || []) {
        gb.forEach((g, i) => {
            if (g !== 'GROUP_BY_PROVINCE' && g !== 'GROUP_BY_REGENCY') return;
            const k = (row.keys || [])[i], l = (row.labels || [])[i];
            if (k && l) names.set(k, l);
        });
    }
    return names;
}

// ---------------------------------------------------------------- edits

// The record's editable fields: JSON name -> update_mask path
// (server/services/validate.c, field_names).
export const MASK_PATHS = {
    regencyCode: 'regency_code', districtCode: 'district_code', villageCode: 'village_code',
    address: 'address', location: 'location', name: 'name', commodity: 'commodity',
    mainProduct: 'main_product', kbliCode: 'kbli_code', kbliVersion: 'kbli_version',
    sectorGroup: 'sector_group', status: 'status', formedOn: 'formed_on', decree: 'decree',
    figures: 'figures', contactName: 'contact_name', contactPhone: 'contact_phone',
};

// The same value as the API would hold it (absent = default) for comparing.
function canon(key, v) {
    if (key === 'location') return v ? JSON.stringify([Number(v.latitude || 0), Number(v.longitude || 0)]) : '';
    if (key === 'decree') return v ? JSON.stringify([v.number || '', v.date || '', v.official || '']) : '';
    if (key === 'figures') {
        return JSON.stringify((v || []).slice().sort((a, b) => (a.year || 0) - (b.year || 0)).map((f) => [
            Number(f.year || 0), int64Text(f.businessUnits), int64Text(f.workersMale),
            int64Text(f.workersFemale), int64Text(f.investment), int64Text(f.productionValue),
            int64Text(f.materialValue), int64Text(f.capacity), f.capacityUnit || '',
            Number(f.exportShareBp || 0), (f.exportDestinations || []).join(','),
        ]));
    }
    return v === undefined || v === null ? '' : String(v);
}

// The update_mask paths of the fields that differ between the record as
// read and as edited.
export function changedPaths(before, after) {
    const out = [];
    for (const [key, path] of Object.entries(MASK_PATHS)) {
        if (key === 'decree') {
            const empty = (d) => !d || (!d.number && !d.date && !d.official);
            if (empty(before.decree) && empty(after.decree)) continue;
        }
        if (key === 'location' && !before.location && !after.location) continue;
        if (canon(key, before[key]) !== canon(key, after[key])) out.push(path);
    }
    return out;
}

// A field path as the API names it ("decree.date", "figures[0].year",
// "sentra.name" in some messages) -> the form's input name.
export function violationInput(field) {
    return String(field || '').replace(/^sentra\./, '');
}

// ---------------------------------------------------------------- report

// The coordination-meeting brief (issue 18; views/report.js), computed the
// way sentra-cli report computes it (client/cli/cli_report.c) from the same
// three GetStatistics answers, so that the page and the CLI cannot
// disagree: per regency/city, sentra formed and designated, members
// (women-owned among them), sentra with an institution, obstacles still
// open (open or being handled) and the REPORT_TOP categories most of them
// fall in, assistance received in the year; then the province's total.

export const REPORT_TOP = 3;         // obstacle categories named per regency
export const REPORT_MAX_ROWS = 64;   // as the CLI: a province has fewer regencies

// The obstacle categories' keys as GetStatistics gives them, in the
// proto's order; a tie between two categories goes to the earlier one (the
// CLI's rule).
export const OBSTACLE_CATEGORIES = ['raw_materials', 'technology', 'quality', 'marketing', 'capital',
                                    'human_resources', 'infrastructure', 'permits', 'institution', 'other'];

// The three requests: the CLI's subjects, groupings and filter.
export function reportRequests(province) {
    const filter = { provinceCode: province };
    return {
        sentra: { filter, subject: 'STATS_SUBJECT_SENTRA', groupBy: ['GROUP_BY_REGENCY'] },
        obstacles: { filter, subject: 'STATS_SUBJECT_OBSTACLES',
                     groupBy: ['GROUP_BY_REGENCY', 'GROUP_BY_OBSTACLE_CATEGORY'] },
        assistance: { filter, subject: 'STATS_SUBJECT_ASSISTANCE',
                      groupBy: ['GROUP_BY_REGENCY', 'GROUP_BY_ASSISTANCE_YEAR'] },
    };
}

function keyOf(resp, row, group, fallback) {
    const i = ((resp && resp.groupBy) || []).indexOf(group);
    return ((row && row.keys) || [])[i >= 0 ? i : fallback] || '';
}

function reportLine(code, name, row) {
    const r = row || {};
    return {
        code, name,
        formed: int64(r.sentra), designated: int64(r.designated), members: int64(r.members),
        membersFemaleOwned: int64(r.membersFemaleOwned), withInstitution: int64(r.withInstitution),
        open: new Map(),                  // category key -> open + in progress
        obstaclesOpen: 0n, top: [],       // filled in by finishLine
        aidCount: 0n, aidValue: 0n,
    };
}

function finishLine(l) {
    for (const c of OBSTACLE_CATEGORIES) l.obstaclesOpen += l.open.get(c) || 0n;
    const used = new Set();
    for (let t = 0; t < REPORT_TOP; t++) {
        let best = '';
        for (const c of OBSTACLE_CATEGORIES) {
            const n = l.open.get(c) || 0n;
            if (!used.has(c) && n > 0n && (best === '' || n > l.open.get(best))) best = c;
        }
        if (!best) break;
        used.add(best);
        l.top.push({ category: best, open: l.open.get(best) });
    }
    return l;
}

// The brief from the answers to reportRequests() (sentra, obstacles,
// assistance) for the assistance year `year`: {year, lines: [line], total:
// line, members: {recorded, sentra, unitsEffective}}. A line's numbers are
// BigInts; top: [{category, open}], most open first. Obstacles and
// assistance of a regency the sentra answer does not list are left out, of
// the total too (as in the CLI; a record always has its sentra).
export function reportFromStats(rs, ro, ra, year) {
    const lines = [];
    for (const row of (rs && rs.rows) || []) {
        if (lines.length >= REPORT_MAX_ROWS) break;
        const gi = Math.max(0, (rs.groupBy || []).indexOf('GROUP_BY_REGENCY'));
        lines.push(reportLine((row.keys || [])[gi] || '', (row.labels || [])[gi] || '', row));
    }
    const total = reportLine('', 'Total', rs && rs.total);
    const byCode = new Map(lines.map((l) => [l.code, l]));
    for (const row of (ro && ro.rows) || []) {
        const l = byCode.get(keyOf(ro, row, 'GROUP_BY_REGENCY', 0));
        const cat = keyOf(ro, row, 'GROUP_BY_OBSTACLE_CATEGORY', 1);
        if (!l || !OBSTACLE_CATEGORIES.includes(cat)) continue;
        const n = int64(row.obstaclesOpen) + int64(row.obstaclesInProgress);
        l.open.set(cat, (l.open.get(cat) || 0n) + n);
        total.open.set(cat, (total.open.get(cat) || 0n) + n);
    }
    const y = String(year);
    for (const row of (ra && ra.rows) || []) {
        if (keyOf(ra, row, 'GROUP_BY_ASSISTANCE_YEAR', 1) !== y) continue;
        const l = byCode.get(keyOf(ra, row, 'GROUP_BY_REGENCY', 0));
        if (!l) continue;
        for (const x of [l, total]) {
            x.aidCount += int64(row.assistanceCount);
            x.aidValue += int64(row.assistanceValue);
        }
    }
    lines.forEach(finishLine);
    finishLine(total);
    const tr = (rs && rs.total) || {};
    return {
        year: Number(year), lines, total,
        members: { recorded: int64(tr.sentraWithMembers), sentra: int64(tr.sentra),
                   unitsEffective: int64(tr.businessUnitsEffective) },
    };
}

// The CSV of the brief: sentra-cli report --csv's columns and rows (the
// total last, with an empty regency code).
export const REPORT_CSV_HEADERS = [
    'regency', 'name', 'formed', 'designated', 'members', 'members_female_owned', 'with_institution',
    'obstacles_open', 'top_open_1', 'top_open_2', 'top_open_3', 'assistance_year', 'assistance_count',
    'assistance_value',
];

export function reportCsvRows(report) {
    return [...report.lines, report.total].map((l) => {
        const top = [];
        for (let i = 0; i < REPORT_TOP; i++) top.push(l.top[i] ? l.top[i].category : '');
        return [l.code, l.name, l.formed, l.designated, l.members, l.membersFemaleOwned,
                l.withInstitution, l.obstaclesOpen, ...top, report.year, l.aidCount, l.aidValue];
    });
}

// The share of women-owned members as the CLI's table prints it (printf's
// "%.0f" of the percentage: whole percent, an exact half to the even
// neighbour), as a Number; null when there are no members ("-").
export function femaleShare(l) {
    const m = l.members, f = l.membersFemaleOwned * 100n;
    if (m <= 0n) return null;
    let q = f / m;
    const r2 = (f % m) * 2n;
    if (r2 > m || (r2 === m && q % 2n === 1n)) q += 1n;
    return Number(q);
}
