// Backends for HTTP benchmarks, in their own process (so the load generator and meshlet do not
// share a core with them). argv[2]: JSON list of { delayMs, jitterMs, failRate, failStatus, workers }
// — a fixed delay, plus up to jitterMs of uniform jitter, the share of requests (0–1) answered with
// failStatus (default 503), and `workers`: requests served at once (the rest wait in a FIFO queue,
// as in a worker-limited server; 0 = no limit), and `orca`: with workers, every response carries
// an ORCA load report (`endpoint-load-metrics: TEXT cpu_utilization:…, rps_fractional:…`: busy
// workers / workers and completions per second, over the last 500 ms). Reports { ports } over IPC; accepts { index,
// delayMs?, jitterMs?, failRate?, workers?, hang?, stop?, start? } to change a backend while it
// runs, and acks each with { ack }.
// `inbound: true` serves the backend through meshlet's own `mesh.inbound()` (from dist/, one mesh
// per backend), so its responses carry the load report meshlet's inbound side makes (process CPU,
// event-loop utilization, requests in flight); a request whose path starts with /n goes through a
// second entry point of the same mesh with `loadReports: false` (no report, same RIF count).
// `cpuMs`: after its delay, each request keeps the CPU busy that long before it is answered (a
// replica slow because it is overloaded: its requests queue on its event loop).
// Exits when the parent goes away (the IPC channel closes), so it cannot outlive a killed bench.
import http from 'node:http';

const specs = JSON.parse(process.argv[2] ?? '[{}]');
const { createMesh } = specs.some((s) => s.inbound) ? await import('../../dist/index.mjs') : {};
const state = specs.map((s) => ({
  delayMs: s.delayMs ?? 0,
  jitterMs: s.jitterMs ?? 0,
  failRate: s.failRate ?? (s.fail ? 1 : 0),
  failStatus: s.failStatus ?? 503,
  workers: s.workers ?? 0,
  cpuMs: s.cpuMs ?? 0,
  inbound: s.inbound === true,
  orca: s.orca === true,
  report: 'TEXT cpu_utilization:0, rps_fractional:0',
  busyMs: 0,
  since: performance.now(),
  done: 0,
  busy: 0,
  waiting: [],
  hang: false,
}));

/** Count busy worker time up to now (before `busy` changes). */
function account(s) {
  const now = performance.now();
  s.busyMs += s.busy * (now - s.since);
  s.since = now;
}
// Load reports: every 500 ms, from the busy time and completions of the last 500 ms.
setInterval(() => {
  for (const s of state) {
    if (!s.orca || s.workers === 0) continue;
    account(s);
    s.report = `TEXT cpu_utilization:${(s.busyMs / (500 * s.workers)).toFixed(4)}, rps_fractional:${s.done * 2}`;
    s.busyMs = 0;
    s.done = 0;
  }
}, 500).unref();

/** Start waiting requests while a worker is free. */
function drain(s) {
  while (s.waiting.length > 0 && (s.workers === 0 || s.busy < s.workers)) s.waiting.shift()();
}
const servers = [];
const ports = [];
const body = Buffer.from('{"ok":true}');

function handler(i) {
  return (req, res) => {
    req.resume();
    const s = state[i];
    if (s.hang) return; // never answers
    const reply = () => {
      if (s.cpuMs > 0) {
        const end = performance.now() + s.cpuMs;
        while (performance.now() < end); // busy: the CPU-bound part of the request
      }
      if (s.failRate > 0 && Math.random() < s.failRate) {
        res.writeHead(s.failStatus, { 'content-length': '0' });
        res.end();
        return;
      }
      const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
      if (s.orca) headers['endpoint-load-metrics'] = s.report;
      res.writeHead(200, headers);
      res.end(body);
    };
    const serve = () => {
      const d = s.delayMs + (s.jitterMs ? Math.random() * s.jitterMs : 0);
      if (s.workers === 0) return d > 0 ? setTimeout(reply, d) : reply();
      account(s);
      s.busy++;
      setTimeout(() => {
        account(s);
        s.busy--;
        s.done++;
        if (!res.destroyed) reply();
        drain(s);
      }, d);
    };
    if (s.workers > 0 && s.busy >= s.workers) s.waiting.push(serve);
    else serve();
  };
}

const meshes = [];
function listen(i, port = 0) {
  let h = handler(i);
  if (state[i].inbound) {
    const mesh = (meshes[i] ??= createMesh({ services: {} }));
    const reporting = mesh.inbound(h);
    const silent = mesh.inbound(h, { loadReports: false });
    h = (req, res) => (req.url.startsWith('/n') ? silent : reporting)(req, res);
  }
  const server = http.createServer(h);
  server.keepAliveTimeout = 30_000;
  servers[i] = server;
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
}

for (let i = 0; i < specs.length; i++) ports[i] = await listen(i);
process.send({ ports });

process.on('message', async (m) => {
  const s = state[m.index];
  if (!s) return;
  if (m.delayMs !== undefined) s.delayMs = m.delayMs;
  if (m.jitterMs !== undefined) s.jitterMs = m.jitterMs;
  if (m.failRate !== undefined) s.failRate = m.failRate;
  if (m.cpuMs !== undefined) s.cpuMs = m.cpuMs;
  if (m.workers !== undefined) {
    s.workers = m.workers;
    drain(s);
  }
  if (m.hang !== undefined) s.hang = m.hang;
  if (m.stop) {
    servers[m.index].closeAllConnections();
    await new Promise((r) => servers[m.index].close(r));
  }
  if (m.start) await listen(m.index, ports[m.index]);
  process.send({ ack: m.seq });
});

// SIGTERM from the parent: close every server (and its keep-alive connections), then exit.
process.on('SIGTERM', () => {
  for (const s of servers) s?.closeAllConnections();
  Promise.all(servers.map((s) => new Promise((r) => (s?.listening ? s.close(r) : r())))).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
process.on('disconnect', () => process.exit(0));
