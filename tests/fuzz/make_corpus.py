#!/usr/bin/env python3
# make_corpus.py: writes the small seed corpus under tests/fuzz/corpus/ (the
# files are committed; rerun this only to change them). Seeds are valid and
# nearly valid inputs, hand-encoded so that no build is needed.
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def varint(n):
    out = b''
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def tag(num, wt): return varint(num << 3 | wt)
def s(num, b):
    if isinstance(b, str): b = b.encode()
    return tag(num, 2) + varint(len(b)) + b
def v(num, n): return tag(num, 0) + varint(n & 0xffffffffffffffff)
def d(num, x): return tag(num, 1) + struct.pack('<d', x)

def request(method, payload=b'', timeout_ms=0, token=None, idem=None):
    m = s(1, method)
    if timeout_ms: m += v(2, timeout_ms)
    if token: m += s(3, s(1, 'authorization') + s(2, 'Bearer ' + token))
    if idem: m += s(4, idem)
    if payload: m += s(5, payload)
    return m

def frame(ftype, sid, payload=b'', flags=0, reserved=0, length=None):
    if length is None: length = len(payload)
    return struct.pack('>IBBHI', length, ftype, flags, reserved, sid) + payload

def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

# ---------------------------------------------------------------- messages

UUID = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f'
figures = s(16, v(1, 2024) + v(2, 12) + v(3, 20) + v(4, 31) + v(5, 250000000) +
            v(6, 900000000) + v(9, 'kg') + v(10, 1500) + s(11, 'SG') + s(11, 'MY')) \
    if False else s(16, v(1, 2024) + v(2, 12) + v(3, 20) + v(4, 31) + v(5, 250000000) +
                   v(6, 900000000) + s(9, 'kg') + v(10, 1500) + s(11, 'SG') + s(11, 'MY'))
sentra = (s(1, UUID) + s(2, '18.71') + s(3, '18.71.01') + s(4, '18.71.01.1001') +
          s(5, 'Jl. Pagar Alam 12') + s(6, d(1, -5.39) + d(2, 105.26)) +
          s(7, 'Sentra Keripik Pisang') + s(8, 'pisang') + s(9, 'keripik') +
          s(10, '10792') + v(11, 1) + v(12, 1) + v(13, 2) + s(14, '2019-04-01') +
          s(15, s(1, '500/123/2020') + s(2, '2020-02-03') + s(3, 'Walikota')) +
          figures + s(17, 'Ibu Sari') + s(18, '+62 812 3456'))
filt = s(1, '18') + s(2, '18.71') + tag(3, 2) + varint(2) + bytes([1, 2]) + \
    tag(4, 2) + varint(1) + bytes([1]) + s(5, '107') + v(6, 1) + s(7, 'kripik') + v(8, 1600000000000)

msgs = {
    '/sentra.v1.Health/Check': b'',
    '/sentra.v1.SystemService/Ping': s(1, b'hello'),
    '/sentra.v1.SystemService/GetDescriptorSet': b'',
    '/sentra.v1.SystemService/Sleep': v(1, 10),
    '/sentra.v1.SentraService/CreateSentra': s(1, sentra),
    '/sentra.v1.SentraService/GetSentra': s(1, UUID),
    '/sentra.v1.SentraService/UpdateSentra': s(1, sentra) + s(2, 'name') + s(2, 'decree') + v(3, 3),
    '/sentra.v1.SentraService/DeleteSentra': s(1, UUID) + v(2, 4),
    '/sentra.v1.SentraService/ListSentra': s(1, filt) + v(2, 1) + v(3, 1) + v(4, 50) + v(6, 1),
    '/sentra.v1.SentraService/GetRegion': s(1, '18.71'),
    '/sentra.v1.SentraService/ListRegions': s(1, '18') + v(2, 3) + v(3, 100),
    '/sentra.v1.StatsService/GetStatistics': s(1, filt) + v(2, 1) + v(2, 4) + v(3, 2024) + s(4, '2024-12-31'),
    '/sentra.v1.StatsService/GetTimeSeries': s(1, filt) + v(2, 2015) + v(3, 2024),
    '/sentra.v1.SyncService/PullChanges': s(1, 'abc') + v(2, 500) + s(3, filt) + v(4, 1000),
    '/sentra.v1.SyncService/PushChanges': s(1, 'tablet-7') + s(2, s(1, 'm1') + v(2, 1) + s(3, sentra) + v(4, 0)) +
        s(2, s(1, 'm2') + v(2, 2) + s(3, s(1, UUID)) + v(4, 5)) + v(3, 1),
    '/sentra.v1.TokenService/CreateToken': v(1, 1) + s(2, '18.71') + s(3, 'Dinas Bandar Lampung'),
    '/sentra.v1.TokenService/ListTokens': b'',
    '/sentra.v1.TokenService/RevokeToken': s(1, UUID),
}

# ---------------------------------------------------------------- frame

ping_req = request('/sentra.v1.SystemService/Ping', s(1, b'x'), 1000, 'tok')
frames = {
    'request': frame(1, 1, ping_req),
    'ping': frame(4, 0, b'12345678'),
    'pong': frame(5, 0, b''),
    'cancel': frame(3, 7),
    'goaway': frame(6, 0, v(1, 3) + v(2, 14) + s(3, 'bye')),
    'response': frame(2, 9, v(1, 5) + s(2, 'no such sentra')),
    'many': frame(1, 1, ping_req) + frame(4, 0, b'') + frame(1, 2, ping_req) + frame(3, 2) + frame(1, 3, b''),
    'truncated': frame(1, 1, ping_req)[:20],
    'huge': frame(1, 1, length=0x7fffffff),
    'negative': frame(1, 1, length=0xffffffff),
    'reserved': frame(1, 1, ping_req, reserved=1),
    'flags': frame(1, 1, ping_req, flags=0xff),
    'type0': frame(0, 1),
    'type7': frame(7, 1),
    'stream0': frame(1, 0, ping_req),
    'pingstream': frame(4, 5, b''),
    'bigping': frame(4, 0, b'p' * 65),
    'garbage': b'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
}
for i, (name, data) in enumerate(sorted(frames.items())):
    # First byte: the maximum payload selector (see fuzz_frame.c).
    write('frame', name, bytes([7 if name not in ('huge', 'negative') else i % 10]) + data)
write('frame', 'small-max', bytes([3]) + frame(1, 1, ping_req))

# ---------------------------------------------------------------- request

for i, (method, payload) in enumerate(msgs.items()):
    name = method.split('/')[-1].lower()
    write('request', name, request(method, payload, 5000, 'secret-token', 'idem-%d' % i))
write('request', 'unknown-method', request('/sentra.v1.Nope/Nothing', b'\x08\x01'))
write('request', 'bad-payload', request('/sentra.v1.SentraService/GetSentra', b'\xff\xff\xff'))
write('request', 'empty', b'')
write('request', 'metadata', s(1, '/sentra.v1.SystemService/Ping') +
      s(3, s(1, 'Authorization') + s(2, 'bearer ')) + s(3, s(1, 'x-trace') + s(2, 'abc')) + s(3, b''))

# ---------------------------------------------------------------- validate

# The first byte picks the request type: its index in fuzz_validate.c's
# request_types, which follows the order of msgs above.
import shutil
shutil.rmtree(os.path.join(HERE, 'corpus', 'validate'), ignore_errors=True)
for i, (method, payload) in enumerate(msgs.items()):
    name = method.split('/')[-1].lower()
    write('validate', name, bytes([i]) + payload)

# ---------------------------------------------------------------- h2

# What a client sends after the HTTP/2 preface (fuzz_h2.c adds it); the
# first byte picks the read size (0: all at once). HPACK: literal fields
# without indexing, no Huffman.
def h2frame(ftype, flags, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([ftype, flags]) + struct.pack('>I', sid) + payload

def hpack(headers):
    out = b''
    for k, val in headers:
        k, val = k.encode(), val.encode()
        out += b'\x00' + bytes([len(k)]) + k + bytes([len(val)]) + val
    return out

def grpc_headers(path, extra=(), ctype='application/grpc'):
    return hpack([(':method', 'POST'), (':scheme', 'http'), (':path', path), (':authority', 'x'),
                  ('content-type', ctype), ('te', 'trailers')] + list(extra))

def gmsg(payload, flag=0):
    return bytes([flag]) + struct.pack('>I', len(payload)) + payload

SETTINGS = h2frame(4, 0, 0)
def call(sid, path, payload=b'', extra=(), end=True, ctype='application/grpc'):
    return h2frame(1, 4, sid, grpc_headers(path, extra, ctype)) + h2frame(0, 1 if end else 0, sid, gmsg(payload))

h2 = {
    'ping-call': SETTINGS + call(1, '/sentra.v1.SystemService/Ping', s(1, 'hi')),
    'two-calls': SETTINGS + call(1, '/sentra.v1.SystemService/Ping') + call(3, '/grpc.health.v1.Health/Check'),
    'descriptor': SETTINGS + call(1, '/sentra.v1.SystemService/GetDescriptorSet'),
    'needs-db': SETTINGS + call(1, '/sentra.v1.SentraService/GetSentra', s(1, 'abc'),
                                [('authorization', 'Bearer snt_abc'), ('grpc-timeout', '100m')]),
    'watch-reset': SETTINGS + call(1, '/grpc.health.v1.Health/Watch') + h2frame(3, 0, 1, b'\x00\x00\x00\x08'),
    'reflection': SETTINGS + call(1, '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
                                  s(7, '*'), end=False) +
                  h2frame(0, 0, 1, gmsg(s(4, 'sentra.v1.SentraService'))) +
                  h2frame(0, 1, 1, gmsg(s(3, 'sentra/v1/system.proto'))),
    'two-messages': SETTINGS + h2frame(1, 4, 1, grpc_headers('/sentra.v1.SystemService/Ping')) +
                    h2frame(0, 1, 1, gmsg(b'') + gmsg(b'')),
    'too-big': SETTINGS + h2frame(1, 4, 1, grpc_headers('/sentra.v1.SystemService/Ping')) +
               h2frame(0, 0, 1, b'\x00\x7f\xff\xff\xff'),
    'compressed': SETTINGS + call(1, '/sentra.v1.SystemService/Ping', b'', [('grpc-encoding', 'gzip')]),
    'not-grpc': SETTINGS + call(1, '/x', b'', ctype='text/plain'),
    'pings': SETTINGS + b''.join(h2frame(6, 0, 0, struct.pack('>Q', i)) for i in range(5)),
    'bad-hpack': SETTINGS + h2frame(1, 5, 1, b'\xff\xff\xff\xff'),
    'window': SETTINGS + h2frame(8, 0, 0, struct.pack('>I', 0x7fffffff - 65535)) +
              call(1, '/sentra.v1.SystemService/GetDescriptorSet'),
    'goaway': SETTINGS + call(1, '/sentra.v1.SystemService/Ping') + h2frame(7, 0, 0, b'\x00' * 8),
    'empty': b'',
}
for i, (name, data) in enumerate(sorted(h2.items())):
    write('h2', name, bytes([0 if i % 3 == 0 else (7 if i % 3 == 1 else 1)]) + data)
