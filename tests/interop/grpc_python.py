#!/usr/bin/python3
"""grpc_python.py: sentrad against a stock gRPC client, Python grpcio (Debian
python3-grpcio), with stubs generated from proto/ at test time.

Run by tests/integration/test_grpc_interop.sh, which starts the server and
passes (environment): ADDR host:port, ADMIN an admin token secret, DB the
database conninfo, PSQL, STUBS (the generated stubs' directory), SENTRAD_PID.
Prints one "ok - ..." or "FAIL - ..." line per check and ends with
"N passed, N failed".
"""
import base64
import os
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.environ["STUBS"])

import grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
from sentra.v1 import sentra_pb2 as S  # noqa: E402
from sentra.v1 import sentra_pb2_grpc as SG  # noqa: E402
from sentra.v1 import system_pb2 as Y  # noqa: E402
from sentra.v1 import system_pb2_grpc as YG  # noqa: E402

ADDR = os.environ["ADDR"]
ADMIN = os.environ["ADMIN"]
DB = os.environ["DB"]
PSQL = os.environ.get("PSQL", "psql")

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


def sql(q):
    return subprocess.run([PSQL, "-X", "-Atq", "-d", DB, "-c", q], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def auth(token):
    return (("authorization", "Bearer " + token),)


def err_of(fn):
    """Runs fn; returns the grpc.RpcError it raised, or None."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    return None


def trailer(e, key):
    for k, v in e.trailing_metadata() or ():
        if k == key:
            return v
    return None


def violations(e):
    """The google.rpc.BadRequest field violations in grpc-status-details-bin."""
    raw = trailer(e, "grpc-status-details-bin")
    if raw is None:
        return None
    st = status_pb2.Status.FromString(raw)
    out = []
    for d in st.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            out += [(v.field, v.description) for v in br.field_violations]
    return st.code, out


def sleeping():
    return int(sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
                   "AND state = 'active'") or "0")


def wait_no_sleep(limit=5.0):
    end = time.time() + limit
    while time.time() < end:
        if sleeping() == 0:
            return True
        time.sleep(0.1)
    return False


ch = grpc.insecure_channel(ADDR)
system = YG.SystemServiceStub(ch)
shealth = YG.HealthStub(ch)
health = health_pb2_grpc.HealthStub(ch)
sentra = SG.SentraServiceStub(ch)
stats = SG.StatsServiceStub(ch)
sync = SG.SyncServiceStub(ch)
tokens = SG.TokenServiceStub(ch)

# ---------------------------------------------------------------- public methods

r = system.Ping(Y.PingRequest(data=b"\x00\x01halo"), timeout=10)
check("SystemService/Ping echoes bytes", r.data == b"\x00\x01halo", r)
r = shealth.Check(Y.HealthCheckRequest(), timeout=10)
check("sentra.v1.Health/Check serving", r.status == Y.SERVING_STATUS_SERVING and r.version, r)
r = system.GetDescriptorSet(Y.GetDescriptorSetRequest(), timeout=10)
check("SystemService/GetDescriptorSet lists methods",
      "/sentra.v1.SentraService/GetSentra" in r.methods and len(r.file_descriptor_set) > 1000)
r = system.Sleep(Y.SleepRequest(ms=10), timeout=10)
check("SystemService/Sleep (debug) answers", r is not None)
r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
check("grpc.health.v1.Health/Check('') SERVING", r.status == health_pb2.HealthCheckResponse.SERVING, r)
r = health.Check(health_pb2.HealthCheckRequest(service="sentra.v1.SentraService"), timeout=10)
check("grpc.health.v1.Health/Check(service) SERVING", r.status == health_pb2.HealthCheckResponse.SERVING, r)
e = err_of(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10))
check("Health/Check unknown service NOT_FOUND", e is not None and e.code() == grpc.StatusCode.NOT_FOUND, e)
w = health.Watch(health_pb2.HealthCheckRequest(service=""))
first = next(w)
check("Health/Watch sends the status at once", first.status == health_pb2.HealthCheckResponse.SERVING, first)
w.cancel()
w = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=30)
first = next(w)
check("Health/Watch unknown service SERVICE_UNKNOWN",
      first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN, first)
w.cancel()
try:
    next(w)
    check("Health/Watch cancelled by the client", False)
except grpc.RpcError as ex:
    check("Health/Watch cancelled by the client", ex.code() == grpc.StatusCode.CANCELLED, ex)

# ---------------------------------------------------------------- tokens

r = tokens.CreateToken(S.CreateTokenRequest(role=S.ROLE_PROVINCE, region_code="18", label="interop py"),
                       metadata=auth(ADMIN), timeout=10)
PROV = r.secret
check("TokenService/CreateToken (admin)", PROV.startswith("snt_") and r.token.id, r)
PROV_ID = r.token.id
r = tokens.CreateToken(S.CreateTokenRequest(role=S.ROLE_DISTRICT, region_code="18.72", label="interop py d"),
                       metadata=auth(ADMIN), timeout=10)
DIST, DIST_ID = r.secret, r.token.id
r = tokens.ListTokens(S.ListTokensRequest(), metadata=auth(ADMIN), timeout=10)
check("TokenService/ListTokens", any(t.id == PROV_ID for t in r.tokens))

# ---------------------------------------------------------------- records

def record(name, regency="18.71"):
    return S.Sentra(
        regency_code=regency, name=name, commodity="keripik pisang", main_product="keripik",
        kbli_code="10794", kbli_version=S.KBLI_VERSION_2020, sector_group=S.SECTOR_GROUP_FOOD,
        status=S.STATUS_FORMED, formed_on="2021-03-01",
        figures=[S.Figures(year=2023, business_units=12, workers_male=20, workers_female=25,
                           investment=150000000, production_value=900000000)])


md = auth(PROV)
created = sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra gRPC Python Way Halim")),
                              metadata=md, timeout=10)
check("SentraService/CreateSentra", created.id and created.version == 1, created)
ID = created.id
got = sentra.GetSentra(S.GetSentraRequest(id=ID), metadata=md, timeout=10)
check("SentraService/GetSentra", got.name == "Sentra gRPC Python Way Halim" and got.province_code == "18", got)
upd = sentra.UpdateSentra(S.UpdateSentraRequest(sentra=S.Sentra(id=ID, name="Sentra gRPC Python Baru"),
                                                update_mask=["name"], expected_version=1),
                          metadata=md, timeout=10)
check("SentraService/UpdateSentra", upd.version == 2 and upd.name == "Sentra gRPC Python Baru", upd)
lst = sentra.ListSentra(S.ListSentraRequest(filter=S.SentraFilter(text="gRPC Python"), include_total=True),
                        metadata=md, timeout=10)
check("SentraService/ListSentra", lst.total >= 1 and any(s.id == ID for s in lst.sentra), lst.total)
reg = sentra.GetRegion(S.GetRegionRequest(code="18.71"), metadata=md, timeout=10)
check("SentraService/GetRegion", reg.code == "18.71" and reg.name, reg)
regs = sentra.ListRegions(S.ListRegionsRequest(parent_code="18"), metadata=md, timeout=10)
check("SentraService/ListRegions", any(x.code == "18.71" for x in regs.regions), len(regs.regions))
st = stats.GetStatistics(S.GetStatisticsRequest(group_by=[S.GROUP_BY_REGENCY]), metadata=md, timeout=10)
check("StatsService/GetStatistics", st.total.sentra >= 1, st.total)
ts = stats.GetTimeSeries(S.GetTimeSeriesRequest(from_year=2020), metadata=md, timeout=10)
check("StatsService/GetTimeSeries", any(p.year == 2021 and p.formed >= 1 for p in ts.points), ts)
pull = sync.PullChanges(S.PullChangesRequest(limit=1000), metadata=md, timeout=10)
check("SyncService/PullChanges", any(c.id == ID for c in pull.changes) and pull.next_cursor, len(pull.changes))
mid = str(uuid.uuid4())
push = sync.PushChanges(S.PushChangesRequest(client_id="interop-py", mutations=[
    S.Mutation(mutation_id=mid, op=S.MUTATION_OP_UPSERT,
               sentra=S.Sentra(id=str(uuid.uuid4()), **{f.name: v for f, v in record("Sentra gRPC Push").ListFields()}))]),
    metadata=md, timeout=10)
check("SyncService/PushChanges", len(push.results) == 1 and push.results[0].outcome == S.MUTATION_OUTCOME_APPLIED,
      push)

# Idempotency through metadata: the same key twice gives the same record.
key = "interop-py-" + str(uuid.uuid4())
a = sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra Idempoten")),
                        metadata=md + (("idempotency-key", key),), timeout=10)
b = sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra Idempoten")),
                        metadata=md + (("idempotency-key", key),), timeout=10)
check("idempotency-key metadata: a repeat returns the stored outcome", a.id == b.id, (a.id, b.id))
key = "interop-py-x-" + str(uuid.uuid4())
a = sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra Idempoten X")),
                        metadata=md + (("x-idempotency-key", key),), timeout=10)
b = sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra Idempoten X")),
                        metadata=md + (("x-idempotency-key", key),), timeout=10)
check("x-idempotency-key metadata too", a.id == b.id, (a.id, b.id))

# ---------------------------------------------------------------- errors

e = err_of(lambda: sentra.GetSentra(S.GetSentraRequest(id=ID), timeout=10))
check("no token: UNAUTHENTICATED", e is not None and e.code() == grpc.StatusCode.UNAUTHENTICATED, e)
e = err_of(lambda: sentra.GetSentra(S.GetSentraRequest(id=ID), metadata=auth("snt_" + "a" * 52), timeout=10))
check("unknown token: UNAUTHENTICATED", e is not None and e.code() == grpc.StatusCode.UNAUTHENTICATED, e)
e = err_of(lambda: sentra.GetSentra(S.GetSentraRequest(id=ID), metadata=auth(DIST), timeout=10))
check("district 18.72 reading 18.71: NOT_FOUND (out of scope is not there)",
      e is not None and e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), e)
e = err_of(lambda: sentra.CreateSentra(S.CreateSentraRequest(sentra=record("Sentra Luar", "18.71")),
                                       metadata=auth(DIST), timeout=10))
check("district writing another regency: PERMISSION_DENIED",
      e is not None and e.code() == grpc.StatusCode.PERMISSION_DENIED, e)
e = err_of(lambda: sentra.GetSentra(S.GetSentraRequest(id=ID), metadata=auth(ADMIN), timeout=10))
check("admin token reading records: PERMISSION_DENIED", e is not None and e.code() == grpc.StatusCode.PERMISSION_DENIED, e)
dup = record("Sentra Kembar")
dup.id = ID
e = err_of(lambda: sentra.CreateSentra(S.CreateSentraRequest(sentra=dup), metadata=md, timeout=10))
check("create with an id that exists: ALREADY_EXISTS",
      e is not None and e.code() == grpc.StatusCode.ALREADY_EXISTS, e)
e = err_of(lambda: sentra.GetSentra(S.GetSentraRequest(id=str(uuid.uuid4())), metadata=md, timeout=10))
check("unknown id: NOT_FOUND", e is not None and e.code() == grpc.StatusCode.NOT_FOUND, e)

bad = record("")
bad.kbli_code = "99999"
bad.regency_code = "18.71"
e = err_of(lambda: sentra.CreateSentra(S.CreateSentraRequest(sentra=bad), metadata=md, timeout=10))
v = violations(e) if e is not None else None
check("invalid record: INVALID_ARGUMENT", e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)
check("field violations decoded from grpc-status-details-bin (google.rpc.BadRequest)",
      v is not None and v[0] == 3 and any(f == "name" for f, _ in v[1]) and any(f == "kbli_code" for f, _ in v[1]), v)
raw = None
if e is not None:
    for k, val in e.trailing_metadata() or ():
        if k == "grpc-status-details-bin":
            raw = val
check("grpc-status-details-bin carries the status message too",
      raw is not None and status_pb2.Status.FromString(raw).message == e.details(), e and e.details())

e = err_of(lambda: sentra.UpdateSentra(S.UpdateSentraRequest(sentra=S.Sentra(id=ID, name="Sentra Lama"),
                                                             update_mask=["name"], expected_version=1),
                                       metadata=md, timeout=10))
check("stale version: ABORTED", e is not None and e.code() == grpc.StatusCode.ABORTED, e)
check("ABORTED carries sentra-current-version", e is not None and trailer(e, "sentra-current-version") == "2",
      e and e.trailing_metadata())
got2 = sentra.GetSentra(S.GetSentraRequest(id=ID), metadata=md, timeout=10)
check("the refused update changed nothing", got2.version == 2 and got2.name == "Sentra gRPC Python Baru", got2)

e = err_of(lambda: ch.unary_unary("/sentra.v1.SentraService/NoSuchMethod")(b"", timeout=10))
check("unknown method: UNIMPLEMENTED", e is not None and e.code() == grpc.StatusCode.UNIMPLEMENTED, e)
e = err_of(lambda: ch.unary_unary("/sentra.v1.SentraService/GetSentra")(b"\xff\xff\xff", metadata=md, timeout=10))
check("undecodable message: INVALID_ARGUMENT", e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)

# Over the 4 MiB limit (the client's own send limit lifted).
big = grpc.insecure_channel(ADDR, options=[("grpc.max_send_message_length", -1)])
e = err_of(lambda: YG.SystemServiceStub(big).Ping(Y.PingRequest(data=b"x" * (5 << 20)), timeout=30))
check("a 5 MiB message: RESOURCE_EXHAUSTED", e is not None and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e)
r = YG.SystemServiceStub(big).Ping(Y.PingRequest(data=b"y" * (3 << 20)), timeout=30)
check("a 3 MiB message passes (and the connection still serves)", len(r.data) == 3 << 20)
big.close()

# Compression: grpcio's gzip is refused as the spec says (UNIMPLEMENTED).
e = err_of(lambda: system.Ping(Y.PingRequest(data=b"z" * 1000), timeout=10, compression=grpc.Compression.Gzip))
check("grpc-encoding gzip: UNIMPLEMENTED", e is not None and e.code() == grpc.StatusCode.UNIMPLEMENTED, e)

# ---------------------------------------------------------------- deadlines and cancellation

fut = system.Sleep.future(Y.SleepRequest(ms=20000), timeout=2.0)
end = time.time() + 2
seen = 0
while time.time() < end and not fut.done():
    seen = max(seen, sleeping())
    time.sleep(0.05)
e = fut.exception(timeout=10)
check("grpc-timeout: DEADLINE_EXCEEDED", e is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e)
check("the statement ran until the deadline", seen >= 1, seen)
check("the deadline cancelled the statement (pg_stat_activity)", wait_no_sleep(), sleeping())

fut = system.Sleep.future(Y.SleepRequest(ms=20000), timeout=60)
end = time.time() + 5
while sleeping() == 0 and time.time() < end:
    time.sleep(0.05)
check("the slow statement runs", sleeping() >= 1)
fut.cancel()
check("client cancel (RST_STREAM CANCEL) cancels the statement", wait_no_sleep(), sleeping())
check("the cancelled call reports CANCELLED", fut.cancelled())
r = system.Ping(Y.PingRequest(data=b"after"), timeout=10)
check("the channel still serves after a cancel", r.data == b"after")

# ---------------------------------------------------------------- change stream

class Reader(threading.Thread):
    """Iterates a StreamChanges stream on a thread, keeping what comes."""

    def __init__(self, token, cursor="", limit=0, timeout=None):
        super().__init__(daemon=True)
        self.msgs, self.error, self.done = [], None, threading.Event()
        self.call = sync.StreamChanges(S.StreamChangesRequest(cursor=cursor, limit=limit),
                                       metadata=auth(token), timeout=timeout)
        self.start()

    def run(self):
        try:
            for m in self.call:
                self.msgs.append(m)
        except grpc.RpcError as ex:
            self.error = ex
        self.done.set()

    def wait(self, pred, limit=10.0):
        end = time.time() + limit
        while time.time() < end and not pred(self):
            time.sleep(0.02)
        return pred(self)

    def records(self):
        return [c for m in list(self.msgs) for c in m.changes]


r = Reader(PROV, limit=2)
caught = r.wait(lambda x: any(not m.more for m in x.msgs))
recs = r.records()
check("SyncService/StreamChanges: the catch-up, then more = false",
      caught and any(c.id == ID for c in recs) and all(len(m.changes) <= 2 for m in r.msgs)
      and len(set(c.id for c in recs)) == len(recs), (caught, len(recs), len(r.msgs)))
# A write by another client (its own channel) arrives on the open stream.
ch2 = grpc.insecure_channel(ADDR)
other = SG.SentraServiceStub(ch2).CreateSentra(
    S.CreateSentraRequest(sentra=record("Sentra gRPC Stream Baru", "18.72")), metadata=md, timeout=10)
got_it = r.wait(lambda x: any(c.id == other.id and c.version == 1 for c in x.records()))
check("SyncService/StreamChanges: another client's write arrives on the open stream", got_it, other.id)
SG.SentraServiceStub(ch2).DeleteSentra(S.DeleteSentraRequest(id=other.id, expected_version=1),
                                       metadata=md, timeout=10)
got_it = r.wait(lambda x: any(c.id == other.id and c.deleted and c.version == 2 for c in x.records()))
check("SyncService/StreamChanges: and its delete, as a tombstone", got_it)
ch2.close()
last = r.msgs[-1].next_cursor
r.call.cancel()
r.done.wait(5)
check("SyncService/StreamChanges cancelled by the client",
      r.error is not None and r.error.code() == grpc.StatusCode.CANCELLED, r.error)
# Resumed from the last cursor: nothing again until something changes.
r = Reader(PROV, cursor=last, timeout=1.5)
r.done.wait(10)
check("SyncService/StreamChanges resumed from its last cursor: nothing repeated, "
      "then DEADLINE_EXCEEDED at the deadline",
      r.error is not None and r.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not r.records(),
      (r.error, len(r.records())))
e = err_of(lambda: list(sync.StreamChanges(S.StreamChangesRequest(cursor="zz"), metadata=md, timeout=10)))
check("SyncService/StreamChanges with a bad cursor: INVALID_ARGUMENT with the field",
      e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(e) is not None and
      any(f == "cursor" for f, _ in violations(e)[1]), e)

# ---------------------------------------------------------------- records of a sentra

records = SG.RecordServiceStub(ch)
mem = records.CreateMember(S.CreateMemberRequest(member=S.Member(
    sentra_id=ID, name="IKM gRPC Python", owner_name="Ibu Python", owner_sex=S.SEX_FEMALE,
    workers_female=3, investment=12000000)), metadata=md, timeout=10)
check("RecordService/CreateMember", mem.id and mem.version == 1 and mem.regency_code == "18.71", mem)
g = records.GetMember(S.GetMemberRequest(id=mem.id), metadata=md, timeout=10)
check("RecordService/GetMember", g.name == "IKM gRPC Python" and g.owner_sex == S.SEX_FEMALE
      and g.investment == 12000000, g)
lm = records.ListMembers(S.ListMembersRequest(filter=S.RecordFilter(sentra_id=ID), include_total=True),
                         metadata=md, timeout=10)
check("RecordService/ListMembers", lm.total == 1 and [m.id for m in lm.members] == [mem.id], lm)
obs = records.CreateObstacle(S.CreateObstacleRequest(obstacle=S.Obstacle(
    sentra_id=ID, category=S.OBSTACLE_CATEGORY_MARKETING, description="Pasar terbatas",
    severity=S.SEVERITY_MEDIUM, reported_on="2023-04-01", status=S.OBSTACLE_STATUS_OPEN)),
    metadata=md, timeout=10)
check("RecordService/CreateObstacle", obs.id and obs.version == 1, obs)
e = err_of(lambda: records.CreateObstacle(S.CreateObstacleRequest(obstacle=S.Obstacle(
    sentra_id=ID, category=S.OBSTACLE_CATEGORY_MARKETING, description="Sudah selesai",
    severity=S.SEVERITY_LOW, reported_on="2023-04-01", status=S.OBSTACLE_STATUS_RESOLVED)),
    metadata=md, timeout=10))
v = violations(e) if e is not None else None
check("RecordService/CreateObstacle resolved without resolution: INVALID_ARGUMENT, field paths in "
      "google.rpc.BadRequest", e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT and
      v is not None and v[0] == 3 and {f for f, _ in v[1]} == {"resolution", "resolved_on"}, v)
n_obs = int(sql("SELECT count(*) FROM obstacle WHERE sentra_id = '%s'" % ID) or "-1")
check("the refused obstacle changed nothing", n_obs == 1, n_obs)
e = err_of(lambda: records.CreateMember(S.CreateMemberRequest(member=S.Member(
    sentra_id=ID, name="IKM Luar", owner_name="Pak Luar", owner_sex=S.SEX_MALE)),
    metadata=auth(DIST), timeout=10))
check("RecordService/CreateMember by district 18.72 on a sentra of 18.71: PERMISSION_DENIED",
      e is not None and e.code() == grpc.StatusCode.PERMISSION_DENIED, e)
e = err_of(lambda: records.GetMember(S.GetMemberRequest(id=mem.id), metadata=auth(DIST), timeout=10))
check("RecordService/GetMember by district 18.72 of a member of 18.71: NOT_FOUND",
      e is not None and e.code() == grpc.StatusCode.NOT_FOUND, e)
lm = records.ListMembers(S.ListMembersRequest(filter=S.RecordFilter(sentra_id=ID)), metadata=auth(DIST),
                         timeout=10)
check("RecordService/ListMembers by district 18.72 of a sentra of 18.71: nothing", not lm.members, lm)

kinds = [S.RECORD_KIND_MEMBER, S.RECORD_KIND_OBSTACLE]
pull = sync.PullChanges(S.PullChangesRequest(limit=5000, kinds=kinds), metadata=md, timeout=10)
got = [(x.WhichOneof("record"), getattr(x, x.WhichOneof("record")).id) for x in pull.records]
check("SyncService/PullChanges with kinds: the member and the obstacle in records, nothing in changes",
      ("member", mem.id) in got and ("obstacle", obs.id) in got and not pull.changes and
      all(k in ("member", "obstacle") for k, _ in got), got)
pull_d = sync.PullChanges(S.PullChangesRequest(limit=5000, kinds=kinds), metadata=auth(DIST), timeout=10)
check("SyncService/PullChanges with kinds by district 18.72: not the records of 18.71",
      all(getattr(x, x.WhichOneof("record")).id not in (mem.id, obs.id) for x in pull_d.records),
      len(pull_d.records))
e = err_of(lambda: sync.PullChanges(S.PullChangesRequest(kinds=[S.RECORD_KIND_MEMBER, S.RECORD_KIND_MEMBER]),
                                    metadata=md, timeout=10))
check("SyncService/PullChanges with a kind twice: INVALID_ARGUMENT naming kinds[1]",
      e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(e) is not None and
      [f for f, _ in violations(e)[1]] == ["kinds[1]"], e)
# The stream with the same kinds: the same records in the same order (the
# server packs them itself; grpcio's decoder reads them).
st_call = sync.StreamChanges(S.StreamChangesRequest(limit=5000, kinds=kinds), metadata=md, timeout=20)
srecs = []
for m in st_call:
    srecs += [(x.WhichOneof("record"), getattr(x, x.WhichOneof("record")).id,
               getattr(x, x.WhichOneof("record")).version) for x in m.records]
    if m.changes or not m.more:
        break
st_call.cancel()
want = [(x.WhichOneof("record"), getattr(x, x.WhichOneof("record")).id,
         getattr(x, x.WhichOneof("record")).version) for x in pull.records]
check("SyncService/StreamChanges with kinds: the records of PullChanges, in its order", srecs == want,
      (srecs[:5], want[:5]))

# ---------------------------------------------------------------- concurrency

futs = [system.Ping.future(Y.PingRequest(data=str(i).encode()), timeout=60) for i in range(200)]
ok = sum(1 for i, f in enumerate(futs) if f.result().data == str(i).encode())
check("200 concurrent Pings on one channel", ok == 200, ok)
futs = [sentra.GetSentra.future(S.GetSentraRequest(id=ID), metadata=md, timeout=60) for _ in range(200)]
ok = sum(1 for f in futs if f.result().id == ID)
check("200 concurrent GetSentra on one channel", ok == 200, ok)
# More streams than SETTINGS_MAX_CONCURRENT_STREAMS that wait in the database.
futs = [system.Sleep.future(Y.SleepRequest(ms=50), timeout=120) for _ in range(200)]
ok = 0
for f in futs:
    try:
        f.result()
        ok += 1
    except grpc.RpcError as ex:
        print("       " + str(ex.code()))
check("200 concurrent Sleep(50 ms) on one channel", ok == 200, ok)

# ---------------------------------------------------------------- clean up

r = tokens.RevokeToken(S.RevokeTokenRequest(id=DIST_ID), metadata=auth(ADMIN), timeout=10)
check("TokenService/RevokeToken", r.revoked_at_ms > 0, r)
d = sentra.DeleteSentra(S.DeleteSentraRequest(id=ID, expected_version=2), metadata=md, timeout=10)
check("SentraService/DeleteSentra", d.id == ID and d.version == 3, d)
pull = sync.PullChanges(S.PullChangesRequest(limit=5000, kinds=kinds), metadata=md, timeout=10)
gone = {getattr(x, x.WhichOneof("record")).id: getattr(x, x.WhichOneof("record")).deleted for x in pull.records}
check("SyncService/PullChanges with kinds: the sentra's member and obstacle as tombstones once it is deleted",
      gone.get(mem.id) is True and gone.get(obs.id) is True, gone)

ch.close()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
