// The inbound side (issue 14 §1): what mesh.inbound() costs a server per request, against the
// same handler bare. The servers run in a child process (this file with --server), one port per
// contender, all with the same handler (`res.end('ok')`, so the wrapper's cost is not hidden in
// the handler's):
//   (0) bare, raw              a handler that never reads req.headers (Node then never builds it)
//   (1) bare                   http.createServer(handler), the handler reading req.headers as
//                              nearly every handler and framework does — the baseline
//   (2) mesh.inbound           defaults: context, deadline, load report on every response
//   (3) mesh.inbound, no report  loadReports: false
//   (4) mesh.inbound + limits  a concurrency limit and a token bucket that never refuse
// The client (this process, undici Pool, c=64 by default) alternates between them in short epochs
// (support/load.mjs runAlternating); the server's CPU per request is read from /proc for each
// epoch, summed over all of a contender's epochs and divided by its requests. Ratios are to (1).
// Also: the cost the inbound-context layer adds to an outgoing call made outside any served
// request once an inbound entry point exists — one AsyncLocalStorage.getStore() — in ns.
// Measured apart (2026-12-01, same machine): an AsyncLocalStorage.run around the bare handler
// costs +8–10 µs per request by itself — work Node does for every async step taken while a store
// is active — so most of (3)'s cost is the context any request-scoped store pays; a response
// header costs a few µs more (Node's header path), which is (2) − (3).
// No target: the numbers say what the door costs. Run alone: node bench/inbound.mjs
//   (knobs: BENCH_CONCURRENCY, BENCH_INBOUND_CYCLES, BENCH_INBOUND_EPOCH_MS)
import { AsyncLocalStorage } from 'node:async_hooks';
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { pidsCpuUs } from './support/cpu.mjs';
import { fmt, runAlternating, sender } from './support/load.mjs';

const VARIANTS = [
  { name: 'bare handler', options: null, raw: true },
  { name: 'bare handler reading req.headers', options: null },
  { name: 'mesh.inbound (defaults: load reports on)', options: {} },
  { name: 'mesh.inbound, loadReports: false', options: { loadReports: false } },
  { name: 'mesh.inbound + limits + rate limit', options: { limits: { maxRequests: 100_000 }, rateLimit: { requestsPerSecond: 1e9 } } },
];

async function serveVariants() {
  const { createMesh } = await import('../dist/index.mjs');
  const mesh = createMesh({ services: {} });
  // Node builds req.headers from the raw headers on first read: nearly every handler (and every
  // framework) reads it, and so does the wrapper; the raw variant shows what that costs.
  const raw = (_req, res) => res.end('ok');
  const handler = (req, res) => res.end(req.headers.host === undefined ? 'no host' : 'ok');
  const ports = [];
  for (const v of VARIANTS) {
    const server = http.createServer(v.raw ? raw : v.options === null ? handler : mesh.inbound(handler, v.options));
    server.keepAliveTimeout = 60_000;
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.push(server.address().port);
  }
  process.send({ ports });
  process.on('disconnect', () => process.exit(0));
}

/** ns per `getStore()` outside any context, the layer's whole cost for a call made outside a served request. */
function getStoreNs() {
  const storage = new AsyncLocalStorage();
  let sink = 0;
  const n = 2_000_000;
  for (let i = 0; i < n / 10; i++) if (storage.getStore() !== undefined) sink++;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (storage.getStore() !== undefined) sink++;
  return { ns: Number(process.hrtime.bigint() - t0) / n, sink };
}

export async function inboundBench({ concurrency = 64, epochMs = 250, cycles = 24 } = {}) {
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  let run;
  const serverCpu = VARIANTS.map(() => ({ us: 0, requests: 0 }));
  try {
    const { ports } = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`inbound bench server exited (${code})`)));
    });
    const pools = ports.map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: concurrency }));
    let cpu0 = 0;
    try {
      run = await runAlternating(
        pools.map((pool, i) => sender(pool, `http://127.0.0.1:${ports[i]}`)),
        {
          concurrency,
          epochMs,
          cycles,
          onEpochStart: () => void (cpu0 = pidsCpuUs([child.pid])),
          onEpochEnd: () => pidsCpuUs([child.pid]) - cpu0,
        },
      );
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  } finally {
    process.off('exit', kill);
    child.disconnect();
    kill();
  }
  run.epochs.forEach((list, i) => {
    for (const e of list) {
      serverCpu[i].us += e.extra;
      serverCpu[i].requests += e.requests;
    }
  });
  const rows = VARIANTS.map((v, i) => {
    const list = run.epochs[i];
    const ok = list.reduce((a, e) => a + e.ok, 0);
    const s = list.reduce((a, e) => a + e.elapsedS, 0);
    return { name: v.name, rps: ok / s, serverCpuUsPerReq: serverCpu[i].us / serverCpu[i].requests, p99Ms: run.p99Ms[i], errors: list.reduce((a, e) => a + e.failed, 0) };
  });
  const store = getStoreNs();
  console.log(`\n(inbound) what mesh.inbound() costs a server per request — handler res.end('ok'), server in its own process, c=${concurrency};`);
  console.log(`    the contenders alternate in ${epochMs} ms epochs, ${cycles} cycles (order rotates); server CPU from /proc over every epoch of a contender`);
  const base = rows[1];
  console.log('| server | req/s | × bare | server CPU µs/req | × bare | p99 ms | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.rps / base.rps, 2)} | ${fmt(r.serverCpuUsPerReq, 1)} | ${fmt(r.serverCpuUsPerReq / base.serverCpuUsPerReq, 2)} | ${fmt(r.p99Ms, 2)} | ${r.errors} |`);
  }
  console.log('    × bare: to the bare handler reading req.headers');
  console.log(`    an outgoing call made outside any served request pays one AsyncLocalStorage.getStore(): ${fmt(store.ns, 1)} ns`);
  return { concurrency, epochMs, cycles, rows, getStoreNs: store.ns };
}

if (process.argv.includes('--server')) await serveVariants();
else if (import.meta.url === `file://${process.argv[1]}`) {
  await inboundBench({
    ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
    ...(process.env.BENCH_INBOUND_CYCLES ? { cycles: Number(process.env.BENCH_INBOUND_CYCLES) } : {}),
    ...(process.env.BENCH_INBOUND_EPOCH_MS ? { epochMs: Number(process.env.BENCH_INBOUND_EPOCH_MS) } : {}),
  });
}
