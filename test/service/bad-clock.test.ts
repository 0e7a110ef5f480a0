// A mesh given `random: () => NaN` and `now: () => NaN` (issue #11 §3) keeps every timer to its
// configured interval — DNS refreshes and back-off against the real test DNS server, active health
// checks against a real backend — where a NaN delay used to be a 1 ms loop. Fake timers drive
// time; each step ends with a real round trip to both servers, so what the mesh sent is counted.
import { Resolver } from 'node:dns/promises';
import { request } from 'undici';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { createMesh, type Mesh, type MeshConfig } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';
import { startDns, type TestDns } from '../support/dns-server.js';

let dns: TestDns;
let backend: Backend;
let mesh: Mesh | null = null;
beforeEach(async () => {
  dns = await startDns();
  backend = await startBackend('checked');
  dns.zone.set('ok.test', { a: [{ address: '127.0.0.1', ttl: 0 }] }); // TTL 0: asked again after minRefreshMs
  dns.zone.set('fail.test', { rcode: 'SERVFAIL' }); // asked again with back-off
  dns.zone.set('barrier.test', { a: [{ address: '127.0.0.2', ttl: 0 }] });
});
afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await backend.close();
  await dns.close();
});

const queriesFor = (name: string) => dns.queries.filter((q) => q.name === name).length;
const checks = () => backend.received.filter((r) => r.url === '/healthz').length;

/** A round trip to the DNS server and one to the backend: whatever the mesh sent before has arrived. */
async function barrier(): Promise<void> {
  const r = new Resolver({ timeout: 2_000, tries: 1 });
  r.setServers([dns.server]);
  await r.resolve4('barrier.test');
  await (await request(`${backend.url}/barrier`)).body.dump();
}

const SPAN_MS = 10_000;
const STEP_MS = 100;

test.each([
  ['NaN', () => NaN, 1],
  ['Infinity', () => Infinity, 1],
  ['-1', () => -1, 0], // a clock stuck at -1 is a clock that does not move: not warned
  ['7', () => 7, 0],
])('random and now returning %s: DNS and health-check timers keep to their intervals', async (_name, bad, nowWarnings) => {
  const warnings: string[] = [];
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  const dnsService = (host: string) => ({
    discovery: { type: 'dns', host, port: backend.port, servers: [dns.server], family: 4, minRefreshMs: 1_000, tries: 1, timeoutMs: 500 },
  });
  mesh = createMesh({
    random: bad,
    now: bad,
    logger: { warn: (m: string) => warnings.push(m), debug() {} },
    services: {
      ok: dnsService('ok.test'),
      fail: dnsService('fail.test'),
      checked: { endpoints: [backend.url], healthCheck: { path: '/healthz', intervalMs: 1_000, intervalJitterPercent: 10 }, outlierDetection: { intervalMs: 1_000 } },
    },
  } as unknown as MeshConfig);
  for (let t = 0; t < SPAN_MS; t += STEP_MS) {
    await barrier();
    await vi.advanceTimersByTimeAsync(STEP_MS);
  }
  await barrier();
  // Bounds the configured intervals allow over the span: a first question, then one per minRefreshMs at most.
  const most = 1 + SPAN_MS / 1_000;
  expect(queriesFor('ok.test')).toBeGreaterThanOrEqual(2); // it does refresh
  expect(queriesFor('ok.test')).toBeLessThanOrEqual(most);
  expect(queriesFor('fail.test')).toBeGreaterThanOrEqual(2); // it does back off and retry
  expect(queriesFor('fail.test')).toBeLessThanOrEqual(most);
  // Health checks: one per intervalMs at most (the first after one interval).
  expect(checks()).toBeGreaterThanOrEqual(1);
  expect(checks()).toBeLessThanOrEqual(SPAN_MS / 1_000);
  // Each function's first bad reading is warned about, once.
  expect(warnings.filter((w) => /random\(\)/.test(w))).toHaveLength(1);
  expect(warnings.filter((w) => /now\(\)/.test(w))).toHaveLength(nowWarnings);
});
