// protobuf.js: just enough of the protobuf binary format to read the error
// details a Connect server sends. Connect puts each detail in the error JSON
// as {"type": "google.rpc.BadRequest", "value": "<base64 of the binary
// message>"}; the browser has no protobuf runtime, and these messages are
// two levels of strings, so a small reader does.
//
//   google.rpc.BadRequest    { repeated FieldViolation field_violations = 1; }
//   FieldViolation           { string field = 1; string description = 2; }
//   google.rpc.ErrorInfo     { string reason = 1; string domain = 2;
//                              map<string, string> metadata = 3; }
// (a map entry is a message {string key = 1; string value = 2;})

// Standard or URL-safe base64, padded or not, to bytes.
export function base64Bytes(text) {
    let b = String(text).replace(/-/g, '+').replace(/_/g, '/').replace(/\s+/g, '');
    while (b.length % 4) b += '=';
    const bin = atob(b);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
}

// The fields of one message: [{no, wire, value}] where value is a BigInt
// for varints and fixed numbers, a Uint8Array for length-delimited fields.
// Throws on a truncated or malformed message.
export function readFields(bytes) {
    const fields = [];
    let pos = 0;
    const varint = () => {
        let v = 0n, shift = 0n;
        for (;;) {
            if (pos >= bytes.length) throw new Error('protobuf: truncated varint');
            const b = bytes[pos++];
            v |= BigInt(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
            shift += 7n;
            if (shift > 63n) throw new Error('protobuf: varint too long');
        }
    };
    const take = (n) => {
        if (pos + n > bytes.length) throw new Error('protobuf: truncated field');
        const out = bytes.subarray(pos, pos + n);
        pos += n;
        return out;
    };
    while (pos < bytes.length) {
        const key = varint();
        const no = Number(key >> 3n), wire = Number(key & 7n);
        if (no === 0) throw new Error('protobuf: field number 0');
        let value;
        switch (wire) {
        case 0: value = varint(); break;
        case 1: value = take(8); break;
        case 2: value = take(Number(varint())); break;
        case 5: value = take(4); break;
        default: throw new Error(`protobuf: wire type ${wire} not supported`);
        }
        fields.push({ no, wire, value });
    }
    return fields;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

// google.rpc.BadRequest bytes -> [{field, description}].
export function decodeBadRequest(bytes) {
    const out = [];
    for (const f of readFields(bytes)) {
        if (f.no !== 1 || f.wire !== 2) continue;
        const v = { field: '', description: '' };
        for (const g of readFields(f.value)) {
            if (g.wire !== 2) continue;
            if (g.no === 1) v.field = utf8.decode(g.value);
            else if (g.no === 2) v.description = utf8.decode(g.value);
        }
        out.push(v);
    }
    return out;
}

// google.rpc.ErrorInfo bytes -> {reason, domain, metadata: {key: value}}.
export function decodeErrorInfo(bytes) {
    const out = { reason: '', domain: '', metadata: {} };
    for (const f of readFields(bytes)) {
        if (f.wire !== 2) continue;
        if (f.no === 1) out.reason = utf8.decode(f.value);
        else if (f.no === 2) out.domain = utf8.decode(f.value);
        else if (f.no === 3) {
            let k = '', v = '';
            for (const g of readFields(f.value)) {
                if (g.wire !== 2) continue;
                if (g.no === 1) k = utf8.decode(g.value);
                else if (g.no === 2) v = utf8.decode(g.value);
            }
            out.metadata[k] = v;
        }
    }
    return out;
}

// The other way, for tests: [{field, description}] -> BadRequest bytes.
export function encodeBadRequest(violations) {
    const enc = new TextEncoder();
    const len = (n) => {
        const out = [];
        while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
        out.push(n);
        return out;
    };
    const field = (no, bytes) => [(no << 3) | 2, ...len(bytes.length), ...bytes];
    const out = [];
    for (const v of violations) {
        const inner = [...field(1, enc.encode(v.field)), ...field(2, enc.encode(v.description))];
        out.push(...field(1, inner));
    }
    return new Uint8Array(out);
}
