// The recent latency by RIF (load/recent-latency.ts) is fed only for a service one of whose
// balancers reads it (`usesRecentLatency`): the others do not pay for it on every response.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, registerBalancer, type Endpoint, type Mesh } from '../../src/index.js';
import { BalancerRegistry } from '../../src/balancers/balancer.js';
import { registerBuiltinBalancers } from '../../src/balancers/builtins.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

declare module '../../src/balancers/config.js' {
  interface CustomBalancers { 'recent-reader': Record<string, never>; 'recent-ignorer': Record<string, never> }
}

let backends: Backend[] = [];
let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
  backends = [];
});

/** The endpoints each recording balancer was last built with. */
const seen = new Map<string, Endpoint[]>();
const recording = (name: string, usesRecentLatency?: boolean) =>
  registerBalancer(name, {
    create: (eps) => {
      seen.set(name, [...eps]);
      return { pick: () => eps[0]!.picked };
    },
    ...(usesRecentLatency === undefined ? {} : { usesRecentLatency }),
  });
recording('recent-reader', true);
recording('recent-ignorer');

async function oneRequest(service: string): Promise<void> {
  const r = await request(`http://${service}/x`, { dispatcher: mesh!.dispatcher });
  await r.body.dump();
}

test('a balancer that declares usesRecentLatency gets load.recent fed by every response', async () => {
  backends = await startBackends(1);
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], balancer: 'recent-reader' } } });
  await oneRequest('api');
  const [ep] = seen.get('recent-reader')!;
  expect(ep!.load.requests).toBe(1);
  expect(ep!.load.recent.ageMs(performance.now())).not.toBe(Infinity); // fed: a sample exists
});

test('one that does not leaves it unfed; the peak-EWMA estimate (stats) still learns', async () => {
  backends = await startBackends(1);
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], balancer: 'recent-ignorer' } } });
  await oneRequest('api');
  const [ep] = seen.get('recent-ignorer')!;
  expect(ep!.load.requests).toBe(1);
  expect(ep!.load.recent.ageMs(performance.now())).toBe(Infinity);
  expect(mesh.stats().services.api!.endpoints[0]!.latencyEwmaMs).toBeGreaterThan(0);
});

test("a subset's balancer that reads it is enough", async () => {
  backends = await startBackends(1);
  mesh = createMesh({
    services: { api: { endpoints: [{ url: backends[0]!.url, labels: { v: '1' } }], balancer: 'recent-ignorer', subsets: { one: { labels: { v: '1' }, balancer: 'recent-reader' } } } },
  });
  await oneRequest('api');
  const [ep] = seen.get('recent-ignorer')!;
  expect(ep!.load.requests).toBe(1);
  expect(ep!.load.recent.ageMs(performance.now())).not.toBe(Infinity); // fed: a sample exists
});

test('prequal declares it; no other built-in does', () => {
  const registry = new BalancerRegistry();
  registerBuiltinBalancers(registry);
  expect(registry.names().filter((n) => registry.get(n)!.usesRecentLatency)).toEqual(['prequal']);
});
