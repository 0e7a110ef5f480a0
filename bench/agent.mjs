// The mesh's http.Agent (issue 15): what a node:http request through the mesh costs. One backend
// in another process, c=64 (BENCH_CONCURRENCY), three contenders:
//   (1) http.request with a plain http.Agent (keepAlive, maxSockets = c) straight to the backend —
//       what a node:http client costs without a mesh;
//   (2) undici request(url, { dispatcher: mesh.dispatcher }) — the mesh's own fastest path;
//   (3) http.request with mesh.agent() to http://api/ — node:http through the mesh (in-process
//       connection, request parsed by an unbound http.Server, dispatched through the mesh).
// Client CPU per request (process.cpuUsage ÷ requests) and req/s; the ratios of (3) to (1) and to
// (2). As in hot-path.mjs, the contenders alternate in short epochs within one load run
// (support/load.mjs runAlternating) and a ratio is the median over blocks of BLOCK cycles, with
// its interquartile range: runs taken seconds apart on this shared machine disagree by more
// than the differences measured. No target: the numbers say what the agent's extra parsing costs.
// Run alone: node bench/agent.mjs   (knobs: BENCH_CONCURRENCY, BENCH_AGENT_CYCLES, BENCH_AGENT_EPOCH_MS)
import http from 'node:http';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { fmt, requestSender, runAlternating } from './support/load.mjs';
import { median, quantile } from './hot-path.mjs';

const BLOCK = 4;

/** A `send` through `http.get(url, { agent })`, reading the whole response. */
function httpSender(url, agent) {
  return () =>
    new Promise((resolve, reject) => {
      const req = http.get(url, { agent }, (res) => {
        res.on('error', reject);
        res.on('end', () => resolve(res.statusCode));
        res.resume();
      });
      req.on('error', reject);
    });
}

const totals = (list) => {
  const sum = (f) => list.reduce((a, e) => a + f(e), 0);
  return { rps: sum((e) => e.ok) / sum((e) => e.elapsedS), cpuUsPerReq: sum((e) => e.cpuUs) / sum((e) => e.requests) };
};
const blocks = (list) => Array.from({ length: Math.ceil(list.length / BLOCK) }, (_, b) => totals(list.slice(b * BLOCK, b * BLOCK + BLOCK)));
const ratios = (a, b, f) => {
  const x = blocks(a);
  const y = blocks(b);
  return x.map((v, i) => f(v, y[i]));
};
const spread = (xs, d) => `${fmt(quantile(xs, 0.25), d)}–${fmt(quantile(xs, 0.75), d)}`;

export async function agentBench({ concurrency = 64, epochMs = 250, cycles = 24 } = {}) {
  const backends = await startBackends([{}]);
  const url = backends.urls[0];
  const plain = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const mesh = createMesh({ services: { api: { endpoints: [url], pool: { connections: concurrency } } } });
  const meshAgent = mesh.agent({ maxSockets: concurrency });
  const contenders = [
    { name: 'http.Agent → backend (no mesh)', send: httpSender(`${url}/`, plain) },
    { name: 'undici.request → mesh.dispatcher', send: requestSender(mesh.dispatcher, 'http://api/') },
    { name: 'http.request → mesh.agent()', send: httpSender('http://api/', meshAgent) },
  ];
  let run;
  try {
    run = await runAlternating(
      contenders.map((c) => c.send),
      { concurrency, epochMs, cycles },
    );
  } finally {
    plain.destroy();
    meshAgent.destroy();
    await mesh.close();
    await backends.close();
  }
  const [direct, undici, agent] = run.epochs;
  const rows = contenders.map((c, i) => {
    const list = run.epochs[i];
    return { name: c.name, ...totals(list), p99Ms: run.p99Ms[i], errors: list.reduce((a, e) => a + e.failed, 0) };
  });
  const vs = (base) => ({
    cpu: ratios(agent, base, (a, b) => a.cpuUsPerReq / b.cpuUsPerReq),
    rps: ratios(agent, base, (a, b) => a.rps / b.rps),
  });
  const vsDirect = vs(direct);
  const vsUndici = vs(undici);
  console.log(`\n(agent) node:http through mesh.agent() — 1 endpoint (backend in another process), c=${concurrency};`);
  console.log(`    the contenders alternate in ${epochMs} ms epochs, ${cycles} cycles (order rotates); ratios: median [interquartile range] of ${Math.ceil(cycles / BLOCK)} blocks of ${BLOCK} cycles`);
  console.log('| contender | req/s | client CPU µs/req | p99 ms | errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.p99Ms, 2)} | ${r.errors} |`);
  console.log(`    mesh.agent() vs a plain http.Agent straight to the backend: CPU/req **${fmt(median(vsDirect.cpu), 2)}×** [${spread(vsDirect.cpu, 2)}], req/s **${fmt(median(vsDirect.rps), 2)}×** [${spread(vsDirect.rps, 2)}]`);
  console.log(`    mesh.agent() vs undici.request through the mesh:          CPU/req **${fmt(median(vsUndici.cpu), 2)}×** [${spread(vsUndici.cpu, 2)}], req/s **${fmt(median(vsUndici.rps), 2)}×** [${spread(vsUndici.rps, 2)}]`);
  console.log('    client CPU: user + system of this process per request (the backend runs in its own process).');
  return { concurrency, epochMs, cycles, rows, vsDirect: { cpu: median(vsDirect.cpu), rps: median(vsDirect.rps) }, vsUndici: { cpu: median(vsUndici.cpu), rps: median(vsUndici.rps) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await agentBench({
    ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
    ...(process.env.BENCH_AGENT_CYCLES ? { cycles: Number(process.env.BENCH_AGENT_CYCLES) } : {}),
    ...(process.env.BENCH_AGENT_EPOCH_MS ? { epochMs: Number(process.env.BENCH_AGENT_EPOCH_MS) } : {}),
  });
}
