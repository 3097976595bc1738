// dom.js: the only way the dashboard makes elements. Text from the server
// (names, addresses, labels, error messages) always goes in as a text node
// (textContent), never as markup: a sentra named `<img src=x onerror=...>`
// shows those characters. Nothing here parses HTML, and no attribute that
// could run code (on*, javascript: links, style) can be set through it.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Attributes that hold code or addresses get checked; the rest are plain.
function setAttr(el, name, value) {
    if (value === undefined || value === null || value === false) return;
    const n = name.toLowerCase();
    if (n.startsWith('on') || n === 'style' || n === 'srcdoc')
        throw new Error(`dom: attribute ${name} is not allowed`);
    if ((n === 'href' || n === 'src' || n === 'action' || n === 'xlink:href') &&
        !/^(#|\/|blob:|[a-z0-9._-]+(\/|$|\?|#))/i.test(String(value)))
        throw new Error(`dom: ${name} must be a relative or blob: address`);
    el.setAttribute(name, value === true ? '' : String(value));
}

function append(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) {
        for (const c of child) append(el, c);
    } else if (typeof child === 'object' && 'nodeType' in child) {
        el.appendChild(child);
    } else {
        el.appendChild(el.ownerDocument.createTextNode(String(child)));
    }
}

// h('tag.class1.class2', {attr: value, on: {click: fn}, dataset: {...}}, ...children)
// Children are nodes, strings (as text) or arrays of them.
export function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag || 'div');
    if (classes.length) el.className = classes.join(' ');
    build(el, attrs, children);
    return el;
}

// The same for SVG elements.
export function s(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElementNS(SVG_NS, tag);
    if (classes.length) el.setAttribute('class', classes.join(' '));
    build(el, attrs, children);
    return el;
}

function build(el, attrs, children) {
    if (attrs && (typeof attrs !== 'object' || 'nodeType' in attrs || Array.isArray(attrs))) {
        children.unshift(attrs);
        attrs = null;
    }
    if (attrs) {
        for (const [k, v] of Object.entries(attrs)) {
            if (k === 'on') {
                for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
            } else if (k === 'dataset') {
                for (const [dk, dv] of Object.entries(v))
                    if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv);
            } else if (k === 'class') {
                if (v) el.setAttribute('class', [el.getAttribute('class'), v].filter(Boolean).join(' '));
            } else if (k === 'value' && 'value' in el) {
                el.value = v === undefined || v === null ? '' : String(v);
            } else if (k === 'checked' || k === 'selected' || k === 'disabled') {
                el[k] = !!v;
            } else {
                setAttr(el, k, v);
            }
        }
    }
    append(el, children);
}

// Replaces every child of el with the given children.
export function replace(el, ...children) {
    while (el.firstChild) el.removeChild(el.firstChild);
    append(el, children);
    return el;
}

// Offers text as a file download (a blob: address; no server round trip).
export function download(filename, text, type = 'text/csv;charset=utf-8') {
    const blob = new Blob([text], { type });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filename, class: 'hidden' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}
