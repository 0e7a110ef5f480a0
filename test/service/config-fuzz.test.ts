// Property: whatever createMesh is given, it builds a mesh (which closes and leaves no timer) or
// throws InvalidConfigError — never another error, and never one that only wraps a crash of
// meshlet's own parsers (`cause` is set only when code of the user's threw, and these configs
// carry none that throws). Inputs: arbitrary values (holes, null prototypes, boxed values, Maps…),
// and a valid config with one field replaced, removed or joined by a stranger. Discovery is static
// or a custom source: nothing but loopback addresses appear, and no request is sent.
// Deterministic (fixed seeds) and bounded (numRuns), so CI sees the same cases every time.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createMesh, InvalidConfigError, type MeshConfig } from '../../src/index.js';

const RUNS = 300;

const anything = fc.anything({
  maxDepth: 3,
  maxKeys: 5,
  withSparseArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withDate: true,
  withTypedArray: true,
  withBigInt: true,
});

/** Values a field may well accept (so that more of the mutated configs build, and are closed), and edges. */
const plausible = fc.oneof(
  fc.constantFrom('1s', '0ms', '5xx', 'http://127.0.0.1:1', 'v1', 'v2', 'us-east', 'round-robin', 'maglev', 'static', 'mine', '/x', true, false, null, [], {}),
  fc.integer({ min: -2, max: 70_000 }),
  fc.double(),
  fc.string({ maxLength: 10 }),
);

/** A valid config using most fields; fresh objects each call (the fuzz mutates them). */
function base(): Record<string, any> {
  return {
    unknownHosts: 'reject',
    redirects: 'same-origin',
    locality: { region: 'us-east', zone: 'a' },
    logger: { warn() {}, debug() {} },
    random: () => 0.5,
    now: () => 0,
    discoveries: { mine: { create: (_o: unknown, ctx: { update(e: never[]): void }) => (ctx.update([]), { stop() {} }) } },
    services: {
      orders: {
        endpoints: ['http://127.0.0.1:3001', { url: 'http://127.0.0.1:3002', weight: 3, labels: { version: 'v2' }, zone: 'b', region: 'us-east', priority: 1 }],
        balancer: { type: 'ring-hash', hashOn: { cookie: 'sid', ttlMs: '1h', path: '/' }, minimumRingSize: 512 },
        timeoutMs: '2s',
        hosts: ['orders.shop.example'],
        hostHeader: 'endpoint',
        readyTimeoutMs: 1500,
        pool: { connections: 8, headersTimeoutMs: '10s' },
        retry: { attempts: 3, retryOn: ['5xx', 'reset'], retriableStatusCodes: [429, 503], perTryTimeoutMs: '250ms', backoff: { baseMs: 10, maxMs: 100 }, budget: { percent: 30 } },
        limits: { maxRequests: 100, maxRetries: 5 },
        rateLimit: { requestsPerSecond: 0.3, burst: 2, mode: 'wait', maxWaitMs: '1s', perEndpoint: { requestsPerSecond: 7 } },
        outlierDetection: { consecutive5xxErrors: 3, baseEjectionTimeMs: '1m', failurePercentage: { threshold: 70 } },
        circuitBreaker: { errorThresholdPercentage: 50 },
        healthCheck: { path: '/healthz', intervalMs: '5s', expectedStatuses: [200, 204] },
        slowStart: { windowMs: '30s', aggression: 2 },
        panicThreshold: 30,
        serviceBreaker: { volumeThreshold: 50, resetTimeoutMs: '45s' },
        subsets: { v1: { labels: { version: 'v1' }, timeoutMs: 500, retry: false }, v2: { labels: { version: 'v2' }, balancer: 'round-robin', limits: { maxRequests: 10 } } },
        routes: [
          { name: 'canary', match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2', timeoutMs: 100, fault: { delay: { fixedDelayMs: 5, percent: 10 } } },
          { match: [{ uri: { prefix: '/admin' }, method: 'POST' }, { queryParams: { debug: { present: true } } }], split: { v1: 70, v2: 30 }, mirror: { subset: 'v2', percent: 5 }, retry: { attempts: 1 } },
        ],
        localityLb: { distribute: [{ from: 'us-east/a', to: { 'us-east/a': 80, 'us-east/b': 20 } }] },
      },
      custom: { discovery: { type: 'mine', anything: [1, 'two'] }, balancer: 'least-request', retry: false, localityLb: { failover: [{ from: 'us-east', to: 'us-west' }] } },
      plain: { discovery: { type: 'static', endpoints: ['http://127.0.0.1:3003'] }, tls: false, interceptors: [{ name: 'noop', handle: (c: unknown, next: (c: unknown) => void) => next(c) }] },
    },
  };
}

type Key = string | number;
/** Every path in `value` to a value that is not a function, containers included. */
function paths(value: unknown, at: Key[] = []): Key[][] {
  const out: Key[][] = at.length ? [at] : [];
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, Array.isArray(value) ? Number(k) : k]));
  }
  return out;
}
const PATHS = paths(base());

type Mutation = { kind: 'replace'; value: unknown } | { kind: 'remove' } | { kind: 'stranger'; key: string; value: unknown };
function mutate(path: Key[], m: Mutation): unknown {
  const cfg = base();
  let parent: any = cfg;
  for (const k of path.slice(0, -1)) parent = parent[k];
  const last = path.at(-1)!;
  if (m.kind === 'replace') parent[last] = m.value;
  else if (m.kind === 'remove') delete parent[last]; // in a list, that leaves a hole
  else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null) target[m.key] = m.value;
    else parent[last] = { [m.key]: m.value };
  }
  return cfg;
}

let built = 0;
/** Build and close a mesh, or get the error; either way no timer may be left. */
async function attempt(config: unknown): Promise<void> {
  vi.clearAllTimers(); // each case on its own: a failed one's leftovers must not fail the next
  let mesh;
  try {
    mesh = createMesh(config as MeshConfig);
  } catch (err) {
    if (!(err instanceof InvalidConfigError)) throw new Error(`createMesh threw ${String((err as Error)?.stack ?? err)}`);
    if (err.cause !== undefined) throw new Error(`a parser crashed: ${err.message}`, { cause: err.cause });
    expect(vi.getTimerCount()).toBe(0);
    return;
  }
  built++;
  await mesh.close({ graceMs: 0 });
  expect(vi.getTimerCount()).toBe(0);
}

/** Sockets, servers and DNS requests the process holds (timers are counted by vi.getTimerCount). */
const network = () => process.getActiveResourcesInfo().filter((r) => /TCP|UDP|Pipe|ReqWrap/.test(r) && r !== 'FSReqCallback');
let networkBefore: string[];
beforeAll(() => {
  networkBefore = network();
  // Every timer a mesh sets is fake, so that one left behind is counted (vi.getTimerCount).
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
});
afterAll(() => {
  vi.useRealTimers();
});

test('the valid base builds, and every path the fuzz mutates exists', async () => {
  await attempt(base());
  const mesh = createMesh(base() as MeshConfig);
  expect(Object.keys(mesh.stats().services)).toEqual(['orders', 'custom', 'plain']);
  await mesh.close({ graceMs: 0 });
  expect(PATHS.length).toBeGreaterThan(100);
});

test('any value at all as the config', async () => {
  await fc.assert(fc.asyncProperty(anything, attempt), { numRuns: RUNS, seed: 0x5eed1 });
});

test('any value as a service, or as the services map', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(anything.map((s) => ({ services: { a: s } })), fc.dictionary(fc.string({ maxLength: 8 }), anything, { maxKeys: 3 }).map((services) => ({ services }))), attempt),
    { numRuns: RUNS, seed: 0x5eed2 },
  );
});

test('a valid config with one field replaced, removed, or given a stranger', async () => {
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 3, arbitrary: fc.oneof(anything, plausible).map((value) => ({ kind: 'replace' as const, value })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'remove' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('stranger' as const), key: fc.string({ maxLength: 12 }), value: anything }) },
  );
  built = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PATHS), mutation, (path, m) => attempt(mutate(path, m))),
    { numRuns: RUNS * 2, seed: 0x5eed3 },
  );
  expect(built).toBeGreaterThan(RUNS / 5); // many mutations are harmless: those meshes are built and closed too
});

test('no socket or DNS request outlives the fuzz', () => {
  expect(network()).toEqual(networkBefore);
});
