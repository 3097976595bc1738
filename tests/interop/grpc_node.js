// grpc_node.js: sentrad against a stock gRPC client, Node's @grpc/grpc-js
// with @grpc/proto-loader reading proto/ at test time (no generated code).
//
// Run by tests/integration/test_grpc_interop.sh with ADDR, TOKEN (a
// province 18 token), PROTO_DIR (the repository's proto/), HEALTH_DIR
// (grpc-proto's health folder). Prints "ok - ..."/"FAIL - ..." lines and
// "N passed, N failed".
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const { ADDR, TOKEN, PROTO_DIR, HEALTH_DIR } = process.env;
let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log('ok   - ' + name); }
  else { failed++; console.log('FAIL - ' + name); if (detail !== undefined) console.log('       ' + JSON.stringify(detail)); }
}

const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
               includeDirs: [PROTO_DIR, HEALTH_DIR] };
const def = loader.loadSync(['sentra/v1/sentra.proto', 'sentra/v1/system.proto', 'health.proto'], opts);
const pkg = grpc.loadPackageDefinition(def);
const creds = grpc.credentials.createInsecure();
const system = new pkg.sentra.v1.SystemService(ADDR, creds);
const sentra = new pkg.sentra.v1.SentraService(ADDR, creds);
const health = new pkg.grpc.health.v1.Health(ADDR, creds);
const md = new grpc.Metadata();
md.set('authorization', 'Bearer ' + TOKEN);
const deadline = (ms) => ({ deadline: new Date(Date.now() + ms) });

const root = new protobuf.Root();
root.resolvePath = (origin, target) => {
  if (target.startsWith('google/protobuf/')) return path.join('/usr/include', target);
  return path.join(PROTO_DIR, target);
};
root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
const Status = root.lookupType('google.rpc.Status');
const BadRequest = root.lookupType('google.rpc.BadRequest');

const call = (client, method, req, m, ms) => new Promise((resolve) => {
  client[method](req, m || new grpc.Metadata(), deadline(ms || 10000), (err, resp) => resolve({ err, resp }));
});

(async () => {
  let r = await call(system, 'Ping', { data: Buffer.from('node') });
  check('Ping', !r.err && r.resp.data.toString() === 'node', r.err && r.err.message);

  r = await call(health, 'Check', { service: '' });
  check('grpc.health.v1.Health/Check', !r.err && r.resp.status === 'SERVING', r.err && r.err.message);

  const rec = { regency_code: '18.71', name: 'Sentra Node Kopi', commodity: 'kopi', main_product: 'kopi bubuk',
                kbli_code: '10761', kbli_version: 'KBLI_VERSION_2020', sector_group: 'SECTOR_GROUP_FOOD',
                status: 'STATUS_FORMED', formed_on: '2020-01-01' };
  r = await call(sentra, 'CreateSentra', { sentra: rec }, md);
  check('CreateSentra', !r.err && r.resp.id, r.err && r.err.message);
  const id = r.resp && r.resp.id;
  r = await call(sentra, 'GetSentra', { id }, md);
  check('GetSentra', !r.err && r.resp.name === 'Sentra Node Kopi', r.err && r.err.message);

  r = await call(sentra, 'GetSentra', { id: '00000000-0000-4000-8000-000000000000' }, md);
  check('unknown id: NOT_FOUND', r.err && r.err.code === grpc.status.NOT_FOUND, r.err && r.err.code);

  r = await call(sentra, 'CreateSentra', { sentra: Object.assign({}, rec, { name: '', kbli_code: '99999' }) }, md);
  check('invalid record: INVALID_ARGUMENT', r.err && r.err.code === grpc.status.INVALID_ARGUMENT, r.err && r.err.code);
  let fields = [];
  if (r.err) {
    const raw = r.err.metadata.get('grpc-status-details-bin')[0];
    if (raw) {
      const st = Status.decode(raw);
      for (const d of st.details)
        if (d.type_url === 'type.googleapis.com/google.rpc.BadRequest')
          fields = BadRequest.decode(d.value).field_violations.map((v) => v.field);
    }
  }
  check('field violations from grpc-status-details-bin', fields.includes('name') && fields.includes('kbli_code'), fields);

  r = await call(sentra, 'GetSentra', { id }, new grpc.Metadata());
  check('no token: UNAUTHENTICATED', r.err && r.err.code === grpc.status.UNAUTHENTICATED, r.err && r.err.code);

  r = await call(system, 'Sleep', { ms: 20000 }, undefined, 500);
  check('deadline: DEADLINE_EXCEEDED', r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED, r.err && r.err.code);

  // Server streaming: Watch sends the status at once; the client cancels.
  const w = await new Promise((resolve) => {
    const st = health.Watch({ service: '' });
    st.on('data', (m) => { st.cancel(); resolve(m.status); });
    st.on('error', (e) => resolve('error ' + e.code));
  });
  check('Health/Watch streams the status', w === 'SERVING', w);

  // 200 concurrent calls on one channel.
  const many = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    call(system, 'Ping', { data: Buffer.from(String(i)) }, undefined, 60000)));
  check('200 concurrent Pings', many.every((x, i) => !x.err && x.resp.data.toString() === String(i)),
        many.filter((x) => x.err).length);

  system.close(); sentra.close(); health.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('FAIL - exception ' + e); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
