// A service's `requests` and `failures` are its own counts of the requests that ended in it — one
// per `request` event, whatever their attempts (retries are `retries`) — and never go back when
// endpoints leave. Per endpoint, `requests` and `failures` count attempts.
import http from 'node:http';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(2);
});

afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
});

async function call(m: Mesh): Promise<number> {
  const res = await request('http://api/', { dispatcher: m.dispatcher });
  await res.body.dump();
  return res.statusCode;
}

test("a service counts requests and failed requests, not attempts; the counts stay when an endpoint leaves", async () => {
  mesh = createMesh({
    random: () => 0, // round robin starts at the first endpoint; back-off delays are 0
    services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', outlierDetection: false, circuitBreaker: false } },
  });
  const events: { status: number; attempts: number }[] = [];
  mesh.on('request', (e) => void events.push({ status: e.status, attempts: e.attempts }));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push(await call(mesh));
  for (const b of backends) b.fault = { kind: 'status', status: 503 };
  statuses.push(await call(mesh)); // tried 3 times: 2 retries
  for (const b of backends) b.fault = { kind: 'status', status: 500 };
  statuses.push(await call(mesh)); // a 500 is not retried
  for (const b of backends) b.fault = { kind: 'status', status: 404 };
  statuses.push(await call(mesh));
  expect(statuses).toEqual([200, 200, 200, 503, 500, 404]);

  const st = mesh.stats().services.api!;
  expect(events).toHaveLength(6);
  expect(events.map((e) => e.attempts)).toEqual([1, 1, 1, 3, 1, 1]);
  expect({ requests: st.requests, failures: st.failures, retries: st.retries }).toEqual({ requests: 6, failures: 2, retries: 2 });
  // Per endpoint: attempts.
  expect(st.endpoints.reduce((n, e) => n + e.requests, 0)).toBe(8);
  expect(st.endpoints.reduce((n, e) => n + e.failures, 0)).toBe(4);

  // Your own abort is a request, not a failure of the service.
  for (const b of backends) b.fault = { kind: 'hang' };
  const gaveUp = new AbortController();
  const abandoned = request('http://api/', { dispatcher: mesh.dispatcher, signal: gaveUp.signal }).catch((e: unknown) => e);
  await vi.waitFor(() => expect(backends[0]!.received.length + backends[1]!.received.length).toBe(9));
  gaveUp.abort(new Error('gave up'));
  expect(await abandoned).toMatchObject({ message: 'gave up' });
  expect(mesh.stats().services.api).toMatchObject({ requests: 7, failures: 2 });

  mesh.setEndpoints('api', [backends[0]!.url]);
  const after = mesh.stats().services.api!;
  expect({ requests: after.requests, failures: after.failures }).toEqual({ requests: 7, failures: 2 });
});

test('an endpoint removed and added back while it drains: listed twice, the draining copy apart, the new one from 0', async () => {
  let release!: () => void;
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  backends[0]!.handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    release = () => res.end('late');
    arrive();
  };
  const [a, b] = backends.map((x) => x.url) as [string, string];
  mesh = createMesh({ services: { api: { endpoints: [a], outlierDetection: false } } });
  const pending = request('http://api/', { dispatcher: mesh.dispatcher });
  await arrived;
  mesh.setEndpoints('api', [b]); // a drains its request in flight
  mesh.setEndpoints('api', [a, b]); // a is back, a new endpoint
  const listed = mesh.stats().services.api!.endpoints.map((e) => ({ url: e.url, state: e.state, inFlight: e.inFlight, requests: e.requests }));
  expect(listed).toEqual(
    expect.arrayContaining([
      { url: a, state: 'healthy', inFlight: 0, requests: 0 },
      { url: b, state: 'healthy', inFlight: 0, requests: 0 },
      { url: a, state: 'draining', inFlight: 1, requests: 0 },
    ]),
  );
  expect(listed).toHaveLength(3);
  release();
  const res = await pending;
  expect(await res.body.text()).toBe('late');
  const st = mesh.stats().services.api!;
  // The request counts for the service, whichever copy of `a` served it and whether that copy is still listed.
  expect({ requests: st.requests, failures: st.failures }).toEqual({ requests: 1, failures: 0 });
  const fresh = st.endpoints.find((e) => e.url === a && e.state === 'healthy')!;
  expect({ inFlight: fresh.inFlight, requests: fresh.requests }).toEqual({ inFlight: 0, requests: 0 });
});

test('a response the caller drops, or whose body fails, keeps its status in the request event; status 0 is for no response', async () => {
  const open: http.ServerResponse[] = [];
  backends[0]!.handler = (req, res) => {
    req.resume();
    open.push(res);
    res.writeHead(req.url === '/bad' ? 503 : 200, { 'content-type': 'text/plain' });
    // /cut: the headers and a first chunk are flushed, then the connection ends mid-body (FIN).
    res.write('first chunk', () => (req.url === '/cut' ? res.socket?.end() : undefined));
  };
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], retry: false, outlierDetection: false, circuitBreaker: false } } });
  const events: { status: number; error: string | undefined }[] = [];
  mesh.on('request', (e) => void events.push({ status: e.status, error: e.error }));
  for (const path of ['/ok', '/bad']) {
    const r = await request(`http://api${path}`, { dispatcher: mesh.dispatcher });
    const closed = new Promise((resolve) => r.body.once('close', resolve));
    r.body.destroy();
    await closed;
  }
  const cut = await request('http://api/cut', { dispatcher: mesh.dispatcher });
  await cut.body.text().catch(() => undefined);
  await until(() => events.length === 3);
  for (const res of open) res.destroy();
  expect(events).toEqual([
    { status: 200, error: 'aborted' },
    { status: 503, error: 'aborted' },
    { status: 200, error: 'UPSTREAM_FAILED' },
  ]);
  expect(mesh.stats().services.api!.failures).toBe(2); // the 503, and the body cut short
});
