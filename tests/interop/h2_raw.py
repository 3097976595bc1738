#!/usr/bin/python3
"""h2_raw.py: sentrad's HTTP/2 side against hand-made frames: what no stock
client sends on purpose (ping floods, rapid resets, broken frames and HPACK,
a client that opens streams and never reads).

Run by tests/integration/test_grpc_interop.sh with ADDR (host:port),
SENTRAD_PID and STUBS (grpcio stubs, to check that other clients are still
served). Prints "ok - ..."/"FAIL - ..." lines and "N passed, N failed".
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
from sentra.v1 import system_pb2 as Y  # noqa: E402
from sentra.v1 import system_pb2_grpc as YG  # noqa: E402

HOST, PORT = os.environ["ADDR"].rsplit(":", 1)
PORT = int(PORT)
PID = int(os.environ["SENTRAD_PID"])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - " + name)
    else:
        failed += 1
        print("FAIL - " + name)
        if detail:
            print("       " + str(detail))
    sys.stdout.flush()


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_int(v, prefix):
    mx = (1 << prefix) - 1
    if v < mx:
        return bytes([v])
    out = [mx]
    v -= mx
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def hpack(headers):
    """Literal header fields without indexing, new names, no Huffman."""
    out = b""
    for k, v in headers:
        k, v = k.encode(), v.encode()
        out += b"\x00" + hpack_int(len(k), 7) + k + hpack_int(len(v), 7) + v
    return out


def grpc_request(path, ctype="application/grpc"):
    return hpack([(":method", "POST"), (":scheme", "http"), (":path", path),
                  (":authority", "sentra"), ("content-type", ctype), ("te", "trailers")])


def connect(settings=b""):
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, settings))
    return s


def read_frames(s, until_type=None, limit=5.0):
    """Frames (type, flags, sid, payload) until one of until_type, EOF or the
    time limit."""
    frames, buf, end = [], b"", time.time() + limit
    s.settimeout(0.2)
    while time.time() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n])
            buf = buf[9 + n:]
            frames.append(f)
            if until_type is not None and f[0] == until_type:
                return frames
    return frames


def goaway_of(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big"), p[8:]
    return None


def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def served():
    ch = grpc.insecure_channel("%s:%d" % (HOST, PORT))
    try:
        return YG.SystemServiceStub(ch).Ping(Y.PingRequest(data=b"still"), timeout=10).data == b"still"
    except grpc.RpcError as e:
        print("       ping failed: %s" % e)
        return False
    finally:
        ch.close()


# ---------------------------------------------------------------- a simple call

s = connect()
s.sendall(frame(HEADERS, END_HEADERS, 1, grpc_request("/sentra.v1.SystemService/Ping")) +
          frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x04\x0a\x02hi"))
fr = read_frames(s, limit=3)
check("raw gRPC call: response HEADERS, DATA with the message, trailers",
      [t for t, _, sid, _ in fr if sid == 1] == [HEADERS, DATA, HEADERS] and
      any(t == DATA and p == b"\x00\x00\x00\x00\x04\x0a\x02hi" for t, _, sid, p in fr), fr)
# DATA frame boundaries mean nothing: the message in 1-byte frames.
msg = b"\x00\x00\x00\x00\x04\x0a\x02yo"
out = frame(HEADERS, END_HEADERS, 3, grpc_request("/sentra.v1.SystemService/Ping"))
for i, b in enumerate(msg):
    out += frame(DATA, END_STREAM if i == len(msg) - 1 else 0, 3, bytes([b]))
s.sendall(out)
fr = read_frames(s, limit=3)
check("a message split over many DATA frames", any(t == DATA and p == msg for t, _, sid, p in fr if sid == 3), fr)
s.close()

# ---------------------------------------------------------------- ping policy

s = connect()
for i in range(6):
    try:
        s.sendall(frame(PING, 0, 0, struct.pack(">Q", i)))
    except OSError:
        break      # closed after the GOAWAY
    time.sleep(0.02)
fr = read_frames(s, until_type=GOAWAY, limit=5)
acks = sum(1 for t, f, _, _ in fr if t == PING and f & ACK)
g = goaway_of(fr)
check("pings are answered", acks >= 3, acks)
check("too many pings without calls: GOAWAY(ENHANCE_YOUR_CALM, too_many_pings)",
      g is not None and g[0] == 0xb and g[1] == b"too_many_pings", g)
s.close()

# ---------------------------------------------------------------- bad input

def expect_goaway(name, payload, codes, settings=b""):
    s = connect(settings)
    try:
        s.sendall(payload)
    except OSError:
        pass
    fr = read_frames(s, until_type=GOAWAY, limit=5)
    g = goaway_of(fr)
    check(name, g is not None and g[0] in codes, g)
    s.close()


expect_goaway("DATA on stream 0: GOAWAY(PROTOCOL_ERROR)", frame(DATA, 0, 0, b"x"), (1,))
expect_goaway("broken HPACK: GOAWAY(COMPRESSION_ERROR)",
              frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\xff\xff"), (9,))
expect_goaway("even stream id from a client: GOAWAY(PROTOCOL_ERROR)",
              frame(HEADERS, END_HEADERS, 2, grpc_request("/sentra.v1.SystemService/Ping")), (1,))
expect_goaway("a SETTINGS frame of 5 bytes: GOAWAY(FRAME_SIZE_ERROR)", frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00"),
              (6,))
expect_goaway("WINDOW_UPDATE of 0 on the connection: GOAWAY(PROTOCOL_ERROR)",
              frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), (1,))
expect_goaway("a frame over SETTINGS_MAX_FRAME_SIZE: GOAWAY(FRAME_SIZE_ERROR)",
              frame(DATA, 0, 1, b"x" * 20000), (6,))
expect_goaway("garbage after the preface: GOAWAY", b"\x00" * 3 + b"\xff" * 200, (1, 6))
check("the server still serves after the bad input", served())

# ---------------------------------------------------------------- rapid reset

s = connect()
out, sid = b"", 1
for i in range(3000):
    out += frame(HEADERS, END_HEADERS, sid, grpc_request("/sentra.v1.SystemService/Sleep")) + \
        frame(RST, 0, sid, b"\x00\x00\x00\x08")
    sid += 2
try:
    s.settimeout(10)
    s.sendall(out)
except OSError:
    pass
fr = read_frames(s, until_type=GOAWAY, limit=5)
g = goaway_of(fr)
check("rapid reset (3000 HEADERS+RST_STREAM): GOAWAY", g is not None, [t for t, _, _, _ in fr][-5:])
s.close()
check("the server still serves after the rapid reset", served())

# ---------------------------------------------------------------- a client that never reads

before = rss_kb()
# Windows as large as HTTP/2 allows, so flow control does not hold the
# server back: only its own backpressure can.
s = connect(struct.pack(">HI", 4, 0x7fffffff))
s.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff - 65535)))
s.setblocking(False)
req = frame(DATA, END_STREAM, 0, b"\x00\x00\x00\x00\x00")
sent, sid, pending = 0, 1, b""
end = time.time() + 15
while sent < 20000 and time.time() < end:
    if not pending:
        batch = b""
        for _ in range(50):
            batch += frame(HEADERS, END_HEADERS, sid, grpc_request("/sentra.v1.SystemService/GetDescriptorSet"))
            batch += req[:5] + struct.pack(">I", sid) + req[9:]
            sid += 2
            sent += 1
        pending = batch
    _, w, _ = select.select([], [s], [], 0.5)
    if not w:
        if time.time() > end - 10:
            break      # the server stopped reading us
        continue
    try:
        n = s.send(pending)
        pending = pending[n:]
    except BlockingIOError:
        pass
time.sleep(1.0)
after = rss_kb()
grown = (after - before) / 1024.0
print("       requests sent: %d, VmRSS %d kB -> %d kB" % (sent, before, after))
check("a client that never reads: sentrad's memory stays bounded (grew %.1f MiB, < 48 MiB)" % grown,
      before > 0 and grown < 48, (before, after))
check("other clients are served meanwhile", served())
time.sleep(0.5)
after2 = rss_kb()
check("and memory still bounded after more time (%d kB)" % after2, (after2 - before) / 1024.0 < 48)
s.close()
time.sleep(0.5)
check("the server still serves after the non-reader left", served())

# ---------------------------------------------------------------- keepalive and idle timeout

# A server of its own with --keepalive 300 --idle-timeout 1000 (ms).
if os.environ.get("IDLE_ADDR"):
    ih, ip = os.environ["IDLE_ADDR"].rsplit(":", 1)
    # A client that never answers: the server pings it, then closes.
    s = socket.create_connection((ih, int(ip)), timeout=10)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    t0 = time.time()
    fr = read_frames(s, limit=5)
    pings = [f for f in fr if f[0] == PING and not f[1] & ACK]
    check("keepalive: the server pings a silent client", len(pings) >= 1, [f[0] for f in fr])
    check("keepalive: and closes the connection when no answer comes (%.1f s)" % (time.time() - t0),
          time.time() - t0 < 4.5 and goaway_of(fr) is None)
    s.close()
    # A client that answers pings but opens no stream: the idle timeout.
    s = socket.create_connection((ih, int(ip)), timeout=10)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    s.settimeout(0.1)
    buf, g, end = b"", None, time.time() + 5
    while g is None and time.time() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            t, f, payload = buf[3], buf[4], buf[9:9 + n]
            buf = buf[9 + n:]
            if t == PING and not f & ACK:
                s.sendall(frame(PING, ACK, 0, payload))
            elif t == GOAWAY and int.from_bytes(payload[:4], "big") & 0x7fffffff != 0x7fffffff:
                # (the first GOAWAY is the shutdown notice; this is the final one)
                g = (int.from_bytes(payload[4:8], "big"), payload[8:])
    check("idle timeout: GOAWAY(NO_ERROR, idle timeout)", g == (0, b"idle timeout"), g)
    s.close()

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
