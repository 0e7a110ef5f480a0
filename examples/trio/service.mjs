// One replica of the trio. ROLE says which: inventory, catalog (VERSION v1|v2) or gateway.
// Every outgoing call goes through meshlet; endpoints come from the runner's endpoints file.
// Every server is wrapped with mesh.inbound: the request id and the deadline flow down the chain
// with no header copied by hand (each answer says what its replica saw), responses carry load
// reports, and SIGTERM drains (mesh.handleSignals) before the process ends.
import http from 'node:http';
import { createMesh, inboundRequest, registerDiscovery } from 'meshletjs';
import * as meshlet from 'meshletjs';
import { fileDiscovery } from './file-discovery.mjs';

// TRIO_BALANCER names a balancer for every service; unset, each gets the mesh's default, but the
// gateway's catalog service, whose balancer reads the load reports the catalog replicas send
// (prequal with reportedRif: a catalog replica's requests in flight are all awaiting inventory,
// so it counts every one of them — the case reportedRif is for).
const { ROLE, REPLICA, VERSION = 'v1', ENDPOINTS_FILE, TRIO_BALANCER: BALANCER } = process.env;
let slowMs = 0;
let failRate = 0;
process.on('message', (m) => {
  if (m?.slowMs !== undefined) slowMs = m.slowMs;
  if (m?.failRate !== undefined) failRate = m.failRate;
});

registerDiscovery('file', fileDiscovery);
const discovery = (service) => ({ type: 'file', path: ENDPOINTS_FILE, service });
// Every replica answers /readyz (mesh.probes): 503 from the moment it starts draining. Checked
// every 250 ms, a draining replica gets no new request before it stops listening (drain's
// delayMs below), and a passing check ends an outlier ejection at once — a killed replica that
// restarted on its port is back within a check, not after the 30 s ejection.
const healthCheck = { path: '/readyz', intervalMs: 250, timeoutMs: 200, healthyThreshold: 1, unhealthyThreshold: 1 };

const mesh =
  ROLE === 'gateway'
    ? createMesh({
        services: {
          catalog: {
            discovery: discovery('catalog'),
            balancer: BALANCER ?? { type: 'prequal', reportedRif: true },
            timeoutMs: 3_000,
            retry: { attempts: 2, perTryTimeoutMs: 1_000 },
            // A request still unanswered after 60 ms (healthy ones take a few) gets a copy on another
            // replica: a replica slowed by 200 ms costs one hedge delay, not 200 ms (off by default;
            // see the README's "Why hedging is off by default"). Catalog hedges its inventory calls at 25 ms.
            hedge: { delayMs: 60 },
            healthCheck,
            rateLimit: { requestsPerSecond: 400, burst: 100 },
            subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
            routes: [
              { name: 'canary', match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2' },
              { name: 'split', split: { v1: 90, v2: 10 } },
            ],
          },
          // The same replicas behind a tight budget, for /export: a burst of 100, then one request
          // every 10 s. The demo's 300 requests at once see exactly what a bucket does (100 pass, the
          // rest get 429) however fast the machine is: refilling 200 tokens would take 2,000 s.
          'catalog-export': {
            discovery: discovery('catalog'),
            balancer: BALANCER,
            timeoutMs: 3_000,
            healthCheck,
            rateLimit: { requestsPerSecond: 0.1, burst: 100 },
          },
        },
        unknownHosts: 'reject',
      })
    : ROLE === 'catalog'
      ? createMesh({
          services: {
            inventory: { discovery: discovery('inventory'), balancer: BALANCER, timeoutMs: 2_000, retry: { attempts: 2, perTryTimeoutMs: 500 }, hedge: { delayMs: 25 }, healthCheck },
          },
          unknownHosts: 'reject',
        })
      : createMesh({ services: {} }); // inventory calls nothing: its mesh only serves

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const live = ROLE === 'gateway' && typeof meshlet.liveView === 'function' ? meshlet.liveView(mesh) : null;

/** What this replica saw of the request it serves: the request id and the time its caller left it. */
const seen = () => {
  const r = inboundRequest();
  const left = r?.remainingMs() ?? Infinity;
  return { replica: REPLICA, requestId: r?.requestId, deadlineMs: Number.isFinite(left) ? Math.round(left) : null };
};

// x-canary travels on to the gateway's call to catalog, where a route matches it.
const handler = mesh.inbound(async (req, res) => {
  try {
    if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
    if (failRate && Math.random() < failRate) return json(res, 503, { error: 'injected failure', replica: REPLICA });
    const id = req.url.split('/').pop();
    if (ROLE === 'inventory') return json(res, 200, { id, stock: id.length * 7, replica: REPLICA, seen: seen() });
    if (ROLE === 'catalog') {
      const mine = seen();
      const inv = await mesh.fetch(`http://inventory/stock/${id}`);
      const inventory = await inv.json();
      return json(res, inv.status, { id, name: `product ${id}`, version: VERSION, replica: REPLICA, seen: mine, inventory });
    }
    // gateway
    if (req.url.startsWith('/export/')) {
      const r = await mesh.fetch(`http://catalog-export/products/${id}`);
      return json(res, r.status, { via: REPLICA, catalog: await r.json() });
    }
    if (!req.url.startsWith('/products/')) return json(res, 404, { error: 'try /products/42, /export/42 or /_meshlet' });
    const mine = seen();
    const r = await mesh.fetch(`http://catalog/products/${id}`);
    return json(res, r.status, { via: REPLICA, seen: mine, catalog: await r.json() });
  } catch (err) {
    const code = err?.cause?.code ?? err?.code;
    if (code === 'RATE_LIMITED') return json(res, 429, { error: 'rate limited', replica: REPLICA });
    return json(res, 502, { error: String(code ?? err?.message), replica: REPLICA });
  }
}, { name: ROLE, propagate: ['x-canary'] });

const probes = mesh.probes();
const server = http.createServer((req, res) => live?.(req, res) || probes(req, res, () => handler(req, res)));

server.keepAliveTimeout = 5_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ ready: true, port: server.address().port });
});

const stop = async () => {
  server.closeAllConnections?.();
  server.close();
  await mesh.close({ graceMs: 1_000 });
  process.exit(0);
};
// SIGTERM drains: requests in flight finish (new ones get Connection: close, and a refused
// connection once the server stops listening), the mesh closes, then SIGTERM ends the process.
mesh.handleSignals({ servers: [server], graceMs: 2_000, delayMs: 300 });
process.on('SIGINT', () => {}); // the runner decides; it sends SIGTERM
process.on('disconnect', stop); // the runner is gone: never linger as an orphan
