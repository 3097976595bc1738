// api.test.mjs: web/js/api.js and protobuf.js against the shapes the
// Connect protocol documents (connectrpc.com/docs/protocol): a unary POST
// with a JSON body, errors as {"code","message","details"} with the HTTP
// status Connect maps the code to, field violations as a base64
// google.rpc.BadRequest detail. The fetch here is a recording stand-in; the
// browser test (tests/web/browser_test.py) runs the same module against a
// real sentrad.
import test from 'node:test';
import assert from 'node:assert/strict';

import { createClient, errorFromJson, ApiError, STATS, SENTRA, SYNC, TOKENS, getUrl, READS } from '../../web/js/api.js';
import { readFields, decodeBadRequest, encodeBadRequest, decodeErrorInfo, base64Bytes } from '../../web/js/protobuf.js';

const b64 = (bytes) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

function fakeFetch(answer) {
    const calls = [];
    const fn = async (url, init) => {
        calls.push({ url, init });
        if (answer instanceof Error) throw answer;
        const { status = 200, type = 'application/json', body } = answer;
        return new Response(typeof body === 'string' ? body : JSON.stringify(body),
                            { status, headers: type ? { 'content-type': type } : {} });
    };
    fn.calls = calls;
    return fn;
}

test('protobuf: BadRequest bytes as protoc writes them', () => {
    // protoc --encode=google.rpc.BadRequest of
    // field_violations { field: "name" description: "is required" }
    const bytes = Uint8Array.from([0x0a, 0x13, 0x0a, 0x04, ...Buffer.from('name'), 0x12, 0x0b, ...Buffer.from('is required')]);
    assert.deepEqual(decodeBadRequest(bytes), [{ field: 'name', description: 'is required' }]);
    assert.deepEqual(encodeBadRequest([{ field: 'name', description: 'is required' }]), bytes);
});

test('protobuf: round trip with UTF-8 and several violations; unknown fields skipped', () => {
    const v = [{ field: 'figures[0].year', description: 'must be a year from 1945 to 2026' },
               { field: 'decree.date', description: 'tanggal — bukan "2018-02-30"' }];
    const bytes = encodeBadRequest(v);
    assert.deepEqual(decodeBadRequest(bytes), v);
    // A varint field 7 and a fixed32 field 8 the reader does not know.
    const extra = Uint8Array.from([...bytes, 0x38, 0x96, 0x01, 0x45, 1, 2, 3, 4]);
    assert.deepEqual(decodeBadRequest(extra), v);
    assert.equal(readFields(Uint8Array.from([0x38, 0x96, 0x01]))[0].value, 150n);
});

test('protobuf: truncated or malformed bytes throw', () => {
    const bytes = encodeBadRequest([{ field: 'name', description: 'is required' }]);
    assert.throws(() => decodeBadRequest(bytes.subarray(0, bytes.length - 3)));
    assert.throws(() => readFields(Uint8Array.from([0x0b])));          // wire type 3
    assert.throws(() => readFields(Uint8Array.from([0x08, 0x80])));    // varint cut
    assert.throws(() => readFields(Uint8Array.from([0x00])));          // field 0
});

test('protobuf: base64 padded, unpadded and URL-safe', () => {
    assert.deepEqual([...base64Bytes('+/8=')], [251, 255]);
    assert.deepEqual([...base64Bytes('+/8')], [251, 255]);
    assert.deepEqual([...base64Bytes('-_8')], [251, 255]);
});

test('protobuf: ErrorInfo with metadata', () => {
    const s = (no, str) => { const b = Buffer.from(str); return [(no << 3) | 2, b.length, ...b]; };
    const entry = [...s(1, 'current_version'), ...s(2, '7')];
    const bytes = Uint8Array.from([...s(1, 'VERSION_CONFLICT'), ...s(2, 'sentra.v1'), (3 << 3) | 2, entry.length, ...entry]);
    assert.deepEqual(decodeErrorInfo(bytes), { reason: 'VERSION_CONFLICT', domain: 'sentra.v1', metadata: { current_version: '7' } });
});

test('client: a read as Connect GET, revalidated by the browser cache', async () => {
    const fetch = fakeFetch({ body: { rows: [] } });
    const api = createClient({ token: 'snt_SECRET', base: 'http://127.0.0.1:1', fetch });
    const request = { filter: { regencyCode: '18.71', text: 'kopi & "tapis"' }, groupBy: ['GROUP_BY_REGENCY'] };
    await api.call(STATS + '/GetStatistics', request);
    const [{ url, init }] = fetch.calls;
    assert.equal(init.method, 'GET');
    assert.equal(init.body, undefined);
    assert.equal(init.cache, 'no-cache');
    assert.equal(init.headers.Authorization, 'Bearer snt_SECRET');
    assert.equal(init.headers['Content-Type'], undefined);
    const u = new URL(url);
    assert.equal(u.pathname, '/sentra.v1.StatsService/GetStatistics');
    assert.equal(u.searchParams.get('connect'), 'v1');
    assert.equal(u.searchParams.get('encoding'), 'json');
    assert.deepEqual(JSON.parse(u.searchParams.get('message')), request);
    assert.ok(!url.includes('snt_'));
    assert.equal(url, getUrl('http://127.0.0.1:1', STATS + '/GetStatistics', request));
    // Writes are never GETs; the token's own scope is a read.
    for (const m of [SENTRA + '/CreateSentra', SENTRA + '/UpdateSentra', SENTRA + '/DeleteSentra', SYNC + '/PushChanges'])
        assert.ok(!READS.has(m), m);
    assert.ok(READS.has(TOKENS + '/WhoAmI'));
});

test('client: the reads are the methods the protos mark NO_SIDE_EFFECTS', async () => {
    const { readFileSync } = await import('node:fs');
    const proto = readFileSync('proto/sentra/v1/sentra.proto', 'utf8');
    const marked = new Set();
    let service = '';
    for (const m of proto.matchAll(/service (\w+)|rpc (\w+)\([^)]*\) returns \([^)]*\)\s*(\{\s*option idempotency_level = NO_SIDE_EFFECTS;)?/g)) {
        if (m[1]) service = m[1];
        else if (m[3]) marked.add(`sentra.v1.${service}/${m[2]}`);
    }
    assert.ok(marked.size >= READS.size, `only ${marked.size} methods marked`);
    for (const r of READS) assert.ok(marked.has(r), `${r} is not NO_SIDE_EFFECTS`);
});

test('client: a unary POST with the token in the Authorization header only', async () => {
    const fetch = fakeFetch({ body: { groupBy: ['GROUP_BY_REGENCY'], rows: [], total: { sentra: '73' } } });
    const api = createClient({ token: 'snt_SECRET', base: 'http://127.0.0.1:1', fetch, get: false });
    const resp = await api.call(STATS + '/GetStatistics', { groupBy: ['GROUP_BY_REGENCY'] });
    assert.equal(resp.total.sentra, '73');
    const [{ url, init }] = fetch.calls;
    assert.equal(url, 'http://127.0.0.1:1/sentra.v1.StatsService/GetStatistics');
    assert.ok(!url.includes('snt_'));
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.equal(init.headers.Authorization, 'Bearer snt_SECRET');
    assert.equal(init.headers['Connect-Protocol-Version'], '1');
    assert.match(init.headers['Connect-Timeout-Ms'], /^\d+$/);
    assert.equal(init.credentials, 'omit');
    assert.deepEqual(JSON.parse(init.body), { groupBy: ['GROUP_BY_REGENCY'] });
});

test('client: a Connect error with field violations', async () => {
    const detail = b64(encodeBadRequest([{ field: 'name', description: 'is required' },
                                         { field: 'decree.number', description: 'is required when designated or revitalised' }]));
    const fetch = fakeFetch({ status: 400, body: { code: 'invalid_argument', message: '2 invalid fields',
                                                   details: [{ type: 'google.rpc.BadRequest', value: detail }] } });
    const api = createClient({ token: 't', fetch });
    await assert.rejects(api.call(SENTRA + '/CreateSentra', { sentra: {} }), (e) => {
        assert.ok(e instanceof ApiError);
        assert.equal(e.code, 'invalid_argument');
        assert.equal(e.message, '2 invalid fields');
        assert.equal(e.httpStatus, 400);
        assert.deepEqual(e.violations.map((v) => v.field), ['name', 'decree.number']);
        return true;
    });
});

test('client: a version conflict carries the server version (ErrorInfo)', () => {
    const s = (no, str) => { const b = Buffer.from(str); return [(no << 3) | 2, b.length, ...b]; };
    const entry = [...s(1, 'current_version'), ...s(2, '12')];
    const info = b64(Uint8Array.from([...s(1, 'VERSION_CONFLICT'), (3 << 3) | 2, entry.length, ...entry]));
    const e = errorFromJson({ code: 'aborted', message: 'version conflict',
                              details: [{ type: 'google.rpc.ErrorInfo', value: info }] }, 409);
    assert.equal(e.code, 'aborted');
    assert.equal(e.currentVersion, '12');
});

test('client: a detail whose bytes do not parse falls back to its debug JSON', () => {
    const e = errorFromJson({ code: 'invalid_argument', message: 'x', details: [
        { type: 'google.rpc.BadRequest', value: '!!!', debug: { fieldViolations: [{ field: 'name', description: 'is required' }] } }] }, 400);
    assert.deepEqual(e.violations, [{ field: 'name', description: 'is required' }]);
});

test('client: errors without a Connect body follow Connect\'s HTTP mapping', async () => {
    for (const [status, code] of [[503, 'unavailable'], [401, 'unauthenticated'], [404, 'unimplemented'],
                                  [502, 'unavailable'], [500, 'unknown'], [403, 'permission_denied']]) {
        const api = createClient({ token: 't', fetch: fakeFetch({ status, type: 'text/html', body: '<h1>proxy</h1>' }) });
        await assert.rejects(api.call(STATS + '/GetStatistics', {}), (e) => e.code === code && e.httpStatus === status);
    }
    // An unknown code string is not trusted either.
    assert.equal(errorFromJson({ code: 'weird' }, 429).code, 'unavailable');
});

test('client: network failure and timeout', async () => {
    const down = createClient({ token: 't', fetch: fakeFetch(new TypeError('Failed to fetch')) });
    await assert.rejects(down.call(STATS + '/GetStatistics', {}), (e) => e.code === 'unavailable');
    const never = (url, init) => new Promise((resolve, reject) => {
        init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
    const slow = createClient({ token: 't', fetch: never, timeoutMs: 10 });
    await assert.rejects(slow.call(STATS + '/GetStatistics', {}), (e) => e.code === 'deadline_exceeded');
});

test('client: a 200 that is not JSON is an error, not data', async () => {
    const api = createClient({ token: 't', fetch: fakeFetch({ status: 200, type: 'text/html', body: '<html>' }) });
    await assert.rejects(api.call(STATS + '/GetStatistics', {}), (e) => e.code === 'internal');
});
