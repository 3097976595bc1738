// api.js: the dashboard's client of sentrad's Connect/JSON API
// (docs/PROTOCOL.md, "HTTP and JSON"). A unary call (a read may go as a
// GET instead: READS below) is
//
//   POST /sentra.v1.<Service>/<Method>
//   Content-Type: application/json, Authorization: Bearer <token>
//   body: the request message in proto3's canonical JSON mapping
//
// answered 200 with the response message, or with Connect's error JSON
// {"code": "invalid_argument", "message": "...", "details": [...]} and the
// HTTP status Connect maps that code to. Per-field errors arrive as a
// google.rpc.BadRequest detail (protobuf.js reads it).
//
// The token is sent only in the Authorization header, never in a URL.
// Nothing here touches the DOM, so node's test runner can load it.

import { base64Bytes, decodeBadRequest, decodeErrorInfo } from './protobuf.js';

export const SENTRA = 'sentra.v1.SentraService';
export const STATS = 'sentra.v1.StatsService';
export const SYNC = 'sentra.v1.SyncService';
export const TOKENS = 'sentra.v1.TokenService';

// The methods marked NO_SIDE_EFFECTS in proto/sentra/v1/*.proto: called
// with Connect's GET (?connect=v1&encoding=json&message=<the request's
// JSON>), so that the browser's cache keeps the answer with its ETag and
// asks again with If-None-Match: an unchanged answer comes back as an empty
// 304 (docs/PROTOCOL.md, HTTP and JSON). The token stays in the
// Authorization header; the request message (filters, page tokens) is in
// the address.
export const READS = new Set([
    SENTRA + '/GetSentra', SENTRA + '/ListSentra', SENTRA + '/GetRegion', SENTRA + '/ListRegions',
    STATS + '/GetStatistics', STATS + '/GetTimeSeries', TOKENS + '/WhoAmI',
]);

// Connect's codes (lower snake case, as Connect writes them).
export const CODES = [
    'canceled', 'unknown', 'invalid_argument', 'deadline_exceeded', 'not_found',
    'already_exists', 'permission_denied', 'resource_exhausted',
    'failed_precondition', 'aborted', 'out_of_range', 'unimplemented',
    'internal', 'unavailable', 'data_loss', 'unauthenticated',
];

// What Connect says a client should assume when an HTTP error carries no
// Connect error body (a proxy's page, say).
function codeForHttpStatus(status) {
    switch (status) {
    case 400: return 'internal';
    case 401: return 'unauthenticated';
    case 403: return 'permission_denied';
    case 404: return 'unimplemented';
    case 429: case 502: case 503: case 504: return 'unavailable';
    default: return 'unknown';
    }
}

// A failed call. code: one of CODES; violations: [{field, description}]
// from a BadRequest detail (empty otherwise); currentVersion: on a version
// conflict (ABORTED), the version the server holds, from an ErrorInfo
// detail ('' when not sent); details: the raw details.
export class ApiError extends Error {
    constructor(code, message, { violations = [], details = [], httpStatus = 0, currentVersion = '' } = {}) {
        super(message || code);
        this.name = 'ApiError';
        this.code = code;
        this.violations = violations;
        this.details = details;
        this.httpStatus = httpStatus;
        this.currentVersion = currentVersion;
    }
}

// Reads a Connect error body (already parsed JSON) into an ApiError.
export function errorFromJson(body, httpStatus) {
    const code = body && CODES.includes(body.code) ? body.code : codeForHttpStatus(httpStatus);
    const details = body && Array.isArray(body.details) ? body.details : [];
    const violations = [];
    let currentVersion = '';
    for (const d of details) {
        if (d && d.type === 'google.rpc.ErrorInfo') {
            try {
                const info = decodeErrorInfo(base64Bytes(d.value || ''));
                if (info.metadata.current_version) currentVersion = info.metadata.current_version;
            } catch (e) {
                const md = d.debug && d.debug.metadata;
                if (md && md.current_version) currentVersion = String(md.current_version);
            }
            continue;
        }
        if (!d || d.type !== 'google.rpc.BadRequest') continue;
        // A server may add the detail's JSON form as "debug"; the binary
        // value is the normative one.
        try {
            violations.push(...decodeBadRequest(base64Bytes(d.value || '')));
        } catch (e) {
            const fv = d.debug && (d.debug.fieldViolations || d.debug.field_violations);
            if (Array.isArray(fv))
                for (const v of fv) violations.push({ field: v.field || '', description: v.description || '' });
        }
    }
    const message = body && typeof body.message === 'string' && body.message
        ? body.message : `${code} (HTTP ${httpStatus})`;
    return new ApiError(code, message, { violations, details, httpStatus, currentVersion });
}

// The address of a Connect GET for method and request.
export function getUrl(base, method, request) {
    return `${base}/${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(request))}`;
}

// createClient({token, base, fetch, timeoutMs, get}) -> {call(method, request)}.
// get: use GET for READS (default true).
// method: "sentra.v1.StatsService/GetStatistics"; request: a plain object.
// Resolves to the response message (a plain object) or rejects with an
// ApiError (network failures are "unavailable", timeouts
// "deadline_exceeded").
export function createClient({ token, base = '', fetch: fetchFn = globalThis.fetch, timeoutMs = 30000, get = true } = {}) {
    async function call(method, request = {}, { signal } = {}) {
        const viaGet = get && READS.has(method);
        const headers = {
            'Connect-Protocol-Version': '1',
            'Connect-Timeout-Ms': String(timeoutMs),
        };
        if (!viaGet) headers['Content-Type'] = 'application/json';
        if (token) headers.Authorization = 'Bearer ' + token;
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort('timeout'), timeoutMs + 1000);
        const onAbort = () => ctl.abort('canceled');
        if (signal) signal.addEventListener('abort', onAbort);
        let res;
        try {
            res = await fetchFn(viaGet ? getUrl(base, method, request) : `${base}/${method}`, {
                method: viaGet ? 'GET' : 'POST',
                headers,
                body: viaGet ? undefined : JSON.stringify(request),
                credentials: 'omit',
                // A read is kept and revalidated (If-None-Match); a write never.
                cache: viaGet ? 'no-cache' : 'no-store',
                signal: ctl.signal,
            });
        } catch (e) {
            if (ctl.signal.aborted)
                throw new ApiError(ctl.signal.reason === 'timeout' ? 'deadline_exceeded' : 'canceled',
                                   ctl.signal.reason === 'timeout' ? 'the server did not answer in time' : 'canceled');
            throw new ApiError('unavailable', 'cannot reach the server: ' + (e && e.message ? e.message : e));
        } finally {
            clearTimeout(timer);
            if (signal) signal.removeEventListener('abort', onAbort);
        }
        const type = (res.headers.get('content-type') || '').toLowerCase();
        let body = null;
        if (type.startsWith('application/json')) {
            try {
                body = await res.json();
            } catch (e) {
                throw new ApiError(res.ok ? 'internal' : codeForHttpStatus(res.status),
                                   'the server sent JSON that does not parse', { httpStatus: res.status });
            }
        }
        if (res.ok) {
            if (body === null || typeof body !== 'object')
                throw new ApiError('internal', `unexpected answer (${type || 'no content type'})`,
                                   { httpStatus: res.status });
            return body;
        }
        throw errorFromJson(body, res.status);
    }
    return { call };
}
