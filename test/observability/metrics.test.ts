import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { createMesh, enableMetrics, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

let backends: Backend[];
let mesh: Mesh;
let reader: TestReader;
let provider: MeterProvider;

beforeEach(async () => {
  backends = await startBackends(2);
  backends[0]!.fault = { kind: 'status', status: 503 };
  mesh = createMesh({ services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', outlierDetection: false, circuitBreaker: false } }, random: () => 0 });
  reader = new TestReader();
  provider = new MeterProvider({ readers: [reader] });
});

afterEach(async () => {
  await mesh.close();
  await provider.shutdown();
  await closeAll(backends);
});

function find(rm: ResourceMetrics, name: string) {
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}

test('request duration histogram (HTTP client conventions), retry counter, endpoint gauges and the concurrency limit', async () => {
  const handle = await enableMetrics(mesh, { meter: provider.getMeter('meshlet') as never });
  for (let i = 0; i < 4; i++) {
    const r = await request('http://api/x', { dispatcher: mesh.dispatcher });
    await r.body.dump();
    expect(r.statusCode).toBe(200);
  }
  const { resourceMetrics } = await reader.collect();
  const hist = find(resourceMetrics, 'http.client.request.duration')!;
  expect(hist.descriptor.unit).toBe('s');
  const points = hist.dataPoints as { attributes: Record<string, unknown>; value: { count: number } }[];
  expect(points.reduce((n, p) => n + p.value.count, 0)).toBe(4);
  expect(points[0]!.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.response.status_code': 200, 'server.address': '127.0.0.1', 'meshlet.service': 'api' });
  const retries = find(resourceMetrics, 'meshlet.retries')!;
  const retryTotal = (retries.dataPoints as { value: number }[]).reduce((n, p) => n + p.value, 0);
  expect(retryTotal).toBe(backends[0]!.received.length);
  const reqs = find(resourceMetrics, 'meshlet.endpoint.requests')!;
  expect((reqs.dataPoints as { value: number }[]).reduce((n, p) => n + p.value, 0)).toBe(4 + retryTotal);
  const healthy = find(resourceMetrics, 'meshlet.endpoint.healthy')!;
  expect((healthy.dataPoints as { value: number }[]).map((p) => p.value)).toEqual([1, 1]);
  const limit = find(resourceMetrics, 'meshlet.concurrency.limit')!;
  expect((limit.dataPoints as { attributes: Record<string, unknown>; value: number }[]).map((p) => [p.attributes['meshlet.service'], p.value])).toEqual([['api', 1024]]);
  handle.dispose();
  const r = await request('http://api/x', { dispatcher: mesh.dispatcher });
  await r.body.dump();
  const after = await reader.collect();
  const afterPoints = find(after.resourceMetrics, 'http.client.request.duration')!.dataPoints as { value: { count: number } }[];
  expect(afterPoints.reduce((n, p) => n + p.value.count, 0)).toBe(4); // no more recording after dispose
});

test('a traceparent set by the caller reaches the backend unchanged, on the first try and on the retry', async () => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const r = await request('http://api/x', { dispatcher: mesh.dispatcher, headers: { traceparent } });
  await r.body.dump();
  expect(r.statusCode).toBe(200);
  const seen = [...backends[0]!.received, ...backends[1]!.received].map((x) => x.headers.traceparent);
  expect(seen).toEqual([traceparent, traceparent]);
});

test('hedges are counted: meshlet.hedges, and meshlet.hedge_budget.exhausted when the budget refuses one', async () => {
  await mesh.close();
  // b0 hangs /x and answers anything else; b1 hangs everything.
  backends[0]!.handler = (req, res) => void (req.url === '/x' ? undefined : res.end('b0'));
  backends[1]!.handler = () => {};
  mesh = createMesh({
    services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', retry: false, outlierDetection: false, hedge: { delayMs: 1, budget: { percent: 50, minRetriesPerSecond: 0 } } } },
    random: () => 0,
  });
  const handle = await enableMetrics(mesh, { meter: provider.getMeter('meshlet') as never });
  // /x hangs at b0 and its hedge is refused (50 % of 1 request); /y hangs at b1 and its hedge
  // (50 % of 2 requests) goes to b0, which answers.
  const stop = new AbortController();
  const first = request('http://api/x', { dispatcher: mesh.dispatcher, signal: stop.signal }).catch((e: Error) => e);
  const refused = await new Promise((resolve) => mesh.on('hedge-budget-exhausted', resolve));
  expect(refused).toMatchObject({ service: 'api', endpoint: backends[0]!.url });
  const r = await request('http://api/y', { dispatcher: mesh.dispatcher });
  expect(await r.body.text()).toBe('b0');
  const { resourceMetrics } = await reader.collect();
  const total = (name: string) => (find(resourceMetrics, name)!.dataPoints as { value: number }[]).reduce((n, p) => n + p.value, 0);
  expect(total('meshlet.hedges')).toBe(1);
  expect(total('meshlet.hedge_budget.exhausted')).toBe(1);
  handle.dispose();
  stop.abort();
  await first;
});

test('the inbound side: meshlet.inbound.in_flight, .requests and .concurrency.limit per entry point, and meshlet.inbound.refused by status', async () => {
  const handle = await enableMetrics(mesh, { meter: provider.getMeter('meshlet') as never });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const holding = new Promise<void>((resolve) => (arrived = resolve));
  const server = http.createServer(
    mesh.inbound(
      async (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (req.url === '/hold') {
          arrived();
          await held;
        }
        res.end('ok');
      },
      { name: 'web', limits: { maxRequests: 1 } },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const first = request(`${url}/hold`);
    await holding;
    const over = await request(`${url}/x`);
    await over.body.dump();
    expect(over.statusCode).toBe(503);
    const { resourceMetrics } = await reader.collect();
    const points = (name: string) => (find(resourceMetrics, name)!.dataPoints as { attributes: Record<string, unknown>; value: number }[]).map((p) => [p.attributes, p.value]);
    expect(points('meshlet.inbound.in_flight')).toEqual([[{ 'meshlet.inbound.entry': 'web' }, 1]]);
    expect(points('meshlet.inbound.requests')).toEqual([[{ 'meshlet.inbound.entry': 'web' }, 0]]);
    expect(points('meshlet.inbound.concurrency.limit')).toEqual([[{ 'meshlet.inbound.entry': 'web' }, 1]]);
    expect(points('meshlet.inbound.refused')).toEqual([[{ 'meshlet.inbound.entry': 'web', 'http.response.status_code': 503 }, 1]]);
    release();
    await (await first).body.dump();
  } finally {
    handle.dispose();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a request your own AbortSignal.timeout ended has error.type 'TimeoutError' (its DOMException's code is the number 23), in the request event too", async () => {
  const handle = await enableMetrics(mesh, { meter: provider.getMeter('meshlet') as never });
  const errors: unknown[] = [];
  mesh.on('request', (e) => errors.push(e.error));
  for (const b of backends) b.handler = () => {}; // never answers: only the caller's abort ends it
  // The reason AbortSignal.timeout gives, without waiting for a timer.
  const reason = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  expect(reason.code).toBe(23);
  const ac = new AbortController();
  const pending = request('http://api/x', { dispatcher: mesh.dispatcher, signal: ac.signal }).catch((e: unknown) => e);
  await until(() => backends.some((b) => b.received.length > 0));
  ac.abort(reason);
  expect(await pending).toBe(reason);
  await until(() => errors.length > 0);
  expect(errors).toEqual(['TimeoutError']);
  const { resourceMetrics } = await reader.collect();
  const points = find(resourceMetrics, 'http.client.request.duration')!.dataPoints as { attributes: Record<string, unknown> }[];
  expect(points.map((p) => p.attributes['error.type'])).toEqual(['TimeoutError']);
  handle.dispose();
});
