// csv.js: CSV text of what a table shows (RFC 4180: comma separated, CRLF
// line ends, fields with a comma, quote or line break in double quotes,
// quotes doubled), with a UTF-8 byte order mark so that spreadsheet
// programs read the names' accents right.
//
// Spreadsheets run a cell that starts with = + - @ (or a tab or CR before
// one) as a formula; a record's text comes from other people, so a text
// cell that starts with one of those gets a leading apostrophe (OWASP's
// advice for CSV injection). Numbers are passed as numbers or BigInts and
// never changed.

const FORMULA_START = /^[=+\-@\t\r]/;

function cell(v) {
    if (v === undefined || v === null) return '';
    let text;
    if (typeof v === 'number' || typeof v === 'bigint') {
        text = String(v);
    } else {
        text = String(v);
        if (FORMULA_START.test(text)) text = "'" + text;
    }
    if (/[",\r\n]/.test(text)) text = '"' + text.replace(/"/g, '""') + '"';
    return text;
}

// headers: array of strings; rows: array of arrays of cells.
export function toCsv(headers, rows) {
    const lines = [headers.map(cell).join(',')];
    for (const r of rows) lines.push(r.map(cell).join(','));
    return '\uFEFF' + lines.join('\r\n') + '\r\n';
}

// Reads CSV text back into rows (used by the tests; handles what toCsv
// writes: quotes, doubled quotes, CRLF, a leading BOM).
export function parseCsv(text) {
    if (text.charCodeAt(0) === 0xFEFF) text = text.slice(1);
    const rows = [];
    let row = [], field = '', i = 0, quoted = false;
    while (i < text.length) {
        const c = text[i];
        if (quoted) {
            if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
            if (c === '"') { quoted = false; i++; continue; }
            field += c; i++; continue;
        }
        if (c === '"') { quoted = true; i++; continue; }
        if (c === ',') { row.push(field); field = ''; i++; continue; }
        if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
        if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; continue; }
        field += c; i++;
    }
    if (field !== '' || row.length) { row.push(field); rows.push(row); }
    return rows;
}
