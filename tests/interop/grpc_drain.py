#!/usr/bin/python3
"""grpc_drain.py: a graceful stop (SIGTERM) seen by a stock gRPC client
(Python grpcio): health Watch turns NOT_SERVING, a call in flight finishes,
new calls are refused, and the server exits.

Run by tests/integration/test_grpc_interop.sh against a server of its own
(ADDR, SENTRAD_PID, STUBS). Prints "ok - ..."/"FAIL - ..." lines and
"N passed, N failed".
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
from sentra.v1 import system_pb2 as Y  # noqa: E402
from sentra.v1 import system_pb2_grpc as YG  # noqa: E402

ADDR = os.environ["ADDR"]
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


ch = grpc.insecure_channel(ADDR)
health = health_pb2_grpc.HealthStub(ch)
system = YG.SystemServiceStub(ch)

watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
first = next(watch)
check("Watch: SERVING before the stop", first.status == health_pb2.HealthCheckResponse.SERVING, first)
inflight = system.Sleep.future(Y.SleepRequest(ms=1500), timeout=30)
time.sleep(0.3)
os.kill(PID, signal.SIGTERM)
t0 = time.time()
try:
    second = next(watch)
    check("Watch: NOT_SERVING during the drain", second.status == health_pb2.HealthCheckResponse.NOT_SERVING, second)
except grpc.RpcError as e:
    check("Watch: NOT_SERVING during the drain", False, e)
try:
    next(watch)
    check("Watch: the stream ends", False)
except grpc.RpcError as e:
    check("Watch: the stream ends with UNAVAILABLE", e.code() == grpc.StatusCode.UNAVAILABLE, e)
except StopIteration:
    check("Watch: the stream ends with UNAVAILABLE", False, "ended OK")
try:
    inflight.result(timeout=20)
    check("a call in flight at SIGTERM finishes OK", True)
except grpc.RpcError as e:
    check("a call in flight at SIGTERM finishes OK", False, e)

ch2 = grpc.insecure_channel(ADDR)
try:
    YG.SystemServiceStub(ch2).Ping(Y.PingRequest(data=b"late"), timeout=3)
    check("a new call after the stop is refused", False, "it was served")
except grpc.RpcError as e:
    check("a new call after the stop is refused (UNAVAILABLE)", e.code() == grpc.StatusCode.UNAVAILABLE, e)

end = time.time() + 15
while time.time() < end:
    try:
        os.kill(PID, 0)
    except ProcessLookupError:
        break
    if open("/proc/%d/stat" % PID).read().split(")")[-1].split()[0] == "Z":
        break
    time.sleep(0.1)
check("the server exits after the drain (%.1f s)" % (time.time() - t0), time.time() < end)
ch.close()
ch2.close()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
