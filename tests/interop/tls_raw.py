#!/usr/bin/python3
"""tls_raw.py: sentrad's TLS layer against Python's ssl module, and bytes made
by hand around it.

Run by tests/integration/test_tls.sh, which passes (environment): ADDR
host:port of a server with TLS (plaintext allowed too), CA the root CA file,
LOG the server's log file, STALL_ADDR host:port of a server started with a
short --tls-handshake-timeout (STALL_MS), SENTRAD_PID. Prints "ok - ..." or
"FAIL - ..." per check and ends with "N passed, N failed".

  - the native protocol over TLS with ALPN sentra/1, without ALPN, and with
    an ALPN list naming none of ours (both sniffed, as in plaintext);
  - a TLS 1.2 session resumed from its ticket;
  - garbage that starts like a TLS record, and garbage inside an
    established session: the connection is closed, a line is logged;
  - half a ClientHello, then silence: closed at the handshake deadline;
  - a close_notify from the client ends the connection cleanly.
"""
import os
import socket
import ssl
import struct
import sys
import time

HOST, PORT = os.environ["ADDR"].rsplit(":", 1)
PORT = int(PORT)
CA = os.environ["CA"]
LOG = os.environ["LOG"]
SHOST, SPORT = os.environ["STALL_ADDR"].rsplit(":", 1)
SPORT = int(SPORT)
STALL_MS = int(os.environ["STALL_MS"])
PID = int(os.environ["SENTRAD_PID"])

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


def ctx(alpn=None, version=None):
    c = ssl.create_default_context(cafile=CA)
    if alpn is not None:
        c.set_alpn_protocols(alpn)
    if version is not None:
        c.minimum_version = c.maximum_version = version
    return c


def native_ping(s, payload=b"tls!"):
    """Sends a native PING frame, returns the PONG's payload (or None)."""
    s.sendall(struct.pack(">IBBHI", len(payload), 4, 0, 0, 0) + payload)
    buf = b""
    s.settimeout(10)
    try:
        while len(buf) < 12 + len(payload):
            d = s.recv(4096)
            if not d:
                return None
            buf += d
    except (OSError, ssl.SSLError):
        return None
    length, ftype = struct.unpack(">IB", buf[:5])
    return buf[12:12 + length] if ftype == 5 else None


def log_has(text, since):
    """Whether the server log got a line containing text after offset since."""
    deadline = time.time() + 5
    while time.time() < deadline:
        with open(LOG, "rb") as f:
            f.seek(since)
            if text.encode() in f.read():
                return True
        time.sleep(0.05)
    return False


def log_size():
    return os.path.getsize(LOG)


def closed_within(sock, seconds):
    """Reads until EOF or reset; returns the seconds it took, or None."""
    t0 = time.time()
    sock.settimeout(seconds)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return time.time() - t0
    except (ConnectionResetError, BrokenPipeError):
        return time.time() - t0
    except socket.timeout:
        return None


# ---------------------------------------------------------------- protocols by ALPN

for alpn, want in ((["sentra/1"], "sentra/1"), (None, None), (["x-unknown/9"], None),
                   (["h2", "sentra/1"], "h2")):
    s = ctx(alpn).wrap_socket(socket.create_connection((HOST, PORT)), server_hostname="localhost")
    got = s.selected_alpn_protocol()
    check("ALPN %s: the server selects %s" % (alpn, want), got == want, got)
    if want != "h2":
        pong = native_ping(s)
        check("ALPN %s: a native PING over TLS gets its PONG" % alpn, pong == b"tls!", pong)
    s.close()

# ---------------------------------------------------------------- resumption

for version, name in ((ssl.TLSVersion.TLSv1_2, "TLS 1.2"), (ssl.TLSVersion.TLSv1_3, "TLS 1.3")):
    c = ctx(["sentra/1"], version)
    s = c.wrap_socket(socket.create_connection((HOST, PORT)), server_hostname="localhost")
    native_ping(s)  # a round trip: TLS 1.3 tickets come after the handshake
    sess = s.session
    s.close()
    s = c.wrap_socket(socket.create_connection((HOST, PORT)), server_hostname="localhost", session=sess)
    check("%s: the session is resumed from its ticket" % name, s.session_reused, s.version())
    check("%s: a resumed session serves" % name, native_ping(s) == b"tls!")
    s.close()

# ---------------------------------------------------------------- garbage

mark = log_size()
raw = socket.create_connection((HOST, PORT))
raw.sendall(b"\x16\x03\x01\x00\x2cthis is not a client hello at all, not at all")
check("garbage after a TLS record header: the connection is closed", closed_within(raw, 10) is not None)
raw.close()
check("garbage after a TLS record header: a line is logged", log_has("event=tls_handshake_failed", mark))

mark = log_size()
raw = socket.create_connection((HOST, PORT))
raw.sendall(b"\x16" + os.urandom(3000))
check("random bytes after 0x16: the connection is closed", closed_within(raw, 10) is not None)
raw.close()

# Inside an established session: a record that does not authenticate.
mark = log_size()
s = ctx(["sentra/1"]).wrap_socket(socket.create_connection((HOST, PORT)), server_hostname="localhost")
native_ping(s)
fd = socket.socket(fileno=os.dup(s.fileno()))
fd.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
check("a forged record inside TLS: the connection is closed", closed_within(fd, 10) is not None)
fd.close()
s.close()
check("a forged record inside TLS: a line is logged", log_has("event=tls_error", mark))

# A close_notify from the client.
s = ctx(["sentra/1"]).wrap_socket(socket.create_connection((HOST, PORT)), server_hostname="localhost")
native_ping(s)
raw = s.unwrap()  # sends close_notify, waits for the server's
check("close_notify: the server answers it and closes", closed_within(raw, 10) is not None)
raw.close()

# ---------------------------------------------------------------- a stalled handshake

# A real ClientHello, made by a memory BIO, of which only half is sent.
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx(["sentra/1"]).wrap_bio(incoming, outgoing, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
mark = log_size()
raw = socket.create_connection((SHOST, SPORT))
raw.sendall(hello[:len(hello) // 2])
took = closed_within(raw, STALL_MS / 1000 + 15)
raw.close()
check("half a ClientHello, then silence: closed", took is not None)
check("... not before the deadline (%d ms)" % STALL_MS, took is not None and took >= STALL_MS / 1000 * 0.9,
      took)
check("... and a line is logged", log_has("event=tls_handshake_timeout", mark))

# A client that sends nothing at all after connecting gets the same deadline?
# No: it has not started TLS; the idle timeout covers it (as in plaintext).

try:
    os.kill(PID, 0)
    alive = True
except OSError:
    alive = False
check("sentrad survived", alive)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
