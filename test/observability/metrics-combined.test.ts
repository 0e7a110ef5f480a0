// Observed metrics where several sources meet one series: meshes sharing a meter, an endpoint that
// stats() lists twice, and a mesh that closed. Collections are made on demand with the reader.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { createMesh, enableMetrics, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

let backends: Backend[];
let meshes: Mesh[];
let reader: TestReader;
let provider: MeterProvider;

beforeEach(async () => {
  backends = await startBackends(2);
  meshes = [];
  reader = new TestReader();
  provider = new MeterProvider({ readers: [reader] });
});

afterEach(async () => {
  await Promise.all(meshes.map((m) => m.close({ graceMs: 0 })));
  await provider.shutdown();
  await closeAll(backends);
});

function mesh(config: Parameters<typeof createMesh>[0]): Mesh {
  const m = createMesh(config);
  meshes.push(m);
  return m;
}

const meter = () => provider.getMeter('meshlet') as never;

function points(rm: ResourceMetrics, name: string): [Record<string, unknown>, unknown][] {
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.descriptor.name === name) return m.dataPoints.map((p) => [p.attributes, p.value]);
  return [];
}

async function get(m: Mesh, path = '/'): Promise<void> {
  const r = await m.fetch(`http://orders${path}`);
  await r.text();
}

test('two meshes on one meter: the observed data points of the same attributes add up, as the event counters and the histogram do', async () => {
  const a = mesh({ services: { orders: { endpoints: [backends[0]!.url], limits: { maxRequests: 10 } } } });
  const b = mesh({ services: { orders: { endpoints: [backends[0]!.url], limits: { maxRequests: 99 } } } });
  const ha = await enableMetrics(a, { meter: meter() });
  const hb = await enableMetrics(b, { meter: meter() });
  for (let i = 0; i < 5; i++) await get(a);
  for (let i = 0; i < 3; i++) await get(b);
  const { resourceMetrics: rm } = await reader.collect();
  const ep = { 'meshlet.service': 'orders', 'meshlet.endpoint': backends[0]!.url };
  expect(points(rm, 'meshlet.endpoint.requests')).toEqual([[ep, 8]]);
  expect(points(rm, 'meshlet.endpoint.in_flight')).toEqual([[ep, 0]]);
  expect(points(rm, 'meshlet.endpoint.healthy')).toEqual([[ep, 1]]);
  expect(points(rm, 'meshlet.concurrency.limit')).toEqual([[{ 'meshlet.service': 'orders' }, 109]]);
  expect(points(rm, 'http.client.request.duration').map(([, v]) => (v as { count: number }).count)).toEqual([8]);
  ha.dispose();
  hb.dispose();
});

test('meshName: a series per mesh, on every instrument (attribute meshlet.mesh)', async () => {
  const a = mesh({ services: { orders: { endpoints: [backends[0]!.url], limits: { maxRequests: 10 } } } });
  const b = mesh({ services: { orders: { endpoints: [backends[0]!.url], limits: { maxRequests: 99 } } } });
  const ha = await enableMetrics(a, { meter: meter(), meshName: 'a' });
  const hb = await enableMetrics(b, { meter: meter(), meshName: 'b' });
  for (let i = 0; i < 5; i++) await get(a);
  for (let i = 0; i < 3; i++) await get(b);
  const { resourceMetrics: rm } = await reader.collect();
  const ep = { 'meshlet.service': 'orders', 'meshlet.endpoint': backends[0]!.url };
  expect(points(rm, 'meshlet.endpoint.requests')).toEqual([
    [{ 'meshlet.mesh': 'a', ...ep }, 5],
    [{ 'meshlet.mesh': 'b', ...ep }, 3],
  ]);
  expect(points(rm, 'meshlet.concurrency.limit')).toEqual([
    [{ 'meshlet.mesh': 'a', 'meshlet.service': 'orders' }, 10],
    [{ 'meshlet.mesh': 'b', 'meshlet.service': 'orders' }, 99],
  ]);
  const hist = points(rm, 'http.client.request.duration').map(([attrs, v]) => [attrs['meshlet.mesh'], (v as { count: number }).count]);
  expect(hist).toEqual([
    ['a', 5],
    ['b', 3],
  ]);
  ha.dispose();
  hb.dispose();
  await expect(enableMetrics(a, { meter: meter(), meshName: '' })).rejects.toMatchObject({ code: 'INVALID_CONFIG', path: 'enableMetrics.meshName' });
  await expect(enableMetrics(a, { meter: meter(), meshName: 7 as never })).rejects.toMatchObject({ code: 'INVALID_CONFIG', path: 'enableMetrics.meshName' });
});

test('an endpoint removed and brought back while a request still runs on it: one series, healthy, in-flight and requests of both copies, never going down', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  backends[0]!.handler = (req, res) => {
    if (req.url === '/hold') void held.then(() => res.end('late'));
    else res.end('ok');
  };
  const m = mesh({ services: { orders: { endpoints: [backends[0]!.url], outlierDetection: false } } });
  const handle = await enableMetrics(m, { meter: meter() });
  for (let i = 0; i < 5; i++) await get(m);
  const slow = get(m, '/hold');
  await until(() => m.stats().services.orders!.inFlight === 1);
  m.setEndpoints('orders', [backends[1]!.url]);
  m.setEndpoints('orders', [backends[0]!.url]);
  const listed = m.stats().services.orders!.endpoints.filter((e) => e.url === backends[0]!.url);
  expect(listed.map((e) => [e.state, e.inFlight, e.requests])).toEqual([
    ['healthy', 0, 0],
    ['draining', 1, 5],
  ]);
  const ep = { 'meshlet.service': 'orders', 'meshlet.endpoint': backends[0]!.url };
  const mine = (rm: ResourceMetrics, name: string) => points(rm, name).filter(([a]) => a['meshlet.endpoint'] === ep['meshlet.endpoint']);
  let { resourceMetrics: rm } = await reader.collect();
  expect(mine(rm, 'meshlet.endpoint.healthy')).toEqual([[ep, 1]]);
  expect(mine(rm, 'meshlet.endpoint.in_flight')).toEqual([[ep, 1]]);
  expect(mine(rm, 'meshlet.endpoint.requests')).toEqual([[ep, 5]]);
  // The held request ends and the draining copy goes away: its count stays in the total.
  release();
  await slow;
  await until(() => m.stats().services.orders!.endpoints.filter((e) => e.url === backends[0]!.url).length === 1);
  await get(m);
  ({ resourceMetrics: rm } = await reader.collect());
  expect(mine(rm, 'meshlet.endpoint.requests')).toEqual([[ep, 7]]);
  expect(mine(rm, 'meshlet.endpoint.in_flight')).toEqual([[ep, 0]]);
  expect(mine(rm, 'meshlet.endpoint.healthy')).toEqual([[ep, 1]]);
  handle.dispose();
});

test('a closed mesh is no longer observed (no dispose needed); what it counted stays in the totals a new mesh on the meter adds to', async () => {
  const old = mesh({ services: { orders: { endpoints: [backends[0]!.url] } } });
  await enableMetrics(old, { meter: meter() });
  for (let i = 0; i < 4; i++) await get(old);
  await old.close();
  let statsCalls = 0;
  const stats = old.stats.bind(old);
  old.stats = () => {
    statsCalls++;
    return stats();
  };
  const fresh = mesh({ services: { orders: { endpoints: [backends[0]!.url] } } }); // a config reload
  const handle = await enableMetrics(fresh, { meter: meter() });
  await get(fresh);
  const { resourceMetrics: rm } = await reader.collect();
  expect(statsCalls).toBe(0);
  expect(points(rm, 'meshlet.endpoint.requests')).toEqual([[{ 'meshlet.service': 'orders', 'meshlet.endpoint': backends[0]!.url }, 5]]);
  expect(points(rm, 'meshlet.concurrency.limit')).toEqual([[{ 'meshlet.service': 'orders' }, 1024]]);
  handle.dispose();
  // enableMetrics on a mesh already closed counts what it did and observes it no more.
  const closed = mesh({ services: { orders: { endpoints: [backends[0]!.url] } } });
  await get(closed);
  await closed.close();
  const late = await enableMetrics(closed, { meter: meter() });
  const calls = statsCalls;
  await reader.collect();
  expect(statsCalls).toBe(calls);
  late.dispose();
});
