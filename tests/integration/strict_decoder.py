"""strict_decoder.py: every answer sentrad gives to hostile names and
masks decodes in a strict protobuf implementation (issue 13, item 14).

Python's protobuf (Debian's python3-protobuf, its C++ implementation)
refuses a whole message when a string field holds bytes that are not UTF-8;
protobuf-c, which sentrad and its client library use, does not check. So a
Response.message cut in the middle of a character, or echoing a client's
bytes, passes our own tests and breaks a Python or C++ client. This script
speaks the native framing over a plain socket (docs/PROTOCOL.md), with
messages generated from proto/ by protoc --python_out (the caller passes
their directory), and decodes every RESPONSE with Response.FromString.

usage: strict_decoder.py HOST:PORT TOKEN PYDIR
Prints "ok - ..." / "FAIL - ..." lines, then "N passed, N failed".
"""
import socket
import struct
import sys

addr, token, pydir = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, pydir)

from google.protobuf.message import DecodeError  # noqa: E402
from sentra.v1 import rpc_pb2, sentra_pb2  # noqa: E402

HOST, PORT = addr.rsplit(":", 1)
REQUEST, RESPONSE, PING, PONG = 1, 2, 4, 5
passed = failed = 0


def report(ok, name, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   - " + name)
    else:
        failed += 1
        print("FAIL - " + name + (": " + why if why else ""))


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def call(method, payload=b"", auth=True):
    """Sends one request (method given as bytes: it may be anything) and
    returns the RESPONSE payload, undecoded."""
    req = rpc_pb2.Request()
    req.timeout_ms = 10000
    req.payload = payload
    if auth:
        md = req.metadata.add()
        md.key = "authorization"
        md.value = "Bearer " + token
    # The method field as raw bytes: the generated setter would refuse
    # what is not UTF-8, which is exactly what a hostile client sends.
    body = req.SerializeToString() + b"\x0a" + encode_varint(len(method)) + method
    sock = socket.create_connection((HOST, int(PORT)), timeout=20)
    try:
        sock.sendall(struct.pack(">IBBHI", len(body), REQUEST, 0, 0, 1) + body)
        while True:
            length, ftype, _, _, _ = struct.unpack(">IBBHI", read_exact(sock, 12))
            data = read_exact(sock, length)
            if ftype == PING:
                sock.sendall(struct.pack(">IBBHI", length, PONG, 0, 0, 0) + data)
                continue
            if ftype != RESPONSE:
                raise ValueError("frame type %d" % ftype)
            return data
    finally:
        sock.close()


def encode_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def strict(name, data, want_code):
    try:
        r = rpc_pb2.Response.FromString(data)
    except DecodeError as e:
        report(False, name, "the strict decoder refused the answer: %s" % e)
        return None
    report(r.code == want_code, name, "code %d, want %d (%s)" % (r.code, want_code, r.message))
    return r


UNIMPLEMENTED, INVALID_ARGUMENT = 12, 3
ea = "\u00e9".encode()

# Method names cut by bytes split a character; bytes that are not UTF-8
# were echoed; so were terminal escapes.
strict("a long method name of é", call(b"/sentra.v1.SentraService/" + ea * 150), UNIMPLEMENTED)
for n in range(95, 101):
    data = call(b"/sentra.v1.S/" + b"a" * (n % 2) + ea * n)
    strict("a name of %d é after %d ASCII" % (n, 13 + n % 2), data, UNIMPLEMENTED)
strict("a method name that is not UTF-8", call(b"/sentra.v1.\xff\xfe\xc3(/X"), UNIMPLEMENTED)
r = strict("a method name with escapes", call(b"/x/\x1b[2J\x07"), UNIMPLEMENTED)
if r is not None:
    report("\x1b" not in r.message, "escapes not echoed", repr(r.message))

# Update masks: a path cut at 64 bytes inside a character, one that is not
# UTF-8 (sent as raw bytes inside UpdateSentraRequest).
upd = sentra_pb2.UpdateSentraRequest()
upd.sentra.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b"
upd.expected_version = 1
body = upd.SerializeToString()
for path in (b"a" + ea * 40, b"\xc3(\xff", ea * 31 + b"abc"):
    body += b"\x12" + encode_varint(len(path)) + path
r = strict("update mask paths of é and bad bytes",
           call(b"/sentra.v1.SentraService/UpdateSentra", body), INVALID_ARGUMENT)
if r is not None:
    fields = sorted(v.field for v in r.violations)
    report(fields == ["update_mask[0]", "update_mask[1]", "update_mask[2]"],
           "one violation per path", repr(fields))

# A name of 300 é in a record: its violation (too long) must decode too.
cr = sentra_pb2.CreateSentraRequest()
cr.sentra.name = "\u00e9" * 300
cr.sentra.regency_code = "18.71"
strict("a record with a long name", call(b"/sentra.v1.SentraService/CreateSentra",
                                         cr.SerializeToString()), INVALID_ARGUMENT)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
