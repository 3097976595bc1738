// form.js: creating and editing a sentra (CreateSentra; UpdateSentra with
// the fields changed as update_mask and the version read as
// expected_version). The server decides what is valid: its per-field
// violations (Connect's google.rpc.BadRequest detail) are shown beside the
// inputs they name, with the server's own words; the form checks only what
// it must to build the JSON (whole numbers, decimal coordinates).

import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { int64Text } from '../format.js';
import { SENTRA } from '../api.js';
import { STATUSES, SECTORS, KBLI_VERSIONS, sortedFigures, changedPaths, violationInput } from '../model.js';

const INT = /^-?\d+$/;
const DEC = /^-?\d+(\.\d+)?$/;

// The figures columns: input name suffix, JSON key, label, kind.
const FIG_COLS = [
    ['year', 'year', 'fig.year', 'int32'],
    ['business_units', 'businessUnits', 'fig.units', 'int64'],
    ['workers_male', 'workersMale', 'fig.male', 'int64'],
    ['workers_female', 'workersFemale', 'fig.female', 'int64'],
    ['investment', 'investment', 'fig.investment', 'int64'],
    ['production_value', 'productionValue', 'fig.production', 'int64'],
    ['material_value', 'materialValue', 'fig.material', 'int64'],
    ['capacity', 'capacity', 'fig.capacity', 'int64'],
    ['capacity_unit', 'capacityUnit', 'fig.capacityUnit', 'text'],
    ['export_share_bp', 'exportShareBp', 'fig.export', 'int32'],
    ['export_destinations', 'exportDestinations', 'fig.destinations', 'list'],
];

export function renderForm(view, app, id) {
    view.dataset.view = 'form';
    if (!id) {
        build(view, app, null);
        return;
    }
    replace(view, h('p.muted', '…'));
    app.call(SENTRA + '/GetSentra', { id }).then((s) => {
        if (location.hash !== `#/sentra/${id}/edit`) return;
        build(view, app, s);
    }).catch((e) => replace(view, h('p.error', { role: 'alert' }, t('error.section', { message: e.message }))));
}

function build(view, app, original) {
    const scope = app.scope;
    const inputs = new Map();      // input name -> element
    const errors = new Map();      // input name -> its error paragraph
    const o = original || {};

    const field = (name, label, control, { wide = false } = {}) => {
        control.id = 'in-' + name.replace(/[^a-z0-9]+/gi, '-');
        control.name = name;
        inputs.set(name, control);
        const err = h('p.field-error', { dataset: { for: name }, 'aria-live': 'polite' });
        errors.set(name, err);
        return h(wide ? 'div.field.wide' : 'div.field', h('label', { for: control.id }, label), control, err);
    };
    const text = (value, attrs = {}) => h('input', { type: 'text', value: value || '', ...attrs });
    const select = (value, options, attrs = {}) => h('select', attrs,
        h('option', { value: '' }, t('form.choose')),
        options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));

    // Region: the province's regencies; a district token's own one first.
    const province = o.provinceCode || scope.provinceCode;
    const regencyOptions = () => app.regionsOf(province).map((r) => [r.code, `${r.name} (${r.code})`]);
    const regency = select(o.regencyCode || scope.regencyCode, regencyOptions());
    if (province && !app.names.has('regions:' + province)) {
        app.loadRegions(province).then(() => {
            const keep = regency.value || o.regencyCode || scope.regencyCode;
            replace(regency, h('option', { value: '' }, t('form.choose')),
                regencyOptions().map(([v, l]) => h('option', { value: v, selected: v === keep }, l)));
        }).catch(() => {});
    }
    const districts = h('datalist', { id: 'district-options' });
    const loadDistricts = () => {
        if (!regency.value) return;
        app.call(SENTRA + '/ListRegions', { parentCode: regency.value, pageSize: 1000 }).then((resp) => {
            replace(districts, (resp.regions || []).map((r) => h('option', { value: r.code }, r.name)));
        }).catch(() => {});
    };
    regency.addEventListener('change', loadDistricts);
    loadDistricts();

    const loc = o.location || null;
    const decree = o.decree || {};
    const figRows = h('tbody', { id: 'figures-rows' });
    const figError = h('p.field-error', { dataset: { for: 'figures' } });
    errors.set('figures', figError);
    const addFigRow = (f) => {
        const cells = FIG_COLS.map(([suffix, key, label, kind]) => {
            // Absent numbers are zero in proto3 JSON; a new row starts empty.
            let v = '';
            if (f && kind === 'int64') v = int64Text(f[key]);
            else if (f && kind === 'int32') v = String(f[key] || 0);
            else if (f && kind === 'list') v = (f[key] || []).join(' ');
            else if (f) v = f[key] || '';
            const input = h('input', {
                type: 'text', value: v === undefined || v === null ? '' : v, 'aria-label': t(label),
                inputmode: kind === 'text' || kind === 'list' ? 'text' : 'numeric',
                dataset: { col: suffix },
            });
            return h('td', input, h('p.field-error'));
        });
        const tr = h('tr.fig-row', cells, h('td', h('button.link', {
            type: 'button', on: { click: () => tr.remove() },
        }, t('fig.remove'))));
        figRows.appendChild(tr);
    };
    sortedFigures(o).forEach(addFigRow);
    if (!original) {
        addFigRow(null);
        figRows.querySelector('input[data-col="year"]').value = String(new Date().getFullYear());
    }

    const summary = h('div.form-summary', { id: 'form-summary', role: 'alert' });
    const save = h('button', { type: 'submit', id: 'form-save' }, t('form.save'));
    const cancelHref = original ? '#/sentra/' + encodeURIComponent(o.id) : '#/';

    const form = h('form.panel.record-form', { id: 'sentra-form', novalidate: true },
        h('h1', original ? t('form.editTitle') : t('form.createTitle')),
        summary,
        h('fieldset', h('legend', t('record.product')), h('div.fields',
            field('name', t('form.name'), text(o.name, { maxlength: '200' }), { wide: true }),
            field('commodity', t('record.commodity'), text(o.commodity)),
            field('main_product', t('record.mainProduct'), text(o.mainProduct)),
            field('kbli_code', t('record.kbli'), text(o.kbliCode, { inputmode: 'numeric', maxlength: '5' })),
            field('kbli_version', t('form.kbliVersion'), select(o.kbliVersion || (original ? '' : 'KBLI_VERSION_2020'),
                KBLI_VERSIONS.map((k) => [k.value, k.label]))),
            field('sector_group', t('record.sector'), select(o.sectorGroup, SECTORS.map((s) => [s.value, s.label]))),
            field('status', t('record.status'), select(o.status || (original ? '' : 'STATUS_FORMED'),
                STATUSES.map((s) => [s, t('status.' + s)]))),
            field('formed_on', t('record.formedOn'), h('input', { type: 'date', value: o.formedOn || '' })))),
        h('fieldset', h('legend', t('record.location')), h('div.fields',
            field('regency_code', t('record.regency'), regency),
            field('district_code', t('record.district'), text(o.districtCode, { list: 'district-options', maxlength: '8' })),
            field('village_code', t('record.village'), text(o.villageCode, { maxlength: '13' })),
            field('address', t('record.address'), h('textarea', { rows: '2', value: o.address || '' }), { wide: true }),
            field('location.latitude', t('form.latitude'), text(loc ? String(loc.latitude || 0) : '', { inputmode: 'decimal' })),
            field('location.longitude', t('form.longitude'), text(loc ? String(loc.longitude || 0) : '', { inputmode: 'decimal' })),
            districts)),
        h('fieldset', h('legend', t('record.decree')), h('div.fields',
            field('decree.number', t('record.decreeNumber'), text(decree.number)),
            field('decree.date', t('record.decreeDate'), h('input', { type: 'date', value: decree.date || '' })),
            field('decree.official', t('record.decreeOfficial'), text(decree.official)))),
        h('fieldset', h('legend', t('record.contact')), h('div.fields',
            field('contact_name', t('record.contactName'), text(o.contactName)),
            field('contact_phone', t('record.contactPhone'), text(o.contactPhone, { inputmode: 'tel' })))),
        h('fieldset', h('legend', t('record.figures')),
            figError,
            h('div.table-wrap', h('table.figures-edit',
                h('thead', h('tr', FIG_COLS.map(([, , label]) => h('th', { scope: 'col' }, t(label))), h('th'))),
                figRows)),
            h('button.link', { type: 'button', id: 'fig-add', on: { click: () => addFigRow(null) } }, t('fig.add'))),
        h('div.form-actions', save, h('a.button.secondary', { href: cancelHref }, t('form.cancel'))));

    const clearErrors = () => {
        replace(summary);
        for (const e of errors.values()) replace(e);
        for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
        for (const p of figRows.querySelectorAll('.field-error')) replace(p);
    };
    const mark = (el, errEl, text) => {
        if (el) el.classList.add('invalid');
        if (errEl) errEl.appendChild(h('span', text));
    };
    // The input and error box of a violation's field, or null.
    const target = (name) => {
        const m = /^figures\[(\d+)\]\.(\w+)$/.exec(name);
        if (m) {
            const tr = figRows.querySelectorAll('tr.fig-row')[Number(m[1])];
            const input = tr && tr.querySelector(`input[data-col="${m[2]}"]`);
            if (input) return [input, input.nextElementSibling];
            if (tr) return [tr, figError];
            return null;
        }
        if (/^figures\[\d+\]$/.test(name) || name === 'figures') return [null, figError];
        if (name === 'location') return [inputs.get('location.latitude'), errors.get('location.latitude')];
        if (name === 'decree') return [inputs.get('decree.number'), errors.get('decree.number')];
        if (inputs.has(name)) return [inputs.get(name), errors.get(name)];
        return null;
    };

    // The Sentra JSON from the inputs, or null after marking what cannot
    // be sent at all.
    const collect = () => {
        let bad = false;
        const val = (n) => inputs.get(n).value.trim();
        const sentra = {};
        const put = (key, n) => { const v = val(n); if (v) sentra[key] = v; };
        put('name', 'name'); put('commodity', 'commodity'); put('mainProduct', 'main_product');
        put('kbliCode', 'kbli_code'); put('kbliVersion', 'kbli_version'); put('sectorGroup', 'sector_group');
        put('status', 'status'); put('formedOn', 'formed_on'); put('regencyCode', 'regency_code');
        put('districtCode', 'district_code'); put('villageCode', 'village_code');
        put('contactName', 'contact_name'); put('contactPhone', 'contact_phone');
        const addr = inputs.get('address').value;
        if (addr.trim()) sentra.address = addr;
        const lat = val('location.latitude'), lon = val('location.longitude');
        if (lat || lon) {
            for (const [n, v] of [['location.latitude', lat], ['location.longitude', lon]]) {
                if (v && !DEC.test(v)) { mark(inputs.get(n), errors.get(n), t('form.notNumber')); bad = true; }
            }
            sentra.location = { latitude: Number(lat || 0), longitude: Number(lon || 0) };
        }
        const d = { number: val('decree.number'), date: val('decree.date'), official: val('decree.official') };
        if (d.number || d.date || d.official) {
            sentra.decree = {};
            for (const k of ['number', 'date', 'official']) if (d[k]) sentra.decree[k] = d[k];
        }
        sentra.figures = [...figRows.querySelectorAll('tr.fig-row')].map((tr) => {
            const out = {};
            for (const [suffix, key, , kind] of FIG_COLS) {
                const input = tr.querySelector(`input[data-col="${suffix}"]`);
                const v = input.value.trim();
                if (!v) continue;
                if (kind === 'int32' || kind === 'int64') {
                    if (!INT.test(v)) { mark(input, input.nextElementSibling, t('form.notInteger')); bad = true; continue; }
                    out[key] = kind === 'int32' ? Number(v) : v;
                } else if (kind === 'list') {
                    out[key] = v.split(/[\s,]+/).filter(Boolean);
                } else {
                    out[key] = v;
                }
            }
            return out;
        });
        return bad ? null : sentra;
    };

    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearErrors();
        const sentra = collect();
        if (!sentra) {
            summary.appendChild(h('p.error', t('form.invalid')));
            return;
        }
        let method, request;
        if (original) {
            const paths = changedPaths(original, sentra);
            if (!paths.length) {
                summary.appendChild(h('p.muted', t('form.nothing')));
                return;
            }
            method = SENTRA + '/UpdateSentra';
            request = { sentra: { ...sentra, id: original.id }, updateMask: paths, expectedVersion: String(original.version || '0') };
        } else {
            method = SENTRA + '/CreateSentra';
            request = { sentra };
        }
        save.disabled = true;
        replace(save, t('form.saving'));
        try {
            const saved = await app.call(method, request);
            app.navigate('#/sentra/' + encodeURIComponent(saved.id));
        } catch (e) {
            save.disabled = false;
            replace(save, t('form.save'));
            showError(e);
        }
    });

    function showError(e) {
        if (e.code === 'aborted') {
            summary.appendChild(h('p.error', { id: 'form-conflict' }, t('form.conflict'),
                e.currentVersion ? ' ' + t('form.conflictVersion', { version: e.currentVersion }) : ''));
            summary.appendChild(h('button', { type: 'button', on: { click: () => renderForm(view, app, original.id) } },
                t('form.reload')));
            return;
        }
        if (e.code === 'permission_denied') {
            summary.appendChild(h('p.error', t('form.denied', { message: e.message })));
            return;
        }
        if (e.code === 'invalid_argument' && e.violations.length) {
            const other = [];
            for (const v of e.violations) {
                const tg = target(violationInput(v.field));
                if (tg) mark(tg[0], tg[1], v.description);
                else other.push(v);
            }
            summary.appendChild(h('p.error', t('form.invalid')));
            if (other.length)
                summary.appendChild(h('ul.error', { id: 'form-other-errors' },
                    other.map((v) => h('li', `${v.field}: ${v.description}`))));
            const first = form.querySelector('.invalid');
            if (first && first.focus) first.focus();
            return;
        }
        summary.appendChild(h('p.error', t('error.generic', { code: e.code, message: e.message })));
    }

    replace(view, form);
}
