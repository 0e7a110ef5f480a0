// Load reports (issue 14 §4): responses carry an ORCA report in endpoint-load-metrics (TEXT),
// read back with meshlet's own parser (src/load/orca.ts) and by a client mesh's balancer. The
// sampling window runs on fake timers and a test clock; CPU is burnt by CPU time, not by wall time.
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type InboundOptions, type Mesh } from '../../src/index.js';
import { readLoadReport, type LoadReport } from '../../src/load/orca.js';
import { until } from '../support/holding.js';
import { httpRequest } from '../support/http-client.js';
import { Gate, serve, type Served } from '../support/inbound.js';

let t = 0;
let mesh: Mesh;
let front: Served | undefined;
let gate: Gate;
const warnings: string[] = [];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  t = 0;
  warnings.length = 0;
  gate = new Gate();
  mesh = createMesh({ now: () => t, services: {}, logger: { warn: (m: string) => warnings.push(m), debug: () => {} } });
});

afterEach(async () => {
  vi.useRealTimers();
  await front?.close();
  front = undefined;
  await mesh.close();
});

/** Serve: `/hold` waits at the gate, `/fail` answers 500, anything else 200. */
async function start(options?: InboundOptions): Promise<Served> {
  front = await serve(
    mesh.inbound(async (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/hold') await gate.pass();
      res.writeHead(req.url === '/fail' ? 500 : 200).end('ok');
    }, options),
  );
  return front;
}

async function report(url: string): Promise<LoadReport> {
  const r = await httpRequest(url);
  const parsed = readLoadReport(r.headers as Record<string, string>);
  if (parsed?.type !== 'report') throw new Error(`no valid report: ${JSON.stringify(parsed)} from ${String(r.headers['endpoint-load-metrics'])}`);
  return parsed.report;
}

/** Burn at least `ms` of this process's CPU time (bounded by CPU time, whatever the machine's speed). */
function burnCpu(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return;
  }
}

test('every response carries a report meshlet reads; before the first window only rif, the other requests in flight', async () => {
  const s = await start();
  const held = [httpRequest(`${s.url}/hold`), httpRequest(`${s.url}/hold`)];
  await gate.arrived(2);
  const r = await httpRequest(`${s.url}/now`);
  expect(r.headers['endpoint-load-metrics']).toBe('TEXT named_metrics.rif:2');
  expect((await report(`${s.url}/now`)).namedMetrics).toEqual({ rif: 2 });
  gate.open();
  await Promise.all(held);
  await until(() => mesh.stats().inbound!.inFlight === 0);
  expect((await report(`${s.url}/now`)).namedMetrics).toEqual({ rif: 0 });
});

test("after a window: CPU as a share of the cores, event-loop utilization, request and error rates, the application's utilization", async () => {
  const s = await start({ loadReports: { intervalMs: 1000, applicationUtilization: () => 0.25 } });
  for (const path of ['/a', '/b', '/fail']) await httpRequest(`${s.url}${path}`);
  await until(() => mesh.stats().inbound!.requests === 3);
  burnCpu(200);
  t += 400; // the window: 400 ms on the mesh's clock
  vi.advanceTimersByTime(1000);
  const r = await report(`${s.url}/now`);
  expect(r.rpsFractional).toBe(7.5); // 3 responses in 0.4 s
  expect(r.eps).toBe(2.5); // 1 of them a 5xx
  expect(r.applicationUtilization).toBe(0.25);
  expect(r.cpuUtilization).toBeGreaterThanOrEqual(200 / 400 / availableParallelism() - 0.0001);
  expect(r.namedMetrics.eventloop_utilization).toBeGreaterThan(0);
  expect(r.namedMetrics.eventloop_utilization).toBeLessThanOrEqual(1);
  expect(r.namedMetrics.rif).toBe(0);
  // The next window starts from zero.
  t += 1000;
  vi.advanceTimersByTime(1000);
  const next = await report(`${s.url}/now`);
  expect(next.rpsFractional).toBe(1); // the one request of the last check, in 1 s
  expect(next.eps).toBe(0);
});

// A server refusing most of its requests must not look idle to its callers' weighted round robin
// (weight = qps / (utilization + eps / qps × penalty)): its refusals are responses, and errors.
test('the concurrency limit’s 503 refusals carry the report and count in it, as errors', async () => {
  const s = await start({ limits: { maxRequests: 1 }, loadReports: { intervalMs: 1000 } });
  const held = httpRequest(`${s.url}/hold`);
  await gate.arrived(1);
  for (let i = 0; i < 3; i++) {
    const r = await httpRequest(`${s.url}/x`);
    expect(r.status).toBe(503);
    expect(r.headers['endpoint-load-metrics']).toBe('TEXT named_metrics.rif:1');
  }
  gate.open();
  await held;
  await until(() => mesh.stats().inbound!.inFlight === 0);
  t += 1000;
  vi.advanceTimersByTime(1000);
  const r = await report(`${s.url}/now`);
  expect(r.rpsFractional).toBe(4); // the held request and the 3 refusals, in 1 s
  expect(r.eps).toBe(3);
});

test('the rate limit’s 429 refusals carry the report and count in it, as errors', async () => {
  // The clock stands still within the window: the bucket of 1 never refills.
  const s = await start({ rateLimit: { requestsPerSecond: 1, burst: 1 }, loadReports: { intervalMs: 1000 } });
  expect((await httpRequest(`${s.url}/x`)).status).toBe(200);
  for (let i = 0; i < 2; i++) {
    const r = await httpRequest(`${s.url}/x`);
    expect(r.status).toBe(429);
    expect(r.headers['endpoint-load-metrics']).toBe('TEXT named_metrics.rif:0');
  }
  await until(() => mesh.stats().inbound!.inFlight === 0);
  t += 1000;
  vi.advanceTimersByTime(1000);
  const r = await report(`${s.url}/now`);
  expect(r.rpsFractional).toBe(3);
  expect(r.eps).toBe(2);
});

test('loadReports: false sends none', async () => {
  const s = await start({ loadReports: false });
  expect((await httpRequest(`${s.url}/`)).headers['endpoint-load-metrics']).toBeUndefined();
});

test.each([
  ['throws', () => { throw new Error('gauge broken'); }, /threw: gauge broken/],
  ['returns a negative number', () => -1, /returned -1/],
  ['returns NaN', () => NaN, /returned NaN/],
])('an applicationUtilization that %s is left out of the report, with one warning', async (_what, fn, why) => {
  const s = await start({ loadReports: { applicationUtilization: fn as () => number } });
  for (let i = 0; i < 2; i++) {
    t += 1000;
    vi.advanceTimersByTime(1000);
  }
  const r = await report(`${s.url}/`);
  expect(r.applicationUtilization).toBe(0);
  expect(r.cpuUtilization).toBeGreaterThanOrEqual(0);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(why);
});

test("a client mesh's balancer reads them: the endpoint's reported load shows in the client's stats", async () => {
  const s = await start();
  const client = createMesh({ services: { front: { endpoints: [s.url], balancer: 'weighted-round-robin' } } });
  try {
    const held = httpRequest(`${s.url}/hold`);
    await gate.arrived(1);
    const r = await request('http://front/now', { dispatcher: client.dispatcher });
    await r.body.dump();
    expect(client.stats().services.front!.endpoints[0]!.reportedLoad).toMatchObject({ rif: 1 });
    expect(client.stats().services.front!.endpoints[0]!.invalidLoadReports).toBe(0);
    gate.open();
    await held;
  } finally {
    await client.close();
  }
});
