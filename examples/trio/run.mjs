// The meshlet example trio: gateway → catalog (v1 ×2, v2 ×1) → inventory (×3), every call between
// them through meshlet, all on 127.0.0.1.
//
//   npm run example                 start, run the demo, keep serving until Ctrl-C
//   npm run example -- --exit       start, run the demo, stop
//   npm run example -- --chaos      kill and slow replicas on a schedule under a load loop,
//                                   one summary line per second (add --seconds=N to stop after N)
import { fork } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const args = new Set(process.argv.slice(2));
const secondsArg = process.argv.find((a) => a.startsWith('--seconds='));
const CHAOS = args.has('--chaos');
const EXIT = args.has('--exit') || secondsArg !== undefined;
const CHAOS_SECONDS = secondsArg ? Number(secondsArg.split('=')[1]) : Infinity;

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'meshlet-trio-'));
const endpointsFile = join(dir, 'endpoints.json');
/** name → { role, version, port, child } */
const replicas = new Map();
let stopping = false;

function writeEndpoints() {
  const out = { inventory: [], catalog: [] };
  for (const [name, r] of replicas) {
    if (r.role === 'gateway' || r.port === 0) continue;
    out[r.role].push({ url: `http://127.0.0.1:${r.port}`, labels: { version: r.version, replica: name } });
  }
  const tmp = `${endpointsFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(out, null, 2));
  renameSync(tmp, endpointsFile); // atomic: readers never see half a file
}

function start(name, role, version = 'v1', port = 0) {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'service.mjs'), [], {
      env: { ...process.env, ROLE: role, REPLICA: name, VERSION: version, ENDPOINTS_FILE: endpointsFile, PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // alive: the process runs; ready: it listens (a replica still starting is not drained: a
    // SIGTERM before it is ready would end it before its restart could bring it back).
    const r = { role, version, port, child, alive: true, ready: false };
    replicas.set(name, r);
    child.once('exit', (code) => {
      r.alive = false;
      r.ready = false;
      reject(new Error(`${name} exited (code ${code}) before it was ready`)); // no-op once resolved
    });
    child.once('error', reject);
    child.on('message', (m) => {
      if (m?.ready) {
        r.port = m.port;
        r.ready = true;
        resolve(r);
      }
    });
    setTimeout(() => reject(new Error(`${name} did not start in 10 s`)), 10_000).unref();
  });
}

async function kill(name) {
  const r = replicas.get(name);
  if (!r?.alive) return;
  const exited = new Promise((res) => r.child.once('exit', res));
  r.child.kill('SIGKILL');
  await exited;
}

/** SIGTERM: the replica drains (readiness fails, requests in flight finish, its mesh closes), then exits. */
async function terminate(name) {
  const r = replicas.get(name);
  if (!r?.alive) return;
  const exited = new Promise((res) => r.child.once('exit', res));
  r.child.kill('SIGTERM');
  await exited;
}

async function restart(name) {
  const r = replicas.get(name);
  await kill(name);
  await start(name, r.role, r.version, r.port); // same port, as a restarted pod behind a stable address
}

async function stopAll() {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    [...replicas.values()].map((r) => {
      if (!r.alive) return undefined;
      const exited = new Promise((res) => r.child.once('exit', res));
      r.child.kill('SIGTERM');
      const force = setTimeout(() => r.child.kill('SIGKILL'), 3_000);
      return exited.then(() => clearTimeout(force));
    }),
  );
  rmSync(dir, { recursive: true, force: true });
}

process.on('SIGINT', async () => {
  console.log('\nstopping every replica…');
  await stopAll();
  console.log('stopped: no process left, no port bound.');
  process.exit(0);
});

// ===== the client side of the demo =====

let gateway;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(path = '/products/42', headers = {}) {
  const started = performance.now();
  try {
    const res = await gateway.request({ method: 'GET', path, headers });
    const body = await res.body.json();
    return { status: res.statusCode, body, ms: performance.now() - started };
  } catch (err) {
    return { status: 0, body: { error: err.code ?? err.message }, ms: performance.now() - started };
  }
}

function tally(results, pick) {
  const out = {};
  for (const r of results) {
    const k = pick(r);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort());
}

const fmt = (o) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ');
const p99 = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] : 0;
};

/** A paced load loop: `concurrency` workers, each waiting `gapMs` between requests. */
function loadLoop(concurrency, gapMs, sink) {
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      sink(await call(`/products/${Math.floor(Math.random() * 1000)}`));
      await sleep(gapMs);
    }
  });
  return async () => {
    running = false;
    await Promise.all(workers);
  };
}

async function demo() {
  console.log('\n1. balancing — 200 requests through the gateway, 10 at a time');
  const r1 = [];
  for (let wave = 0; wave < 20; wave++) r1.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => call(`/products/${wave * 10 + i}`)))));
  console.log(`   catalog replicas:   ${fmt(tally(r1, (r) => r.body.catalog?.replica))}`);
  console.log(`   inventory replicas: ${fmt(tally(r1, (r) => r.body.catalog?.inventory?.replica))}`);
  console.log(`   versions (90/10 split): ${fmt(tally(r1, (r) => r.body.catalog?.version))}`);
  // The load report each catalog replica put on its last answer, as the gateway's balancer read it.
  const stats = await (await gateway.request({ method: 'GET', path: '/_meshlet/stats' })).body.json();
  const reports = stats.services.catalog.endpoints.map((e) => `${e.labels?.replica ?? e.url}: ${e.reportedLoad ? `rif ${e.reportedLoad.rif}, cpu ${e.reportedLoad.utilization}, ${Math.round(e.reportedLoad.qps)} req/s` : 'none'}`);
  console.log(`   load reports the gateway read (catalog): ${reports.join('; ')}`);

  console.log('\n2. canary — 20 requests with x-canary: true');
  const r2 = [];
  for (let i = 0; i < 20; i++) r2.push(await call('/products/7', { 'x-canary': 'true' }));
  console.log(`   versions: ${fmt(tally(r2, (r) => r.body.catalog?.version))}`);

  console.log('\n3. one request, gateway → catalog → inventory: the request id and the deadline each replica saw');
  console.log('   (no header copied by hand; a try from the gateway to catalog may take 1 s, from catalog to inventory 0.5 s: perTryTimeoutMs)');
  const traced = await call('/products/42', { 'x-request-id': 'demo-42' });
  for (const s of [traced.body.seen, traced.body.catalog?.seen, traced.body.catalog?.inventory?.seen]) {
    if (s) console.log(`   ${s.replica.padEnd(12)} request id ${s.requestId}, ${s.deadlineMs === null ? 'no deadline' : `${s.deadlineMs} ms left`}`);
  }

  console.log('\n4. a replica killed and restarted while traffic flows (inventory-2, then catalog-1)');
  const r3 = [];
  const stop = loadLoop(6, 25, (r) => r3.push(r)); // ~200 requests/s: under the gateway rate limit
  await sleep(500);
  await kill('inventory-2');
  await sleep(700);
  await restart('inventory-2');
  await sleep(300);
  await kill('catalog-1');
  await sleep(700);
  await restart('catalog-1');
  await sleep(500);
  await stop();
  const failed3 = r3.filter((r) => r.status !== 200);
  console.log(`   ${r3.length} requests, ${failed3.length} errors seen by the caller${failed3.length ? ': ' + fmt(tally(failed3, (r) => `${r.status} ${r.body.error}`)) : ''}`);

  // The main path's limit (400/s) is sized so the traffic above never meets it; /export has a
  // budget of 100 at once and then one per 10 s, so the outcome does not depend on how fast this runs.
  console.log('\n5. the gateway\'s rate limit on /export (burst 100, then 1 per 10 s) — 300 requests at once');
  const r4 = await Promise.all(Array.from({ length: 300 }, (_, i) => call(`/export/${i}`)));
  console.log(`   statuses: ${fmt(tally(r4, (r) => String(r.status)))}`);
  return failed3.length;
}

/** A restart that fails: said, unless everything is stopping (then the replica was stopped on purpose). */
const restartFailed = (name) => (err) => {
  if (!stopping) console.log(`   ! ${name} did not come back: ${err.message}`);
};

async function chaos() {
  console.log(`\nchaos: replicas are killed, drained (SIGTERM), restarted and slowed while a load loop runs${Number.isFinite(CHAOS_SECONDS) ? ` for ${CHAOS_SECONDS} s` : ' — Ctrl-C to stop'}`);
  let window = [];
  const stop = loadLoop(6, 25, (r) => window.push(r)); // ~200 requests/s: under the gateway rate limit
  const victims = ['inventory-1', 'inventory-2', 'inventory-3', 'catalog-1', 'catalog-2'];
  let totalErrors = 0;
  for (let second = 1; second <= CHAOS_SECONDS && !stopping; second++) {
    if (second % 4 === 1) {
      const v = victims[Math.floor(Math.random() * victims.length)];
      void kill(v).then(() => sleep(1_500)).then(() => !stopping && restart(v)).catch(restartFailed(v));
      console.log(`   ! killed ${v} (restart in 1.5 s)`);
    }
    if (second % 8 === 3) {
      // A rolling restart's step: SIGTERM, the replica drains and exits, it comes back. As a
      // rollout would, only a replica whose role and version have another one up.
      const up = (v) => replicas.get(v)?.ready;
      const spare = (v) => [...replicas].some(([n, r]) => n !== v && up(n) && r.role === replicas.get(v).role && r.version === replicas.get(v).version);
      const candidates = victims.filter((v) => up(v) && spare(v));
      const v = candidates[Math.floor(Math.random() * candidates.length)];
      if (v !== undefined) {
        void terminate(v).then(() => !stopping && restart(v)).catch(restartFailed(v));
        console.log(`   ! drained ${v} (SIGTERM: readiness fails, in-flight requests finish, then it exits and restarts)`);
      }
    }
    if (second % 6 === 3) {
      const v = victims[Math.floor(Math.random() * victims.length)];
      replicas.get(v)?.child.send?.({ slowMs: 200 });
      setTimeout(() => replicas.get(v)?.child.send?.({ slowMs: 0 }), 2_000).unref();
      console.log(`   ! slowed ${v} by 200 ms for 2 s`);
    }
    await sleep(1_000);
    const w = window;
    window = [];
    const errors = w.filter((r) => r.status !== 200).length;
    totalErrors += errors;
    const share = tally(w, (r) => r.body.catalog?.inventory?.replica);
    const why = errors ? ` (${fmt(tally(w.filter((r) => r.status !== 200), (r) => `${r.status} ${r.body.error}`))})` : '';
    console.log(`   t=${String(second).padStart(3)}s  requests ${String(w.length).padStart(4)}  errors ${errors}${why}  p99 ${p99(w.map((r) => r.ms)).toFixed(1)} ms  inventory share: ${fmt(share)}`);
  }
  await stop();
  return totalErrors;
}

try {
  for (let i = 1; i <= 3; i++) await start(`inventory-${i}`, 'inventory');
  writeEndpoints(); // before the catalogs start: their discovery reads it at once
  await start('catalog-1', 'catalog', 'v1');
  await start('catalog-2', 'catalog', 'v1');
  await start('catalog-3', 'catalog', 'v2');
  writeEndpoints();
  const gw = await start('gateway', 'gateway');
  gateway = new Pool(`http://127.0.0.1:${gw.port}`, { connections: 64 });
  // Ready when the gateway answers through the whole chain.
  for (let i = 0; i < 50 && (await call()).status !== 200; i++) await sleep(100);

  const url = `http://127.0.0.1:${gw.port}`;
  console.log('meshlet example trio is up (all on 127.0.0.1):');
  console.log(`  gateway    ${url}`);
  for (const [name, r] of replicas) if (r.role !== 'gateway') console.log(`  ${name.padEnd(11)} http://127.0.0.1:${r.port}  (${r.role} ${r.version})`);
  console.log('try:');
  console.log(`  curl ${url}/products/42`);
  console.log(`  curl -H 'x-canary: true' ${url}/products/42`);
  console.log(`  curl ${url}/export/42   (rate limited: burst 100, then 1 per 10 s)`);
  console.log(`  open ${url}/_meshlet   (live view)`);

  // Keep the endpoints file in step with replicas that restart on their port.
  setInterval(writeEndpoints, 250).unref();

  const errors = CHAOS ? await chaos() : await demo();
  if (EXIT) {
    await gateway.close();
    await stopAll();
    console.log(`\ndone: ${errors} errors seen by the caller; every replica stopped.`);
    process.exit(errors === 0 ? 0 : 1);
  }
  console.log('\nserving — Ctrl-C stops everything');
} catch (err) {
  console.error(err);
  await stopAll();
  process.exit(1);
}
