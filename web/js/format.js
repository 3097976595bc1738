// format.js: numbers as the dashboard shows them. The API sends 64-bit
// integers as decimal strings (proto3 JSON) and leaves out fields that are
// zero, so every reader goes through int64() and gets a BigInt; nothing is
// turned into a floating-point number on the way (rupiah totals of a whole
// country pass 2^53).

import { locale } from './i18n.js';

// A proto3 JSON int64 (string, number or absent) as a BigInt.
export function int64(v) {
    if (v === undefined || v === null || v === '') return 0n;
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number') return BigInt(Math.trunc(v));
    if (!/^-?\d+$/.test(String(v))) throw new Error(`not an int64: ${v}`);
    return BigInt(v);
}

// An int64 as a plain decimal string ("0" for absent), for CSV cells.
export function int64Text(v) {
    return int64(v).toString();
}

// 1234567 -> "1.234.567" (id) / "1,234,567" (en).
export function fmtInt(v) {
    return new Intl.NumberFormat(locale()).format(int64(v));
}

export function fmtRupiah(v) {
    return 'Rp ' + fmtInt(v);
}

// Large sums in words ("Rp 31,6 miliar", "Rp 31.6 billion") for the
// overview's cards, beside the exact figure. Below a million: exact.
export function fmtRupiahShort(v) {
    const n = int64(v);
    const abs = n < 0n ? -n : n;
    if (abs < 1000000n) return fmtRupiah(n);
    return 'Rp ' + new Intl.NumberFormat(locale(), { notation: 'compact', compactDisplay: 'long',
                                                     maximumFractionDigits: 1 }).format(Number(n));
}

// The designation rate as sentra-cli stats prints it: percent, one decimal
// ("74.0%"), with the interface's decimal separator.
export function fmtRate(rate) {
    const r = typeof rate === 'number' && isFinite(rate) ? rate : 0;
    return new Intl.NumberFormat(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 })
        .format(Math.round(r * 1000) / 10) + '%';
}

// A number small enough for a chart axis (counts); int64 counts of sentra
// are far below 2^53.
export function toNumber(v) {
    return Number(int64(v));
}

// Basis points (0..10000) as a percent with up to two decimals.
export function fmtBasisPoints(bp) {
    const v = typeof bp === 'number' ? bp : Number(bp || 0);
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(v / 100) + '%';
}
