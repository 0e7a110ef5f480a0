// createMesh that throws part-way leaves nothing running (issue #11 §3): what the services built
// before the failure started — discovery sources, health-check and ejection timers, the ready
// timer — is stopped before the error reaches the caller.
import { Resolver } from 'node:dns/promises';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { createMesh, InvalidConfigError, type DiscoveryContext, type MeshConfig } from '../../src/index.js';
import { startDns, type TestDns } from '../support/dns-server.js';

let dns: TestDns;
beforeEach(async () => {
  dns = await startDns();
  dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 1 }] });
  dns.zone.set('barrier.test', { a: [{ address: '127.0.0.2', ttl: 1 }] });
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
});
afterEach(async () => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
  await dns.close();
});

const boom = new Error('the registry client could not start');
const throwing = { create: (): never => { throw boom; } };
/** A DNS service polling the test server every second (TTL 1 s), health-checked, with outlier detection on. */
const web = (): Record<string, unknown> => ({
  discovery: { type: 'dns', host: 'web.test', port: 80, servers: [dns.server], family: 4, minRefreshMs: 1_000, tries: 1 },
  healthCheck: { path: '/healthz', intervalMs: 1_000 },
  outlierDetection: { intervalMs: 1_000 },
});

function createThrows(config: Record<string, unknown>): InvalidConfigError {
  let caught: unknown;
  try {
    void createMesh(config as unknown as MeshConfig).close();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(InvalidConfigError);
  return caught as InvalidConfigError;
}

/**
 * Queries for web.test the DNS server has received, after a round trip of our own to it: the
 * server answers in order, so anything sent before our question has been counted.
 */
async function webQueries(): Promise<number> {
  const r = new Resolver({ timeout: 2_000, tries: 1 });
  r.setServers([dns.server]);
  await r.resolve4('barrier.test');
  return dns.queries.filter((q) => q.name === 'web.test').length;
}

/** Advance fake time by `ms` in one-second steps, letting a source that still runs send its queries. */
async function idle(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    await webQueries(); // a pending answer reaches the resolver before its next timer is due
    await vi.advanceTimersByTimeAsync(1_000);
  }
}

test('a discovery factory that throws stops the sources, timers and checks of the services before it', async () => {
  let first!: DiscoveryContext;
  let stops = 0;
  const recording = { create: (_o: unknown, ctx: DiscoveryContext) => ((first = ctx), { stop: () => void stops++ }) };
  const err = createThrows({
    discoveries: { recording, throwing },
    services: {
      a: { discovery: { type: 'recording' }, healthCheck: { path: '/healthz', intervalMs: 1_000 }, outlierDetection: { intervalMs: 1_000 } },
      b: { discovery: { type: 'throwing' } },
    },
  });
  expect(err).toMatchObject({ path: 'services.b.discovery', cause: boom });
  expect(first.signal.aborted).toBe(true);
  expect(stops).toBe(1);
  expect(vi.getTimerCount()).toBe(0); // no health-check, ejection-sweep or ready timer is left
});

test('a DNS source started before a failing one stops: the DNS server hears nothing more', async () => {
  const err = createThrows({ discoveries: { throwing }, services: { web: web(), b: { discovery: { type: 'throwing' } } } });
  expect(err.path).toBe('services.b.discovery');
  expect(vi.getTimerCount()).toBe(0);
  const before = await webQueries();
  expect(before).toBeLessThanOrEqual(1); // its first question may have left before it was cancelled
  await idle(10_000); // a source still polling would ask ten more times
  expect(await webQueries()).toBe(before);
  expect(vi.getTimerCount()).toBe(0);
});

test('kubernetes discovery with no API server fails before anything starts', async () => {
  vi.stubEnv('KUBERNETES_SERVICE_HOST', ''); // not in a cluster
  vi.stubEnv('KUBECONFIG', '/nonexistent/meshlet-test/kubeconfig');
  const err = createThrows({ services: { web: web(), orders: { discovery: { type: 'kubernetes', service: 'orders', port: 'http' } } } });
  expect(err.path).toBe('services.orders.discovery.kubeconfig');
  expect(err.message).toMatch(/cannot read kubeconfig/);
  await idle(3_000);
  expect(await webQueries()).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
});

test('a service that builds is not affected: the same DNS service alone polls at its interval', async () => {
  // The control for the test above: without the failing service, web.test is asked again every second.
  const mesh = createMesh({ services: { web: web() } } as unknown as MeshConfig);
  try {
    await idle(5_000);
    expect(await webQueries()).toBeGreaterThanOrEqual(3);
    expect(await webQueries()).toBeLessThanOrEqual(6);
  } finally {
    await mesh.close({ graceMs: 0 });
  }
});
