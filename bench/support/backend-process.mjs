// Backends for HTTP benchmarks, in their own process (so the load generator and meshlet do not
// share a core with them). argv[2]: JSON list of { delayMs, jitterMs, failRate, failStatus } — a
// fixed delay, plus up to jitterMs of uniform jitter, and the share of requests (0–1) answered with
// failStatus (default 503). Reports { ports } over IPC; accepts { index, delayMs?, jitterMs?,
// failRate?, hang?, stop?, start? } to change a backend while it runs, and acks each with { ack }.
// Exits when the parent goes away (the IPC channel closes), so it cannot outlive a killed bench.
import http from 'node:http';

const specs = JSON.parse(process.argv[2] ?? '[{}]');
const state = specs.map((s) => ({
  delayMs: s.delayMs ?? 0,
  jitterMs: s.jitterMs ?? 0,
  failRate: s.failRate ?? (s.fail ? 1 : 0),
  failStatus: s.failStatus ?? 503,
  hang: false,
}));
const servers = [];
const ports = [];
const body = Buffer.from('{"ok":true}');

function handler(i) {
  return (req, res) => {
    req.resume();
    const s = state[i];
    if (s.hang) return; // never answers
    const reply = () => {
      if (s.failRate > 0 && Math.random() < s.failRate) {
        res.writeHead(s.failStatus, { 'content-length': '0' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    };
    const d = s.delayMs + (s.jitterMs ? Math.random() * s.jitterMs : 0);
    if (d > 0) setTimeout(reply, d);
    else reply();
  };
}

function listen(i, port = 0) {
  const server = http.createServer(handler(i));
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
