// record.js: one sentra as GetSentra returns it, with its yearly figures
// and their CSV download; an edit button for tokens that may write.

import { h, replace, download } from '../dom.js';
import { t } from '../i18n.js';
import { fmtInt, fmtRupiah, fmtBasisPoints, int64 } from '../format.js';
import { SENTRA } from '../api.js';
import { toCsv } from '../csv.js';
import { sectorLabel, KBLI_VERSIONS, sortedFigures, FIGURES_CSV_HEADERS, figuresCsvRows } from '../model.js';

function row(label, value) {
    if (value === undefined || value === null || value === '') return null;
    return [h('dt', label), h('dd', value)];
}

export function renderRecord(view, app, id) {
    view.dataset.view = 'record';
    const body = h('div', { id: 'record-body' }, h('p.muted', '…'));
    replace(view, h('p', h('a', { href: '#/', id: 'back' }, t('record.back'))), body);
    app.call(SENTRA + '/GetSentra', { id }).then((s) => {
        if (location.hash !== '#/sentra/' + id) return;
        const when = s.updatedAtMs ? new Date(Number(int64(s.updatedAtMs))).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '';
        const loc = s.location;
        const coords = loc && (loc.latitude || loc.longitude)
            ? `${Number(loc.latitude || 0).toFixed(5)}, ${Number(loc.longitude || 0).toFixed(5)}` : '';
        const kbliEd = KBLI_VERSIONS.find((k) => k.value === s.kbliVersion);
        const figs = sortedFigures(s);
        const figTable = figs.length ? h('div.table-wrap', h('table.figures', { id: 'figures-table' },
            h('thead', h('tr', ['fig.year', 'fig.units', 'fig.male', 'fig.female', 'fig.investment',
                'fig.production', 'fig.material', 'fig.capacity', 'fig.exportShare', 'fig.destinations']
                .map((k, i) => h(i > 0 && i < 9 ? 'th.num' : 'th', { scope: 'col' }, t(k))))),
            h('tbody', figs.map((f) => h('tr',
                h('td', String(f.year || '')),
                h('td.num', fmtInt(f.businessUnits)),
                h('td.num', fmtInt(f.workersMale)),
                h('td.num', fmtInt(f.workersFemale)),
                h('td.num', fmtRupiah(f.investment)),
                h('td.num', fmtRupiah(f.productionValue)),
                h('td.num', fmtRupiah(f.materialValue)),
                h('td.num', f.capacity ? `${fmtInt(f.capacity)} ${f.capacityUnit || ''}` : ''),
                h('td.num', fmtBasisPoints(f.exportShareBp || 0)),
                h('td', (f.exportDestinations || []).join(', '))))))) : h('p.muted', t('record.noFigures'));

        replace(body, h('article.panel.record', { id: 'record', dataset: { id: s.id, version: String(s.version || '') } },
            h('header.record-head',
                h('h1', { id: 'record-name' }, s.name || ''),
                h('p.muted', t('record.meta', { version: String(s.version || ''), updated: when })),
                app.scope.canWrite
                    ? h('a.button', { href: `#/sentra/${encodeURIComponent(s.id)}/edit`, id: 'record-edit' }, t('record.edit'))
                    : null),
            h('div.record-grid',
                h('section', h('h2', t('record.location')), h('dl',
                    row(t('record.province'), s.provinceCode ? `${app.regionName(s.provinceCode)} (${s.provinceCode})` : ''),
                    row(t('record.regency'), s.regencyCode ? `${app.regionName(s.regencyCode)} (${s.regencyCode})` : ''),
                    row(t('record.district'), s.districtCode ? `${app.regionName(s.districtCode)}` : ''),
                    row(t('record.village'), s.villageCode || ''),
                    row(t('record.address'), s.address || ''),
                    row(t('record.coordinates'), coords))),
                h('section', h('h2', t('record.product')), h('dl',
                    row(t('record.commodity'), s.commodity || ''),
                    row(t('record.mainProduct'), s.mainProduct || ''),
                    row(t('record.kbli'), s.kbliCode ? `${s.kbliCode}${kbliEd ? ' (' + kbliEd.label + ')' : ''}` : ''),
                    row(t('record.sector'), sectorLabel(s.sectorGroup)),
                    row(t('record.status'), s.status ? t('status.' + s.status) : ''),
                    row(t('record.formedOn'), s.formedOn || ''))),
                h('section', h('h2', t('record.decree')), h('dl',
                    row(t('record.decreeNumber'), (s.decree && s.decree.number) || ''),
                    row(t('record.decreeDate'), (s.decree && s.decree.date) || ''),
                    row(t('record.decreeOfficial'), (s.decree && s.decree.official) || ''))),
                h('section', h('h2', t('record.contact')), h('dl',
                    row(t('record.contactName'), s.contactName || ''),
                    row(t('record.contactPhone'), s.contactPhone || '')))),
            h('section',
                h('div.section-head', h('h2', t('record.figures')),
                    figs.length ? h('button', {
                        type: 'button', id: 'record-csv',
                        on: { click: () => download(`sentra-${s.id}-figures.csv`, toCsv(FIGURES_CSV_HEADERS, figuresCsvRows(s))) },
                    }, t('record.csv')) : null),
                figTable)));
    }).catch((e) => {
        replace(body, h('p.error', { role: 'alert' },
            e.code === 'not_found' ? t('record.notFound') : t('error.section', { message: e.message })));
    });
}
