// report.js: the brief a provincial office takes to its coordination
// meeting (issue 18), the page form of `sentra-cli report --province CODE`:
// per regency/city of the province, sentra formed and designated, members,
// sentra with an institution, obstacles still open and their top
// categories, assistance received in the year; then the total. The figures
// come from the CLI's three GetStatistics requests and are put together by
// model.js' reportFromStats, the CLI's arithmetic, so the two agree.
//
//   #/report?province=18&year=2026
//
// A province or district token reports on its own province (the server
// keeps a district token to its regency); a national token picks one. The
// year defaults to this year, as the CLI's does. The CSV download holds the
// CLI's --csv columns; the print style sheet fits the table on A4 landscape.

import { h, replace, download } from '../dom.js';
import { t } from '../i18n.js';
import { fmtInt, fmtRupiah } from '../format.js';
import { STATS } from '../api.js';
import { toCsv } from '../csv.js';
import { reportRequests, reportFromStats, REPORT_CSV_HEADERS, reportCsvRows, femaleShare } from '../model.js';

let generation = 0;   // renders started; late answers of older ones are dropped

function parseQuery(query) {
    const p = new URLSearchParams(query || '');
    const province = /^\d{2}$/.test(p.get('province') || '') ? p.get('province') : '';
    const y = Number(p.get('year'));
    const year = Number.isInteger(y) && y >= 1900 && y <= 9999 ? y : new Date().getFullYear();
    return { province, year, yearGiven: p.has('year') && year === y };
}

function reportHash(province, year, yearGiven) {
    const p = new URLSearchParams();
    if (province) p.set('province', province);
    if (yearGiven) p.set('year', String(year));
    const q = p.toString();
    return '#/report' + (q ? '?' + q : '');
}

// "bahan baku 4, pemasaran 2": a category and its count kept on one line.
function topText(l) {
    return l.top.map((x) => `${t('obstacle.' + x.category)}\u00a0${fmtInt(x.open)}`).join(', ');
}

function num(col, value, text) {
    return h('td.num', { dataset: { col, value: String(value) } }, text);
}

function lineRow(l, isTotal) {
    const share = femaleShare(l);
    return h(isTotal ? 'tr.total' : 'tr', { dataset: { regency: l.code } },
        h('td', { dataset: { col: 'regency' } }, l.code),
        h(isTotal ? 'th' : 'td', isTotal ? { scope: 'row', dataset: { col: 'name' } } : { dataset: { col: 'name' } },
            isTotal ? t('report.total') : l.name),
        num('formed', l.formed, fmtInt(l.formed)),
        num('designated', l.designated, fmtInt(l.designated)),
        num('members', l.members, fmtInt(l.members)),
        num('members_female_owned', l.membersFemaleOwned, share === null ? '-' : fmtInt(share) + '%'),
        num('with_institution', l.withInstitution, fmtInt(l.withInstitution)),
        num('obstacles_open', l.obstaclesOpen, fmtInt(l.obstaclesOpen)),
        h('td.top-cats', { dataset: { col: 'top_open', value: l.top.map((x) => `${x.category}:${x.open}`).join(',') } },
            topText(l)),
        num('assistance_count', l.aidCount, fmtInt(l.aidCount)),
        num('assistance_value', l.aidValue, fmtRupiah(l.aidValue)));
}

export function renderReport(view, app, query) {
    const gen = ++generation;
    const live = () => gen === generation;
    const scope = app.scope;
    const q = parseQuery(query);
    const national = scope.role === 'national' || scope.role === 'unknown';
    const province = national ? q.province : scope.provinceCode;
    view.dataset.view = 'report';

    // ------------------------------------------------------------ controls
    const controls = [];
    if (national) {
        controls.push(h('label', { for: 'report-province' }, t('filter.province'),
            h('select', {
                id: 'report-province',
                on: { change: (ev) => app.navigate(reportHash(ev.target.value, q.year, q.yearGiven)) },
            }, h('option', { value: '' }, t('report.pickProvince')),
            app.regionsOf('').map((r) => h('option', { value: r.code, selected: r.code === province }, r.name)))));
    }
    const yearInput = h('input', { id: 'report-year', type: 'number', min: '1900', max: '9999', step: '1',
                                   value: String(q.year), 'aria-label': t('report.year') });
    controls.push(h('form.search', {
        on: { submit: (ev) => {
            ev.preventDefault();
            const y = Number(yearInput.value);
            if (Number.isInteger(y) && y >= 1900 && y <= 9999) app.navigate(reportHash(province, y, true));
        } },
    }, h('label', { for: 'report-year' }, t('report.year'), yearInput),
    h('button', { type: 'submit', id: 'report-year-go' }, t('report.show'))));
    const tools = h('div.report-tools');
    const body = h('div', { id: 'report-body' });
    const title = !province ? t('report.title')
        : scope.role === 'district'
            ? t('report.headingDistrict', { name: app.regionName(scope.regencyCode), code: scope.regencyCode, year: q.year })
            : t('report.heading', { name: app.regionName(province), code: province, year: q.year });
    replace(view,
        h('section.panel.filters.no-print', { id: 'report-controls' },
            h('nav.crumbs', h('a', { href: '#/', id: 'report-back' }, t('report.back'))),
            h('div.filter-fields', controls)),
        h('section.panel.report', { id: 'report', dataset: { province, year: String(q.year) } },
            h('div.section-head', h('h1', { id: 'report-title' }, title), tools),
            h('p.muted.small', t('report.intro', { year: q.year })),
            body));

    if (!province) {
        replace(body, h('p.muted', { id: 'report-empty' }, t('report.pickProvince')));
        return;
    }

    // ------------------------------------------------------------ figures
    const rq = reportRequests(province);
    body.dataset.loading = 'yes';
    Promise.all([app.call(STATS + '/GetStatistics', rq.sentra),
                 app.call(STATS + '/GetStatistics', rq.obstacles),
                 app.call(STATS + '/GetStatistics', rq.assistance)]).then(([rs, ro, ra]) => {
        if (!live()) return;
        const rep = reportFromStats(rs, ro, ra, q.year);
        const heads = [
            ['report.regency', 'th'], ['report.name', 'th'], ['report.formed', 'th.num'],
            ['report.designated', 'th.num'], ['report.members', 'th.num'], ['report.femaleOwned', 'th.num'],
            ['report.institution', 'th.num'], ['report.obstaclesOpen', 'th.num'], ['report.topOpen', 'th'],
            ['report.aidCount', 'th.num'], ['report.aidValue', 'th.num'],
        ];
        const table = rep.lines.length
            ? h('div.table-wrap', h('table.report-table', { id: 'report-table' },
                h('thead', h('tr', heads.map(([k, tag]) => h(tag, { scope: 'col' },
                    k === 'report.aidCount' || k === 'report.aidValue' ? t(k, { year: q.year }) : t(k))))),
                h('tbody', rep.lines.map((l) => lineRow(l, false))),
                h('tfoot', lineRow(rep.total, true))))
            : h('p.muted', { id: 'report-empty' }, t('report.empty'));
        const m = rep.members;
        replace(body, table,
            m.recorded < m.sentra
                ? h('p.small', { id: 'report-members-note' }, t('report.membersNote', {
                    recorded: fmtInt(m.recorded), sentra: fmtInt(m.sentra), units: fmtInt(m.unitsEffective) }))
                : null,
            h('p.muted.small', t('report.source')));
        replace(tools,
            h('button', {
                type: 'button', id: 'report-csv', title: t('report.csvTitle'),
                on: { click: () => download(`laporan-${province}-${q.year}.csv`,
                                            toCsv(REPORT_CSV_HEADERS, reportCsvRows(rep))) },
            }, t('list.csv')),
            h('button.button.secondary', { type: 'button', id: 'report-print', on: { click: () => window.print() } },
                t('report.print')));
        body.dataset.loading = 'no';
    }).catch((e) => {
        if (!live()) return;
        replace(body, h('p.error', { role: 'alert' }, t('error.section', { message: e && e.message ? e.message : String(e) })));
        body.dataset.loading = 'no';
    });
}
