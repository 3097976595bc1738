// app.js: the dashboard's entry point (index.html loads it as a module).
// It keeps the session (the token in this tab's sessionStorage, never in an
// address), learns the token's scope, and routes between the views by the
// address's fragment:
//
//   #/?province=18&regency=18.01&...   the dashboard, filtered
//   #/sentra/<id>                      one record
//   #/sentra/<id>/edit, #/new          the record form
//   #/report?province=18&year=2026     the coordination-meeting brief
//
// Every view renders into <main id="view"> with dom.js (text as text).
// document.documentElement's data-busy attribute counts the API calls in
// flight, so tests (and people) can tell when the page has settled.

import { createClient, ApiError, SENTRA, TOKENS } from './api.js';
import { h, replace } from './dom.js';
import { t, setLang, getLang } from './i18n.js';
import { scopeOf, learnRegionNames } from './model.js';
import { renderSignIn } from './views/signin.js';
import { renderDashboard } from './views/dashboard.js';
import { renderRecord } from './views/record.js';
import { renderForm } from './views/form.js';
import { renderReport } from './views/report.js';

const TOKEN_KEY = 'sentra.token';
const LANG_KEY = 'sentra.lang';

const app = {
    client: null,      // api.js client with the token, or null when signed out
    scope: null,       // scopeOf() the token's WhoAmI
    names: new Map(),  // region code -> name, as the API gives them
    busy: 0,           // API calls in flight
    view: null,        // the <main> element
    render: null,      // re-renders the current route (after a language switch)
};

function setBusy(delta) {
    app.busy += delta;
    document.documentElement.dataset.busy = String(app.busy);
}

// Calls the API, counting the call as busy; an UNAUTHENTICATED answer ends
// the session (the token was revoked while the tab was open).
app.call = async function (method, request) {
    if (!app.client) throw new Error('not signed in');
    setBusy(1);
    try {
        return await app.client.call(method, request);
    } catch (e) {
        // Only an established session ends here; signing in reports it.
        if (e && e.code === 'unauthenticated' && app.client && app.scope) {
            signOut(t('signin.expired'));
        }
        throw e;
    } finally {
        setBusy(-1);
    }
};

// Counts other work the page waits for (a data file) as busy too.
app.busyWhile = function (promise) {
    setBusy(1);
    return promise.finally(() => setBusy(-1));
};

app.navigate = function (hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
};

app.regionName = function (code) {
    return app.names.get(code) || code;
};

// Learns names of regions: provinces (all), and the regencies of a province.
app.loadRegions = async function (parent) {
    const key = 'regions:' + (parent || '');
    if (app.names.has(key)) return;
    const resp = await app.call(SENTRA + '/ListRegions', parent ? { parentCode: parent, pageSize: 1000 } : { pageSize: 1000 });
    learnRegionNames(app.names, resp);
    app.names.set(key, '');
    return resp;
};

app.regionsOf = function (parent) {
    const out = [];
    for (const [code, name] of app.names) {
        if (code.startsWith('regions:')) continue;
        if (parent ? code.length === 5 && code.startsWith(parent + '.') : code.length === 2) out.push({ code, name });
    }
    return out.sort((a, b) => a.code.localeCompare(b.code));
};

// ---------------------------------------------------------------- session

// Learns the scope of a token: the server says (TokenService/WhoAmI: its
// role and region). An admin token reads no sentra: refused here as the
// server would refuse its reads (PERMISSION_DENIED).
async function learnScope() {
    const scope = scopeOf(await app.call(TOKENS + '/WhoAmI', {}));
    if (scope.role === 'admin')
        throw new ApiError('permission_denied', 'admin tokens manage tokens only');
    app.scope = scope;
    await app.loadRegions('');
    if (scope.provinceCode) await app.loadRegions(scope.provinceCode);
}

// Signs in with a token: keeps it only when the server accepts it.
app.signIn = async function (token) {
    app.client = createClient({ token });
    try {
        await learnScope();
    } catch (e) {
        app.client = null;
        app.scope = null;
        throw e;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    renderChrome();
    app.navigate('#/');
};

function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    app.client = null;
    app.scope = null;
    app.names = new Map();
    renderChrome();
    if (location.hash && location.hash !== '#/') history.replaceState(null, '', '#/');
    renderSignIn(app.view, app, message);
}

// ---------------------------------------------------------------- chrome

function scopeText() {
    const sc = app.scope;
    if (!sc) return '';
    let main;
    if (sc.role === 'national') main = t('scope.national');
    else if (sc.role === 'province') main = t('scope.province', { name: app.regionName(sc.provinceCode), code: sc.provinceCode });
    else if (sc.role === 'district') main = t('scope.district', { name: app.regionName(sc.regencyCode), code: sc.regencyCode });
    else main = t('scope.unknown');
    const extra = [];
    if (sc.role !== 'national') extra.push(sc.canWrite ? t('scope.write') : t('scope.readonly'));
    if (sc.role === 'province') extra.push(t('scope.regencies', { n: app.regionsOf(sc.provinceCode).length }));
    if (sc.label) extra.push(t('scope.token', { label: sc.label }));
    return extra.length ? `${main} · ${extra.join(' · ')}` : main;
}

function renderChrome() {
    document.documentElement.lang = getLang();
    document.title = t('app.title');
    const header = document.getElementById('top');
    const signedIn = !!app.client;
    replace(header,
        h('div.brand',
            h('a.title', { href: '#/' }, t('app.title')),
            h('span.subtitle', t('app.subtitle'))),
        signedIn ? h('p.scope', { id: 'scope', dataset: { role: app.scope ? app.scope.role : '' } },
            h('span.scope-label', t('scope.label') + ': '), scopeText()) : null,
        h('nav.actions',
            signedIn && app.scope
                ? h('a', { href: '#/report', id: 'nav-report' }, t('nav.report')) : null,
            signedIn && app.scope && app.scope.canWrite
                ? h('a.button', { href: '#/new', id: 'nav-new' }, t('nav.new')) : null,
            h('button.link', {
                type: 'button', id: 'lang', title: t('lang.switch.title'),
                on: { click: () => switchLang(getLang() === 'id' ? 'en' : 'id') },
            }, t('lang.switch')),
            signedIn ? h('button.link', { type: 'button', id: 'signout', on: { click: () => signOut() } },
                t('nav.signout')) : null));
}

function switchLang(lang) {
    setLang(lang);
    localStorage.setItem(LANG_KEY, lang);
    renderChrome();
    route();
}

// ---------------------------------------------------------------- routes

function route() {
    if (!app.client) {
        renderSignIn(app.view, app);
        return;
    }
    const hash = location.hash || '#/';
    const before = app.view.dataset.view;
    let m;
    if ((m = /^#\/sentra\/([0-9a-fA-F-]{36})\/edit$/.exec(hash))) {
        renderForm(app.view, app, m[1]);
    } else if ((m = /^#\/sentra\/([0-9a-fA-F-]{36})$/.exec(hash))) {
        renderRecord(app.view, app, m[1]);
    } else if (hash === '#/new') {
        renderForm(app.view, app, null);
    } else if (hash === '#/report' || hash.startsWith('#/report?')) {
        renderReport(app.view, app, hash.slice('#/report?'.length));
    } else {
        const q = hash.startsWith('#/?') ? hash.slice(3) : '';
        renderDashboard(app.view, app, q);
    }
    // A new filter keeps the place on the page (the map or chart that was
    // clicked stays in view); another page starts at its top.
    if (app.view.dataset.view !== before || app.view.dataset.view !== 'dashboard') window.scrollTo(0, 0);
}
app.render = route;

async function start() {
    app.view = document.getElementById('view');
    const lang = localStorage.getItem(LANG_KEY);
    if (lang === 'en' || lang === 'id') setLang(lang);
    document.documentElement.dataset.busy = '0';
    renderChrome();
    window.addEventListener('hashchange', route);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) {
        app.client = createClient({ token });
        try {
            await learnScope();
        } catch (e) {
            if (e.code === 'unauthenticated' || e.code === 'permission_denied') {
                signOut(e.code === 'unauthenticated' ? t('signin.expired') : t('signin.admin'));
            } else {
                // The server may be back in a moment: keep the token.
                app.client = null;
                replace(app.view, h('section.panel',
                    h('p.error', { role: 'alert' }, t('signin.failed', { message: e.message })),
                    h('button', { type: 'button', on: { click: () => location.reload() } }, t('form.reload'))));
            }
            return;
        }
        renderChrome();
    }
    route();
}

start();
