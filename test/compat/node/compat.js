// Drives an Arca server with npm node-vault, the way Node.js users of Vault
// do. Exits non-zero with a message on the first failure.
//
// Environment: VAULT_ADDR, VAULT_TOKEN (root, dev server with KV v2 at
// secret/), SEALED_ADDR (an uninitialised server), PG_HOST, PG_PORT,
// PG_USER, PG_PASSWORD (a PostgreSQL superuser, for the database engine).
// It prints DB_USER_REVOKED=<name> and DB_USER_KEPT=<name>, the database
// users it was issued, for the Go test to check in PostgreSQL; it never
// prints a password.
'use strict';

const vault = require('node-vault');

function check(cond, msg) {
  if (!cond) {
    throw new Error(msg);
  }
}

async function expectStatus(promise, status, msg) {
  try {
    await promise;
  } catch (err) {
    const got = err.response && err.response.statusCode;
    check(got === status, `${msg}: status ${got}, want ${status} (${err.message})`);
    return;
  }
  throw new Error(`${msg}: succeeded, want status ${status}`);
}

async function sealFlow(addr) {
  const c = vault({ endpoint: addr });
  let st = await c.initialized();
  check(st.initialized === false, `initialized before init: ${JSON.stringify(st)}`);
  const res = await c.init({ secret_shares: 2, secret_threshold: 2 });
  check(res.keys.length === 2 && res.root_token, `init: ${JSON.stringify(res)}`);
  st = await c.status();
  check(st.sealed === true, 'sealed after init');
  await c.unseal({ key: res.keys[0] });
  st = await c.unseal({ secret_shares: 1, key: res.keys[1] });
  check(st.sealed === false, `unseal: ${JSON.stringify(st)}`);
  const health = await c.health();
  check(health.initialized === true && health.sealed === false, `health: ${JSON.stringify(health)}`);
  c.token = res.root_token;
  await c.seal();
  st = await c.status();
  check(st.sealed === true, 'not sealed after seal');
}

// The design documents' flow: the database engine configured as written
// there, credentials read, renewed with sys/leases/renew and revoked with
// sys/leases/revoke.
async function databaseFlow(c) {
  const env = process.env;
  check(env.PG_HOST && env.PG_PORT && env.PG_USER && env.PG_PASSWORD, 'PG_HOST, PG_PORT, PG_USER and PG_PASSWORD must be set');
  await c.mount({ mount_point: 'database', type: 'database' });
  await c.write('database/config/production', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${env.PG_HOST}:${env.PG_PORT}/postgres?sslmode=disable`,
    allowed_roles: 'app-readonly,app-readwrite',
    username: env.PG_USER,
    password: env.PG_PASSWORD,
  });
  await c.write('database/roles/app-readonly', {
    db_name: 'production',
    creation_statements: 'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
    default_ttl: '1h',
    max_ttl: '24h',
  });

  const creds = await c.read('database/creds/app-readonly');
  const leaseId = creds.lease_id;
  check(typeof leaseId === 'string' && leaseId.startsWith('database/creds/app-readonly/') && leaseId.length > 'database/creds/app-readonly/'.length,
    `lease_id: ${leaseId}`);
  check(creds.lease_duration === 3600 && creds.renewable === true, `lease_duration ${creds.lease_duration}, renewable ${creds.renewable}`);
  const username = creds.data.username;
  check(typeof username === 'string' && username.startsWith('v-'), `username: ${username}`);
  check(typeof creds.data.password === 'string' && creds.data.password.length >= 20, 'the credentials have no password');

  const renewed = await c.write('sys/leases/renew', { lease_id: leaseId, increment: 3600 });
  check(renewed.lease_id === leaseId && renewed.lease_duration === 3600 && renewed.renewable === true,
    `renew: lease_id ${renewed.lease_id}, lease_duration ${renewed.lease_duration}`);
  let info = await c.write('sys/leases/lookup', { lease_id: leaseId });
  check(info.data.id === leaseId && info.data.last_renewal && info.data.ttl > 0, `lookup: ${JSON.stringify(info.data)}`);
  await expectStatus(c.write('sys/leases/renew', { lease_id: leaseId, increment: 'soon' }), 400, 'renew with a bad increment');

  const kept = await c.read('database/creds/app-readonly');
  check(kept.lease_id !== leaseId && kept.data.username !== username, 'a second read issued the same lease or user');

  await c.write('sys/leases/revoke', { lease_id: leaseId });
  await expectStatus(c.write('sys/leases/lookup', { lease_id: leaseId }), 400, 'lookup of a revoked lease');
  await expectStatus(c.write('sys/leases/renew', { lease_id: leaseId, increment: 3600 }), 400, 'renew of a revoked lease');
  info = await c.write('sys/leases/lookup', { lease_id: kept.lease_id });
  check(info.data.id === kept.lease_id, 'the other lease went with the revoked one');
  console.log(`DB_USER_REVOKED=${username}`);
  console.log(`DB_USER_KEPT=${kept.data.username}`);
}

async function main() {
  await sealFlow(process.env.SEALED_ADDR);
  const addr = process.env.VAULT_ADDR;
  const c = vault({ endpoint: addr, token: process.env.VAULT_TOKEN });

  // KV v2 through the generic read/write/list/delete calls.
  await c.write('secret/data/app/db', { data: { user: 'app', password: 'n1' } });
  await c.write('secret/data/app/db', { data: { user: 'app', password: 'n2' }, options: { cas: 1 } });
  await expectStatus(c.write('secret/data/app/db', { data: { password: 'x' }, options: { cas: 1 } }), 400, 'stale cas');
  let r = await c.read('secret/data/app/db');
  check(r.data.data.password === 'n2' && r.data.metadata.version === 2, `read: ${JSON.stringify(r)}`);
  r = await c.read('secret/data/app/db?version=1');
  check(r.data.data.password === 'n1', `read version 1: ${JSON.stringify(r)}`);
  await c.write('secret/data/app/api', { data: { k: 'v' } });
  r = await c.list('secret/metadata/app');
  check(JSON.stringify(r.data.keys) === '["api","db"]', `list: ${JSON.stringify(r)}`);
  r = await c.read('secret/metadata/app/db');
  check(r.data.current_version === 2, `metadata: ${JSON.stringify(r)}`);
  await c.delete('secret/data/app/db');
  await expectStatus(c.read('secret/data/app/db'), 404, 'read of soft-deleted version');
  await c.write('secret/undelete/app/db', { versions: [2] });
  r = await c.read('secret/data/app/db');
  check(r.data.data.password === 'n2', 'undelete');
  await c.delete('secret/metadata/app/db');
  await expectStatus(c.read('secret/metadata/app/db'), 404, 'metadata after delete');

  // Mounts and KV v1.
  await c.mount({ mount_point: 'kv1', type: 'kv', description: 'v1 mount' });
  const mounts = await c.mounts();
  check(mounts['kv1/'] && mounts['kv1/'].type === 'kv', `mounts: ${JSON.stringify(Object.keys(mounts))}`);
  await c.write('kv1/a', { v: '1' });
  r = await c.read('kv1/a');
  check(r.data.v === '1', `kv1 read: ${JSON.stringify(r)}`);
  await c.unmount({ mount_point: 'kv1' });

  // Policies.
  const rules = 'path "secret/data/app/*" { capabilities = ["read"] }';
  await c.addPolicy({ name: 'node-app', rules });
  r = await c.getPolicy({ name: 'node-app' });
  check(r.rules === rules, `getPolicy: ${JSON.stringify(r)}`);
  r = await c.policies();
  check(r.policies.includes('node-app'), `policies: ${JSON.stringify(r)}`);

  // Tokens.
  await c.write('secret/data/app/cfg', { data: { x: '1' } });
  await c.write('secret/data/other/cfg', { data: { x: '2' } });
  const created = await c.tokenCreate({ policies: ['node-app'], ttl: '1h' });
  const tok = created.auth.client_token;
  // node-vault switches the client to a token it just created; switch back.
  check(c.token === tok, 'node-vault did not adopt the created token');
  c.token = process.env.VAULT_TOKEN;
  check(tok.startsWith('hvs.') && created.auth.lease_duration === 3600, `tokenCreate: ${JSON.stringify(created.auth)}`);
  r = await c.tokenLookup({ token: tok });
  check(r.data.policies.includes('node-app'), `tokenLookup: ${JSON.stringify(r.data)}`);
  const app = vault({ endpoint: addr, token: tok });
  r = await app.read('secret/data/app/cfg');
  check(r.data.data.x === '1', 'allowed read');
  await expectStatus(app.write('secret/data/app/cfg', { data: { x: 'no' } }), 403, 'write on read-only path');
  await expectStatus(app.read('secret/data/other/cfg'), 403, 'read outside policy');
  r = await app.tokenLookupSelf();
  check(r.data.accessor === created.auth.accessor, 'tokenLookupSelf');
  r = await app.tokenRenewSelf({ increment: '10m' });
  check(r.auth.lease_duration === 600, `tokenRenewSelf: ${JSON.stringify(r.auth)}`);
  app.token = tok;
  await c.tokenRevoke({ token: tok });
  await expectStatus(app.tokenLookupSelf(), 403, 'revoked token');
  await c.removePolicy({ name: 'node-app' });
  r = await c.policies();
  check(!r.policies.includes('node-app'), 'removePolicy');

  // Audit devices.
  const auditLog = require('path').join(require('os').tmpdir(), `node-audit-${process.pid}.log`);
  await c.enableAudit({ name: 'node-file', type: 'file', options: { file_path: auditLog } });
  r = await c.audits();
  check(r['node-file/'] && r['node-file/'].options.file_path === auditLog, `audits: ${JSON.stringify(r)}`);
  await c.read('secret/data/app/cfg');
  const lines = require('fs').readFileSync(auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  check(lines.some((e) => e.type === 'response' && e.request.path === 'secret/data/app/cfg'), 'no audit entry for the read');
  await c.disableAudit({ name: 'node-file' });
  r = await c.audits();
  check(!r['node-file/'], 'disableAudit');
  require('fs').unlinkSync(auditLog);

  await databaseFlow(c);
  console.log('node-vault: all checks passed');
}

main().catch((err) => {
  console.error('FAIL: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
