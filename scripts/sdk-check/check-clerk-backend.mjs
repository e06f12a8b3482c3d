// Clerk's official JavaScript SDK (@clerk/backend) against clerk-mock, pointed at it with apiUrl.
import { createClerkClient, verifyToken } from '@clerk/backend';

const apiUrl = process.env.MOCK;
const sk = 'sk_test_jobtracker_mock_instance_secret_key';
const apiKey = 'ak_jobtracker_api_mock_machine_secret_key_0001';
const applierKey = 'ak_job_applier_mock_machine_secret_key_0001';
const results = [];
const check = async (name, fn) => {
  try { const r = await fn(); results.push(['ok', name, r]); }
  catch (e) { results.push(['FAIL', name, `${e.status ?? ''} ${e.message} ${JSON.stringify(e.errors ?? '')}`]); }
};

const bot = createClerkClient({ apiUrl, machineSecretKey: applierKey });
const api = createClerkClient({ apiUrl, machineSecretKey: apiKey });
const inst = createClerkClient({ apiUrl, secretKey: sk });

let created, jwt;
await check('m2m.createToken (opaque)', async () => { created = await bot.m2m.createToken({ secondsUntilExpiration: 600 }); return `${created.id} exp=${created.expiration} scopes=${created.scopes}`; });
await check('m2m.createToken (jwt)', async () => { jwt = await bot.m2m.createToken({ tokenFormat: 'jwt' }); return jwt.token.split('.').length; });
await check('m2m.verify (opaque, receiver key)', async () => { const v = await api.m2m.verify({ token: created.token }); return `${v.id} subject=${v.subject} token=${v.token}`; });
await check('m2m.verify (jwt, local with sk)', async () => { const v = await inst.m2m.verify({ token: jwt.token }); return `${v.id} subject=${v.subject}`; });
await check('m2m.list', async () => { const l = await inst.m2m.list({ subject: created.subject }); return `total=${l.totalCount} n=${l.data?.length}`; });
await check('m2m.revokeToken', async () => { const r = await bot.m2m.revokeToken({ m2mTokenId: created.id, revocationReason: 'sdk check' }); return `revoked=${r.revoked} reason=${r.revocationReason}`; });
await check('m2m.verify revoked → error', async () => { try { await api.m2m.verify({ token: created.token }); throw new Error('a revoked token was accepted'); } catch (e) { return `rejected ${e.status ?? e.code ?? e.message}`; } });
await check('machines.list', async () => { const l = await inst.machines.list(); return `total=${l.totalCount} first=${l.data?.[0]?.name} scoped=${l.data?.[0]?.scopedMachines?.length}`; });
let m;
await check('machines.create', async () => { m = await inst.machines.create({ name: 'SDK.Bot' }); return `${m.id} key=${m.secretKey ? 'yes' : 'no'}`; });
await check('machines.get', async () => (await inst.machines.get(m.id)).name);
await check('machines.update', async () => (await inst.machines.update({ machineId: m.id, name: 'SDK.Bot2' })).name);
await check('machines.getSecretKey', async () => (await inst.machines.getSecretKey(m.id)).secret.slice(0, 3));
await check('machines.rotateSecretKey', async () => (await inst.machines.rotateSecretKey({ machineId: m.id, previousTokenTtl: 0 })).secret.slice(0, 3));
await check('machines.createScope', async () => { const s = await inst.machines.createScope(m.id, 'mch_2JobTrackerApi0000000000000'); return `${s.fromMachineId}->${s.toMachineId}`; });
await check('machines.deleteScope', async () => { const s = await inst.machines.deleteScope(m.id, 'mch_2JobTrackerApi0000000000000'); return `deleted=${s.deleted}`; });
await check('machines.delete', async () => (await inst.machines.delete(m.id)).deleted);
// The flows `m2m apply` / `m2m rotate` rely on (#28), through the SDK a new user would try.
const API_ID = 'mch_2JobTrackerApi0000000000000';
let g;
await check('machines.create (scopes, ttl)', async () => { g = await inst.machines.create({ name: 'SDK.Graph', scopedMachines: [API_ID], defaultTokenTtl: 600 }); return `ttl=${g.defaultTokenTtl} scoped=${g.scopedMachines.map((x) => x.id)}`; });
await check('machines.list (paging, query, orderBy)', async () => { const l = await inst.machines.list({ limit: 1, offset: 1, query: 'Bot', orderBy: '+name' }); if (l.data.length !== 1) throw new Error(`page of ${l.data.length}`); return `total=${l.totalCount} second=${l.data[0].name}`; });
await check('machines.createScope repeated → 409', async () => { try { await inst.machines.createScope(g.id, API_ID); throw new Error('a repeated scope was accepted'); } catch (e) { if (e.status !== 409) throw e; return `409 ${e.errors?.[0]?.code}`; } });
await check('machines.rotateSecretKey (grace) → old key still mints', async () => {
  const old = g.secretKey;
  await inst.machines.rotateSecretKey({ machineId: g.id, previousTokenTtl: 3600 });
  const t = await createClerkClient({ apiUrl, machineSecretKey: old }).m2m.createToken();
  return `old key minted ${t.id}`;
});
await check('machines.rotateSecretKey (no grace) → old key refused', async () => {
  const old = (await inst.machines.getSecretKey(g.id)).secret;
  const fresh = (await inst.machines.rotateSecretKey({ machineId: g.id, previousTokenTtl: 0 })).secret;
  try { await createClerkClient({ apiUrl, machineSecretKey: old }).m2m.createToken(); throw new Error('the old key still minted'); } catch (e) { if (e.status !== 401) throw e; }
  await createClerkClient({ apiUrl, machineSecretKey: fresh }).m2m.createToken();
  return 'old refused (401), new mints';
});
await check('machines.rotateSecretKey (8 h + 1 s) → 422', async () => { try { await inst.machines.rotateSecretKey({ machineId: g.id, previousTokenTtl: 28801 }); throw new Error('accepted'); } catch (e) { if (e.status !== 422) throw e; return `422 ${e.errors?.[0]?.code}`; } });
await check('machines.delete (graph)', async () => (await inst.machines.delete(g.id)).deleted);
await check('machines.get deleted → 404', async () => { try { await inst.machines.get(g.id); throw new Error('found'); } catch (e) { if (e.status !== 404) throw e; return `404 ${e.errors?.[0]?.code}`; } });
let session;
await check('sessions.createSession', async () => { session = await inst.sessions.createSession({ userId: 'user_2DemoAliceCandidate00000000' }); return session.id; });
let st;
await check('sessions.getToken', async () => { st = await inst.sessions.getToken(session.id); return (st.jwt ?? st).slice(0, 10); });
await check('verifyToken (session JWT, BAPI JWKS)', async () => { const c = await verifyToken(st.jwt ?? st, { secretKey: sk, apiUrl, authorizedParties: ['http://localhost:5000'] }); return `sub=${c.sub} sid=${c.sid}`; });
await check('testingTokens.createTestingToken', async () => (await inst.testingTokens.createTestingToken()).token.split('-').length);
await check('authenticateRequest (m2m)', async () => {
  const t = await bot.m2m.createToken();
  const req = new Request('http://localhost/x', { headers: { Authorization: `Bearer ${t.token}` } });
  const s = await api.authenticateRequest(req, { acceptsToken: 'm2m_token' });
  return `${s.status} ${s.toAuth().machineId}`;
});
for (const r of results) console.log(r.join(' | '));
const failed = results.filter((r) => r[0] !== 'ok').length;
console.log(`@clerk/backend: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
