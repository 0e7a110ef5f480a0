// mesh.toJSON(): every field with its effective value; given back to createMesh it builds the same
// mesh (the JSON is a fixpoint, and behaviour-relevant values survive); nothing secret in it.
import { afterEach, expect, test } from 'vitest';
import { Agent } from 'undici';
import { createMesh, type Mesh, type MeshConfig } from '../../src/index.js';
import { Pki } from '../support/pki.js';

const meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 0 })));
});
const make = (c: MeshConfig): Mesh => {
  const m = createMesh(c);
  meshes.push(m);
  return m;
};
const roundTrip = (m: Mesh): MeshConfig => JSON.parse(JSON.stringify(m));

const rich = (): MeshConfig => ({
  unknownHosts: { passthrough: ['api.stripe.com', '.example.org'] },
  namespace: 'shop',
  clusterDomain: 'corp.internal',
  redirects: 'any',
  locality: { region: 'us-east', zone: 'a' },
  services: {
    orders: {
      endpoints: ['http://127.0.0.1:3001', { url: 'http://127.0.0.1:3002', weight: 3, labels: { version: 'v2' }, zone: 'b', region: 'us-east', priority: 1 }],
      balancer: { type: 'ring-hash', hashOn: { cookie: 'sid', ttlMs: '1h', path: '/' }, minimumRingSize: 512 },
      timeoutMs: '2s',
      hosts: ['orders.shop.example'],
      namespaces: ['shop', 'prod'],
      hostHeader: 'endpoint',
      readyTimeoutMs: 1500,
      pool: { connections: 8, headersTimeoutMs: '10s' },
      retry: { attempts: 3, retryOn: '5xx,reset', perTryTimeoutMs: '250ms', backoff: { baseMs: 10, maxMs: 100 }, budget: { percent: 30 } },
      hedge: { delayPercentile: 90, minDelayMs: '2ms', maxDelayMs: '1s', maxAttempts: 3, nonFatalStatuses: [503], budget: { percent: 2 } },
      perRequestBufferLimitBytes: 1_048_576,
      limits: { maxRequests: 100, maxRetries: 5 },
      rateLimit: { requestsPerSecond: 0.3, burst: 2, mode: 'wait', maxWaitMs: '1s', perEndpoint: { requestsPerSecond: 7 } },
      outlierDetection: { consecutive5xxErrors: 3, splitExternalLocalOriginErrors: true, baseEjectionTimeMs: '1m', failurePercentage: { threshold: 70 } },
      circuitBreaker: false,
      healthCheck: { path: '/healthz', intervalMs: '5s', expectedStatuses: [200, 204] },
      slowStart: { windowMs: '30s', aggression: 2 },
      panicThreshold: 30,
      serviceBreaker: { volumeThreshold: 50, resetTimeoutMs: '45s' },
      subsets: { v1: { labels: { version: 'v1' }, timeoutMs: 500, retry: false }, v2: { labels: { version: 'v2' }, balancer: 'round-robin', limits: { maxRequests: 10 } } },
      routes: [
        { name: 'canary', match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2', timeoutMs: 100, fault: { delay: { fixedDelayMs: 5, percent: 10 } } },
        { match: [{ uri: { prefix: '/admin' }, method: 'POST' }], split: { v1: 70, v2: 30 }, mirror: { subset: 'v2', percent: 5 }, retry: { attempts: 1 } },
        { name: 'search', match: [{ uri: { prefix: '/search' } }], hedge: { delayMs: '15ms', allowNonIdempotent: true, budget: false } },
        { name: 'slow', match: [{ uri: { prefix: '/slow' } }], hedge: { hedgeOnPerTryTimeout: true } },
        { name: 'report', match: [{ uri: { prefix: '/report' } }], hedge: false },
      ],
      localityLb: { distribute: [{ from: 'us-east/a', to: { 'us-east/a': 80, 'us-east/b': 20 } }] },
    },
    inventory: { discovery: { type: 'dns', host: 'localhost', port: 8080, minRefreshMs: '2s' }, retry: false, outlierDetection: false, localityLb: { failover: [{ from: 'us-east', to: 'us-west' }] } },
  },
});

test('toJSON is complete, canonical (ms, current names) and a fixpoint: createMesh(toJSON) builds the same mesh', () => {
  const first = make(rich());
  const json = roundTrip(first);
  const o = json.services.orders!;
  expect(json).toMatchObject({ unknownHosts: { passthrough: ['api.stripe.com', '.example.org'] }, namespace: 'shop', clusterDomain: 'corp.internal' });
  expect(o.namespaces).toEqual(['shop', 'prod']);
  expect(json.services.inventory!.namespaces, "the mesh's namespace, filled in").toEqual(['shop']);
  expect(o).toMatchObject({ timeoutMs: 2000, readyTimeoutMs: 1500, hostHeader: 'endpoint', panicThreshold: 30, circuitBreaker: false });
  expect(o.serviceBreaker).toEqual({ errorThresholdPercentage: 50, volumeThreshold: 50, rollingWindowMs: 10_000, resetTimeoutMs: 45_000 });
  expect(o.retry).toMatchObject({ attempts: 3, retryOn: ['5xx', 'reset'], perTryTimeoutMs: 250, retriableStatusCodes: [503], budget: { percent: 30, minRetriesPerSecond: 10, windowMs: 10_000 } });
  expect(o.pool).toMatchObject({ connections: 8, headersTimeoutMs: 10_000, bodyTimeoutMs: 300_000, pipelining: 1 });
  expect(o.balancer).toEqual({ type: 'ring-hash', minimumRingSize: 512, maximumRingSize: expect.any(Number), hashOn: { cookie: 'sid', ttlMs: 3_600_000, path: '/' } });
  expect(o.outlierDetection).toMatchObject({ consecutive5xxErrors: 3, baseEjectionTimeMs: 60_000, maxEjectionPercent: 10, failurePercentage: { threshold: 70, minimumHosts: 5, requestVolume: 50 } });
  expect(o.rateLimit).toEqual({ requestsPerSecond: 0.3, burst: 2, mode: 'wait', maxWaitMs: 1000, perEndpoint: { requestsPerSecond: 7, burst: 7 } });
  expect(o.routes![1]).toMatchObject({ name: 'route-1', split: { v1: 70, v2: 30 }, mirror: { subset: 'v2', percent: 5 } });
  // A route's retry without a budget of its own shares the service's: the JSON leaves it out, not the defaults.
  expect(o.routes![1]!.retry).toMatchObject({ attempts: 1 });
  expect(o.routes![1]!.retry).not.toHaveProperty('budget');
  expect(o.hedge).toEqual({ delayPercentile: 90, minDelayMs: 2, maxDelayMs: 1000, maxAttempts: 3, nonFatalStatuses: [503], budget: { percent: 2, minRetriesPerSecond: 1, windowMs: 10_000 } });
  expect(o.perRequestBufferLimitBytes).toBe(1_048_576);
  expect(o.routes![2]!.hedge).toEqual({ delayMs: 15, maxAttempts: 2, nonFatalStatuses: [502, 503, 504], budget: false, allowNonIdempotent: true });
  expect(o.routes![3]!.hedge).toEqual({ hedgeOnPerTryTimeout: true, maxAttempts: 2, nonFatalStatuses: [502, 503, 504], budget: { percent: 5, minRetriesPerSecond: 1, windowMs: 10_000 } });
  expect(o.routes![4]!.hedge).toBe(false);
  expect(json.services.inventory!.discovery).toMatchObject({ type: 'dns', host: 'localhost', port: 8080, minRefreshMs: 2000 });
  expect(JSON.stringify(json)).not.toMatch(/"timeout"|"readyTimeout"|"perTryTimeout"/);
  // The fixpoint: what the JSON builds writes the same JSON again.
  const second = make(json);
  expect(roundTrip(second)).toEqual(json);
  expect(second.stats().services.orders!.pipeline).toEqual(first.stats().services.orders!.pipeline);
});

test('defaults are written out, so the JSON says what a bare config does', () => {
  const json = roundTrip(make({ services: { a: { endpoints: ['http://127.0.0.1:1'] } } }));
  expect(json).toMatchObject({ unknownHosts: 'passthrough', clusterDomain: 'cluster.local' });
  expect(json.namespace).toBeUndefined();
  expect(json.services.a).toMatchObject({
    balancer: { type: 'prequal', choiceCount: 2, hotQuantile: 0.84 },
    timeoutMs: 0,
    namespaces: [],
    readyTimeoutMs: 5000,
    retry: { attempts: 2, retryOn: ['connect-failure', 'reset', 'retriable-status-codes'] },
    hedge: false,
    perRequestBufferLimitBytes: 65_536,
    limits: { maxRequests: 1024, maxPendingRequests: 1024, maxQueueTimeMs: 1000 },
    outlierDetection: { consecutive5xxErrors: 5 },
    circuitBreaker: { errorThresholdPercentage: 50, volumeThreshold: 20, rollingWindowMs: 10_000 },
    panicThreshold: 50,
  });
  expect(roundTrip(make(json))).toEqual(json);
});

test('no secret in toJSON: a Redis URL with credentials is left out, one without them kept', () => {
  const global = (redis: string) => ({ endpoints: ['http://127.0.0.1:1'], rateLimit: { global: { redis, requestsPerSecond: 10 } } });
  const m = make({ services: { a: global('redis://:s3cret@127.0.0.1:1'), b: global('redis://user:pw@127.0.0.1:1/0'), c: global('redis://127.0.0.1:1'), d: global('/tmp/meshlet-no-redis.sock') } });
  const text = JSON.stringify(m);
  expect(text).not.toContain('s3cret');
  expect(text).not.toContain('user:pw');
  expect(m.toJSON().services.a!.rateLimit).not.toHaveProperty('global.redis');
  expect(m.toJSON().services.c!.rateLimit).toMatchObject({ global: { redis: 'redis://127.0.0.1:1' } });
  expect(m.toJSON().services.d!.rateLimit).toMatchObject({ global: { redis: '/tmp/meshlet-no-redis.sock' } }); // a socket path is kept
});

test('no secret in toJSON: a literal Kubernetes token and an inline private key are left out, file paths kept', async () => {
  const pki = new Pki();
  const client = pki.issue('client', ['URI:spiffe://cluster.local/ns/shop/sa/gateway'], { clientAuth: true });
  try {
    const m = make({
      services: {
        a: { endpoints: ['https://127.0.0.1:1'], tls: { ca: pki.ca.certPath, cert: client.cert, key: client.key } },
        b: { endpoints: ['https://127.0.0.1:1'], tls: { ca: pki.ca.certPath, cert: client.certPath, key: client.keyPath } },
        k: { discovery: { type: 'kubernetes', service: 'k', port: 80, apiServer: 'http://127.0.0.1:1', token: 'sekret-token-value' }, readyTimeoutMs: 10 },
      },
    });
    const text = JSON.stringify(m);
    expect(text).not.toContain('sekret-token-value');
    expect(text).not.toContain('PRIVATE KEY');
    expect(m.toJSON().services.b!.tls).toMatchObject({ cert: client.certPath, key: client.keyPath });
  } finally {
    pki.dispose();
  }
});

test('a passthroughDispatcher is left out of toJSON (an object to give again), and the rest round-trips', async () => {
  const passthroughDispatcher = new Agent();
  try {
    const m = make({ passthroughDispatcher, services: { a: { endpoints: ['http://127.0.0.1:1'] } } });
    const json = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
    expect(json).not.toHaveProperty('passthroughDispatcher');
    expect(json.services).toHaveProperty('a');
  } finally {
    await passthroughDispatcher.close();
  }
});
