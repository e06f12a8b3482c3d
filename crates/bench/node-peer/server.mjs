// The Node peer of `floorbench` at its best: what a careful Node team deploys. One worker per
// core (node:cluster) and a 60 s in-process verdict cache around @clerk/backend's
// authenticateRequest, so a repeated token costs a Map lookup. Started by floorbench with its
// settings in the environment; prints `ready` once every worker listens.
import cluster from 'node:cluster';
import http from 'node:http';
import os from 'node:os';

const env = process.env;
const workers = Number(env.WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  let ready = 0;
  // `GET /__stats` on any worker: the primary collects every worker's verdict-cache counters
  // (each worker has its own Map) and hands the sum back to the worker that asked.
  const collecting = new Map();
  let nextCollection = 0;
  cluster.on('message', (w, m) => {
    if (m === 'ready' && ++ready === workers) console.log('ready');
    else if (m?.type === 'stats?') {
      const id = ++nextCollection;
      const all = Object.values(cluster.workers);
      collecting.set(id, { from: w, ask: m.ask, left: all.length, hits: 0, misses: 0 });
      for (const x of all) x.send({ type: 'collect', id });
    } else if (m?.type === 'counts') {
      const c = collecting.get(m.id);
      if (c === undefined) return;
      c.hits += m.hits;
      c.misses += m.misses;
      if (--c.left === 0) {
        collecting.delete(m.id);
        c.from.send({ type: 'stats', ask: c.ask, hits: c.hits, misses: c.misses });
      }
    }
  });
  cluster.on('exit', () => process.exit(1));
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const { createClerkClient } = await import('@clerk/backend');
  const clerk = createClerkClient({
    apiUrl: env.CLERK_API_URL,
    secretKey: env.CLERK_SECRET_KEY,
    machineSecretKey: env.CLERK_MACHINE_SECRET_KEY,
    publishableKey: env.CLERK_PUBLISHABLE_KEY,
    jwtKey: env.CLERK_JWT_KEY,
  });
  const authorizedParties = [env.CLERK_AUTHORIZED_PARTY];
  const roles = new Map([
    [env.JOB_APPLIER_MACHINE_ID, 'job-applier'],
    [env.CANDIDATE_REPRESENTER_MACHINE_ID, 'candidate-representer'],
  ]);
  const TTL_MS = 60_000;
  const MAX_ENTRIES = 100_000;
  // Authorization header → { status, body, expires }: authenticated verdicts only.
  const verdicts = new Map();
  // Requests answered from `verdicts`, and those that called authenticateRequest (floorbench
  // reads the sums of every worker at `GET /__stats`).
  let hits = 0;
  let misses = 0;
  const asks = new Map();
  let nextAsk = 0;
  process.on('message', (m) => {
    if (m?.type === 'collect') process.send({ type: 'counts', id: m.id, hits, misses });
    else if (m?.type === 'stats') {
      const res = asks.get(m.ask);
      asks.delete(m.ask);
      res?.end(JSON.stringify({ hits: m.hits, misses: m.misses }));
    }
  });

  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const verdict = async (header) => {
    const request = new Request('http://127.0.0.1/api/whoami', { headers: { authorization: header } });
    const state = await clerk.authenticateRequest(request, { acceptsToken: 'any', authorizedParties });
    if (!state.isAuthenticated) return { status: 401, body: JSON.stringify({ title: 'unauthorized', detail: state.message ?? state.reason }) };
    const auth = state.toAuth();
    const body = auth.tokenType === 'session_token'
      ? { kind: 'user', user_id: auth.userId, session_id: auth.sessionId }
      : { kind: 'machine', machine_id: auth.machineId, token_id: auth.id, scopes: auth.scopes, role: roles.get(auth.machineId) ?? null };
    return { status: 200, body: JSON.stringify(body) };
  };

  http.createServer(async (req, res) => {
    try {
      if (req.url === '/healthz') return send(res, 200, '{"status":"ok"}');
      if (req.url === '/__stats') {
        const ask = ++nextAsk;
        asks.set(ask, res);
        res.writeHead(200, { 'content-type': 'application/json' });
        return process.send({ type: 'stats?', ask });
      }
      if (req.url !== '/api/whoami') return send(res, 404, '{"title":"not found"}');
      const header = req.headers.authorization ?? '';
      const now = Date.now();
      let v = verdicts.get(header);
      if (v === undefined || v.expires <= now) {
        misses++;
        v = await verdict(header);
        if (v.status === 200) {
          if (verdicts.size >= MAX_ENTRIES) verdicts.clear();
          v.expires = now + TTL_MS;
          verdicts.set(header, v);
        }
      } else {
        hits++;
      }
      send(res, v.status, v.body);
    } catch (e) {
      send(res, 500, JSON.stringify({ title: 'internal error' }));
    }
  }).listen(Number(env.PORT), '127.0.0.1', () => process.send('ready'));
}
