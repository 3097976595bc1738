#!/usr/bin/python3
"""grpc_tls.py: sentrad's TLS against a stock gRPC client, Python grpcio
(Debian python3-grpcio) in its secure mode (grpc.ssl_channel_credentials):
ALPN h2 chosen by the handshake, a chain through an intermediate CA,
calls with and without a token, a server stream, mutual TLS with and
without a client certificate and with one from another CA, and the
client refusing a certificate for the wrong name or from an unknown CA.

Run by tests/integration/test_tls.sh, which passes (environment): ADDR
host:port of a TLS server (server certificate for localhost, 127.0.0.1),
MTLS_ADDR of one requiring client certificates, WRONG_ADDR of one whose
certificate names sentra.invalid, PKI the directory of tests/lib/tls_pki.sh,
TOKEN a province (18) token valid on the ADDR server, MTLS_TOKEN one valid
on the MTLS_ADDR server, STUBS (generated stubs). Prints one line per
check, ends with "N passed, N failed".
"""
import os
import sys

sys.path.insert(0, os.environ["STUBS"])

import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
from sentra.v1 import sentra_pb2 as S  # noqa: E402
from sentra.v1 import sentra_pb2_grpc as SG  # noqa: E402
from sentra.v1 import system_pb2 as Y  # noqa: E402
from sentra.v1 import system_pb2_grpc as YG  # noqa: E402

PKI = os.environ["PKI"]
ADDR = os.environ["ADDR"]
MTLS_ADDR = os.environ["MTLS_ADDR"]
WRONG_ADDR = os.environ["WRONG_ADDR"]
TOKEN = os.environ["TOKEN"]
MTLS_TOKEN = os.environ["MTLS_TOKEN"]

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


def read(name):
    with open(os.path.join(PKI, name), "rb") as f:
        return f.read()


def creds(ca="ca.pem", cert=None):
    if cert is None:
        return grpc.ssl_channel_credentials(root_certificates=read(ca))
    return grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(cert + ".key"),
                                        certificate_chain=read(cert + ".pem"))


def channel(addr, c, name=None):
    # The address is 127.0.0.1: the certificate carries that IP as well as
    # "localhost". A name override is how a test points at another name.
    opts = [("grpc.ssl_target_name_override", name)] if name else []
    return grpc.secure_channel(addr, c, options=opts)


def failure(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e
    return None


auth = (("authorization", "Bearer " + TOKEN),)

# ---------------------------------------------------------------- a secure channel

ch = channel(ADDR, creds())
system = YG.SystemServiceStub(ch)
r = system.Ping(Y.PingRequest(data=b"tls"), timeout=10)
check("secure channel: SystemService/Ping", r.data == b"tls", r)
health = health_pb2_grpc.HealthStub(ch)
r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
check("secure channel: grpc.health.v1.Health/Check", r.status == health_pb2.HealthCheckResponse.SERVING, r)
sentra = SG.SentraServiceStub(ch)
rec = S.Sentra(regency_code="18.71", name="Sentra TLS gRPC", commodity="kopi", main_product="kopi",
               kbli_code="10761", kbli_version=S.KBLI_VERSION_2020, sector_group=S.SECTOR_GROUP_FOOD,
               status=S.STATUS_FORMED, formed_on="2022-02-02")
made = sentra.CreateSentra(S.CreateSentraRequest(sentra=rec), metadata=auth, timeout=10)
got = sentra.GetSentra(S.GetSentraRequest(id=made.id), metadata=auth, timeout=10)
check("secure channel: CreateSentra then GetSentra with a token", got.name == "Sentra TLS gRPC", got)
e = failure(lambda: sentra.GetSentra(S.GetSentraRequest(id=made.id), timeout=10))
check("secure channel: no token is still UNAUTHENTICATED", e is not None and e.code() == grpc.StatusCode.UNAUTHENTICATED,
      e)
w = health.Watch(health_pb2.HealthCheckRequest(service=""))
first = next(w)
check("secure channel: a server stream (Health/Watch)", first.status == health_pb2.HealthCheckResponse.SERVING)
w.cancel()
# Many calls on one channel: one connection, one handshake.
ok = all(system.Ping(Y.PingRequest(data=bytes([i])), timeout=10).data == bytes([i]) for i in range(200))
check("secure channel: 200 calls in a row", ok)
big = system.Ping(Y.PingRequest(data=b"x" * 60), timeout=10)
check("secure channel: a larger message", big.data == b"x" * 60)
ch.close()

# ---------------------------------------------------------------- the client refuses

e = failure(lambda: YG.SystemServiceStub(channel(ADDR, creds("rogue-ca.pem"))).Ping(Y.PingRequest(), timeout=10))
check("unknown CA: grpcio refuses the server (UNAVAILABLE)", e is not None and e.code() == grpc.StatusCode.UNAVAILABLE,
      e)
e = failure(lambda: YG.SystemServiceStub(channel(WRONG_ADDR, creds())).Ping(Y.PingRequest(), timeout=10))
check("a certificate for another name: grpcio refuses it", e is not None and e.code() == grpc.StatusCode.UNAVAILABLE,
      e)
r = YG.SystemServiceStub(channel(WRONG_ADDR, creds(), "sentra.invalid")).Ping(Y.PingRequest(data=b"n"), timeout=10)
check("... and accepts it under the name it carries", r.data == b"n")
e = failure(lambda: YG.SystemServiceStub(grpc.insecure_channel(ADDR)).Ping(Y.PingRequest(), timeout=10))
check("plaintext gRPC still served beside TLS (no --tls-only)", e is None, e)

# ---------------------------------------------------------------- mutual TLS

mauth = (("authorization", "Bearer " + MTLS_TOKEN),)
ms = SG.SentraServiceStub(channel(MTLS_ADDR, creds(cert="client")))
my = YG.SystemServiceStub(channel(MTLS_ADDR, creds(cert="client")))
r = my.Ping(Y.PingRequest(data=b"m"), timeout=10)
check("mutual TLS with a client certificate: Ping", r.data == b"m", r)
e = failure(lambda: ms.ListSentra(S.ListSentraRequest(), timeout=10))
check("mutual TLS: the certificate does not stand in for the token (UNAUTHENTICATED)",
      e is not None and e.code() == grpc.StatusCode.UNAUTHENTICATED, e)
r = ms.ListSentra(S.ListSentraRequest(), metadata=mauth, timeout=10)
check("mutual TLS: certificate and token together", r is not None)
e = failure(lambda: YG.SystemServiceStub(channel(MTLS_ADDR, creds())).Ping(Y.PingRequest(), timeout=10))
check("mutual TLS without a client certificate: refused", e is not None and e.code() == grpc.StatusCode.UNAVAILABLE,
      e)
e = failure(lambda: YG.SystemServiceStub(channel(MTLS_ADDR, creds(cert="rogue-client"))).Ping(Y.PingRequest(),
                                                                                             timeout=10))
check("mutual TLS with a certificate from another CA: refused",
      e is not None and e.code() == grpc.StatusCode.UNAVAILABLE, e)
e = failure(lambda: YG.SystemServiceStub(grpc.insecure_channel(MTLS_ADDR)).Ping(Y.PingRequest(), timeout=10))
check("mutual TLS: plaintext refused", e is not None and e.code() == grpc.StatusCode.UNAVAILABLE, e)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
