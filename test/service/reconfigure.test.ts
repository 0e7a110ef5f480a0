// Service.reconfigure (service.ts, reconfigure.ts): a new config swapped in at once, in place —
// endpoints, pools and discovery kept — with requests already running finishing on the old
// pipeline; refused (false, nothing changed) when the endpoints would change.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { BalancerRegistry } from '../../src/balancers/balancer.js';
import { registerBuiltinBalancers } from '../../src/balancers/builtins.js';
import { DiscoveryRegistry } from '../../src/discovery/discovery.js';
import { registerBuiltinDiscovery } from '../../src/discovery/builtins.js';
import { parseMeshConfig, type ParsedService } from '../../src/service/config.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';

let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = undefined;
  await closeAll(backends);
  backends = [];
});

function parse(cfg: ServiceConfig): ParsedService {
  const balancers = new BalancerRegistry();
  registerBuiltinBalancers(balancers);
  const discoveries = new DiscoveryRegistry();
  registerBuiltinDiscovery(discoveries);
  return parseMeshConfig({ services: { api: cfg } }, balancers, discoveries).services[0]!;
}

async function setup(): Promise<{ m: Mesh; config: (to: string, extra?: Partial<ServiceConfig>) => ServiceConfig }> {
  backends = [await startBackend('v1'), await startBackend('v2')];
  const config = (to: string, extra: Partial<ServiceConfig> = {}): ServiceConfig => ({
    endpoints: backends.map((b) => ({ url: b.url, labels: { version: b.name } })),
    subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
    routes: [{ subset: to }],
    ...extra,
  });
  mesh = createMesh({ services: { api: config('v1') } });
  return { m: mesh, config };
}

async function backendOf(m: Mesh): Promise<string> {
  const res = await request('http://api/', { dispatcher: m.dispatcher });
  return ((await res.body.json()) as { backend: string }).backend;
}

test('routes, retries and limits are swapped in place: the next request follows the new config, endpoints and pools are the same objects', async () => {
  const { m, config } = await setup();
  expect(await backendOf(m)).toBe('v1');
  const svc = m.service('api')!;
  const endpoints = svc.endpoints();
  const next = parse(config('v2', { retry: false, limits: { maxRequests: 7 } }));
  expect(svc.reconfigure(next)).toBe(true);
  expect(svc.config).toBe(next);
  for (let i = 0; i < 3; i++) expect(await backendOf(m)).toBe('v2');
  expect(svc.endpoints()).toEqual(endpoints);
  expect(svc.endpoints().every((ep, i) => ep === endpoints[i])).toBe(true);
  expect(svc.stats().discoveryUpdates).toBe(1); // discovery kept, not restarted
});

test('a config that changes discovery, pool or TLS is refused: false, and the config in force stays', async () => {
  const { m, config } = await setup();
  expect(await backendOf(m)).toBe('v1');
  const svc = m.service('api')!;
  const before = svc.config;
  const other = await startBackend('v3');
  backends.push(other);
  for (const next of [
    parse({ ...config('v2'), endpoints: [other.url] }),
    parse(config('v2', { pool: { connections: 3 } })),
    parse(config('v2', { tls: { insecureSkipVerify: true } })),
  ]) {
    expect(svc.reconfigure(next)).toBe(false);
    expect(svc.config).toBe(before);
  }
  expect(await backendOf(m)).toBe('v1');
});

test('a request waiting in the old pipeline (queued for a slot) finishes there after the swap, not with MESH_CLOSED', async () => {
  const { m, config } = await setup();
  const svc = m.service('api')!;
  expect(svc.reconfigure(parse(config('v1', { limits: { maxRequests: 1, maxPendingRequests: 1 } })))).toBe(true);
  const held = hold(...backends);
  const get = (): Promise<number | string> =>
    request('http://api/', { dispatcher: m.dispatcher }).then(
      async (r) => (await r.body.text(), r.statusCode),
      (e: { code: string }) => e.code,
    );
  const first = get();
  const h1 = await held.next(); // the one slot
  const second = get(); // queued in this pipeline's concurrency layer
  expect(svc.reconfigure(parse(config('v2')))).toBe(true);
  const third = get(); // the new pipeline: no limit of 1, straight to v2
  const h3 = await held.next();
  h3.answer(200);
  expect(await third).toBe(200);
  h1.answer(200);
  expect(await first).toBe(200);
  // The queued request goes on, on the old pipeline's route (v1) — or, were it cut, settles first.
  const next = await Promise.race([second.then((v) => ({ settled: v })), held.next().then((h) => ({ held: h }))]);
  expect(next).toHaveProperty('held');
  if ('held' in next) next.held.answer(200);
  expect(await second).toBe(200);
  expect(backends[0]!.received.length).toBe(2);
  expect(backends[1]!.received.length).toBe(1);
});

test('a changed health config starts fresh (what was ejected is available again); an unchanged one keeps its ejections', async () => {
  const { m, config } = await setup();
  const health = { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTimeMs: 600_000, maxEjectionPercent: 100 }, retry: false as const };
  const svc = m.service('api')!;
  expect(svc.reconfigure(parse(config('v1', health)))).toBe(true);
  backends[0]!.fault = { kind: 'status', status: 500 };
  await request('http://api/', { dispatcher: m.dispatcher }).then((r) => r.body.text());
  const v1 = (): string => {
    const e = svc.stats().endpoints.find((x) => x.url === backends[0]!.url)!;
    return `${e.health} ${e.state}`;
  };
  expect(v1()).toBe('ejected unavailable');
  backends[0]!.fault = { kind: 'none' };
  // Same health config, other routes: the ejection stays.
  expect(svc.reconfigure(parse(config('v2', health)))).toBe(true);
  expect(v1()).toBe('ejected unavailable');
  // Another health config: a fresh model, v1 takes traffic again.
  expect(svc.reconfigure(parse(config('v1', { ...health, outlierDetection: { ...health.outlierDetection, consecutive5xxErrors: 2 } })))).toBe(true);
  expect(v1()).toBe('healthy healthy');
  expect(await backendOf(m)).toBe('v1');
});

test("hostHeader changed in place: the pools already made send the new Host (they write the service's name by themselves, any other is set per request)", async () => {
  const { m, config } = await setup();
  const svc = m.service('api')!;
  const v1 = backends[0]!;
  expect(await backendOf(m)).toBe('v1');
  expect(svc.reconfigure(parse(config('v1', { hostHeader: 'endpoint' })))).toBe(true);
  expect(await backendOf(m)).toBe('v1');
  expect(svc.reconfigure(parse(config('v1', { hostHeader: 'service' })))).toBe(true);
  expect(await backendOf(m)).toBe('v1');
  expect(v1.received.map((r) => r.headers.host)).toEqual(['api', `127.0.0.1:${v1.port}`, 'api']);
});
