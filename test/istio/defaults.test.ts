// Issue #13 §2: when the config comes from Istio, Istio's semantics and defaults where meshlet's
// own differ (pilot's cluster_traffic_policy.go, route/retry/retry.go, route.go).
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, InvalidConfigError, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { seeded } from '../support/seeded.js';
import { hold } from '../support/holding.js';

const dr = (trafficPolicy: string, extra = ''): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy: ${trafficPolicy}
${extra}`;
const vs = (route: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - ${route}
`;
const routeOf = (yaml: string) => fromIstio(yaml).services.r!.routes![0]!;

let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll(backends);
  backends = [];
});

test('a service its documents say nothing else about gets what a sidecar does', () => {
  const { services } = fromIstio(vs('route: [{ destination: { host: r } }]'));
  expect(services.r).toEqual({
    routes: [{}],
    balancer: 'least-request',
    retry: { attempts: 2, retryOn: ['connect-failure'], budget: false },
    outlierDetection: false,
    circuitBreaker: false,
    localityLb: { enabled: false },
    limits: { maxRequests: 10_000_000, maxPendingRequests: 10_000_000, maxQueueTimeMs: 600_000 },
    pool: { connections: 65_536, connectTimeoutMs: 10_000, headersTimeoutMs: 300_000 },
  });
});

describe('outlier detection and what it brings', () => {
  test('with it: the panic threshold is minHealthPercent, 0 unless given, and locality failover is on', () => {
    const on = fromIstio(dr('{ outlierDetection: { consecutive5xxErrors: 3 } }')).services.r!;
    expect(on).toMatchObject({ outlierDetection: { consecutive5xxErrors: 3 }, panicThreshold: 0 });
    expect(on.localityLb).toBeUndefined(); // meshlet's default: prefer the zone, then the region, as Istio's failover
    expect(fromIstio(dr('{ outlierDetection: { minHealthPercent: 20 } }')).services.r!.panicThreshold).toBe(20);
  });

  test('without it: no failover (Envoy could not see a locality fail), but distribute applies', () => {
    const failover = fromIstio(dr('{ loadBalancer: { localityLbSetting: { failover: [{ from: a, to: b }] } } }')).services.r!;
    expect(failover.localityLb).toEqual({ enabled: false });
    expect(failover.panicThreshold).toBeUndefined();
    const distribute = fromIstio(dr("{ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 100 } }] } } }")).services.r!;
    expect(distribute.localityLb).toEqual({ distribute: [{ from: 'a/*', to: { 'a/*': 100 } }] });
    expect(fromIstio(dr('{ outlierDetection: {}, loadBalancer: { localityLbSetting: { enabled: { value: false } } } }')).services.r!.localityLb).toEqual({ enabled: false });
  });

  test("Istio's zeros mean Envoy's defaults; consecutiveErrors, ignored by Istio, is reported", () => {
    const { services, unsupported } = fromIstio(dr('{ outlierDetection: { maxEjectionPercent: 0, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 0, consecutiveErrors: 2 } }'));
    expect(services.r!.outlierDetection).toEqual({ splitExternalLocalOriginErrors: true });
    expect(unsupported).toEqual([{ path: 'DestinationRule r: spec.trafficPolicy.outlierDetection.consecutiveErrors', message: expect.stringContaining('ignored by Istio') }]);
  });
});

describe('connection pool: Istio\'s thresholds are effectively unlimited', () => {
  test('what the rule leaves unset stays unlimited; maxConnections bounds the requests in flight', () => {
    // over http2MaxRequests a request fails at once (Envoy's max_requests breaker): nothing waits
    expect(fromIstio(dr('{ connectionPool: { http: { http2MaxRequests: 50, http1MaxPendingRequests: 7 } } }')).services.r!.limits).toEqual({ maxRequests: 50, maxPendingRequests: 0, maxQueueTimeMs: 600_000 });
    // requests wait for one of the connections, up to http1MaxPendingRequests (unlimited unless given)
    expect(fromIstio(dr('{ connectionPool: { tcp: { maxConnections: 5 }, http: { http2MaxRequests: 50 } } }')).services.r!.limits).toEqual({ maxRequests: 5, maxPendingRequests: 10_000_000, maxQueueTimeMs: 600_000 });
    const r = fromIstio(dr('{ connectionPool: { tcp: { maxConnections: 4, connectTimeout: 1s }, http: { http1MaxPendingRequests: 2, http2MaxRequests: 0, maxRetries: 3 } } }')).services.r!;
    expect(r.limits).toEqual({ maxRequests: 4, maxPendingRequests: 2, maxRetries: 3, maxQueueTimeMs: 600_000 });
    expect(r.pool).toEqual({ connections: 4, connectTimeoutMs: 1_000, headersTimeoutMs: 300_000 });
  });
  test('through createMesh: over http2MaxRequests a request is refused at once, without waiting', async () => {
    backends = [await startBackend('r')];
    const held = hold(backends[0]!);
    const { services } = fromIstio(dr('{ connectionPool: { http: { http2MaxRequests: 1 } } }'), { discovery: () => ({ type: 'static', endpoints: [backends[0]!.url] }) });
    mesh = createMesh({ services });
    const m = mesh;
    const get = (): Promise<number | string> =>
      request('http://r/', { dispatcher: m.dispatcher }).then(
        async (res) => (await res.body.text(), res.statusCode),
        (e: { code: string }) => e.code,
      );
    const first = get();
    const h = await held.next();
    expect(await get()).toBe('OVERLOADED');
    h.answer(200);
    expect(await first).toBe(200);
  });

  test("Istio's own 2^32 - 1 written out becomes meshlet's largest limit", async () => {
    const { services } = fromIstio(dr('{ connectionPool: { tcp: { maxConnections: 4294967295 }, http: { http2MaxRequests: 4294967295 } } }'), { discovery: () => ({ type: 'static', endpoints: ['http://127.0.0.1:9'] }) });
    expect(services.r!.limits!.maxRequests).toBe(10_000_000);
    await createMesh({ services }).close();
  });
});

describe('load balancer', () => {
  test('warmup applies only with ROUND_ROBIN or LEAST_REQUEST, and wins over warmupDurationSecs', () => {
    expect(fromIstio(dr('{ loadBalancer: { warmupDurationSecs: 5s, warmup: { duration: 30s, aggression: { value: 2 } } } }')).services.r!.slowStart).toEqual({ windowMs: 30_000, aggression: 2 });
    const { services, unsupported } = fromIstio(dr('{ loadBalancer: { simple: RANDOM, warmup: { duration: 30s } } }'));
    expect(services.r!.slowStart).toBeUndefined();
    expect(unsupported).toEqual([{ path: 'DestinationRule r: spec.trafficPolicy.loadBalancer.warmup', message: expect.stringContaining('only with ROUND_ROBIN or LEAST_REQUEST') }]);
  });
});

describe('retries', () => {
  test('a retries block without attempts (or with 0) turns retries off', () => {
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], retries: {} }')).retry).toBe(false);
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 0 } }')).retry).toBe(false);
    expect(() => fromIstio(vs('{ route: [{ destination: { host: r } }], retries: { retryOn: 5xx } }'))).toThrowError(/retries.retryOn: retries with attempts unset or 0 are off/);
  });

  test("retryOn unset is Istio's default list; gRPC conditions and retriable-4xx are accepted", () => {
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 3 } }')).retry).toEqual({ attempts: 3, retryOn: ['connect-failure'] });
    const { services, unsupported } = fromIstio(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 1, retryOn: "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,retriable-4xx,503" } }'));
    expect(services.r!.routes![0]!.retry).toEqual({ attempts: 1, retryOn: ['retriable-status-codes'], retriableStatusCodes: [409, 503] });
    expect(unsupported).toEqual([]);
  });

  test('retriable-status-codes without a code retries no status (not meshlet\'s 503); an unknown condition is refused', () => {
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 1, retryOn: retriable-status-codes } }')).retry).toMatchObject({ retryOn: [] });
    expect(() => fromIstio(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 1, retryOn: 5xxx } }'))).toThrowError(InvalidConfigError);
    expect(() => fromIstio(vs('{ route: [{ destination: { host: r } }], retries: { attempts: 1, retryOn: 5xxx } }'))).toThrowError(/"5xxx" is not a retry condition Istio accepts/);
  });

  test('a retryBudget adds a budget to Istio\'s default policy', () => {
    expect(fromIstio(dr('{ retryBudget: { percent: { value: 25 } } }')).services.r!.retry).toEqual({ attempts: 2, retryOn: ['connect-failure'], budget: { percent: 25 } });
  });

  test('through createMesh: a connect failure is retried, a 503 is not (Istio dropped 503 from its default)', async () => {
    backends = [await startBackend('alive'), await startBackend('dead')];
    await backends[1]!.stop();
    const { services } = fromIstio(vs('{ route: [{ destination: { host: r } }] }'), { discovery: () => ({ type: 'static', endpoints: backends.map((b) => b.url) }) });
    mesh = createMesh({ services, random: seeded(3) });
    for (let i = 0; i < 10; i++) {
      const res = await request('http://r/', { dispatcher: mesh.dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    expect(backends[0]!.received.length).toBe(10);
    backends[0]!.fault = { kind: 'status', status: 503 };
    const res = await request('http://r/', { dispatcher: mesh.dispatcher });
    expect(res.statusCode).toBe(503);
    await res.body.text();
    expect(backends[0]!.received.length).toBe(11);
  });

  test('through createMesh: with retries off, a request sent to the dead endpoint fails', async () => {
    backends = [await startBackend('alive'), await startBackend('dead')];
    await backends[1]!.stop();
    const { services } = fromIstio(vs('{ route: [{ destination: { host: r } }], retries: {} }'), { discovery: () => ({ type: 'static', endpoints: backends.map((b) => b.url) }) });
    mesh = createMesh({ services, random: seeded(3) });
    let failed = 0;
    for (let i = 0; i < 20; i++) {
      try {
        await (await request('http://r/', { dispatcher: mesh.dispatcher })).body.text();
      } catch {
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
    expect(backends[0]!.received.length).toBe(20 - failed);
  });
});

describe('faults', () => {
  test('a delay or abort without a percentage injects nothing; the deprecated whole percent counts', () => {
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], fault: { delay: { fixedDelay: 5s }, abort: { httpStatus: 500 } } }')).fault).toBeUndefined();
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], fault: { delay: { fixedDelay: 5s, percent: 10 } } }')).fault).toEqual({ delay: { fixedDelayMs: 5_000, percent: 10 } });
    expect(routeOf(vs('{ route: [{ destination: { host: r } }], fault: { abort: { httpStatus: 500, percentage: { value: 0 } } } }')).fault).toBeUndefined();
  });
  test('a gRPC abort is reported', () => {
    expect(fromIstio(vs('{ route: [{ destination: { host: r } }], fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 5 } } } }')).unsupported.map((u) => u.path)).toEqual([
      'VirtualService r: spec.http[0].fault.abort.grpcStatus',
    ]);
  });
});

describe('weights are relative: weight / sum, a missing weight is 0 (istio/api #2192)', () => {
  const split = (a: string, b: string) => routeOf(vs(`{ route: [{ destination: { host: r, subset: a }${a} }, { destination: { host: r, subset: b }${b} }] }`));
  test.each([
    [', weight: 1', ', weight: 3', { split: { a: 25, b: 75 } }],
    ['', ', weight: 10', { subset: 'b' }],
    [', weight: 0', ', weight: 5', { subset: 'b' }],
    [', weight: 50', ', weight: 50', { split: { a: 50, b: 50 } }],
  ])('%s and %s', (a, b, expected) => {
    expect(split(a, b)).toEqual(expected);
  });
  test('one destination takes everything, whatever its weight', () => {
    expect(routeOf(vs('{ route: [{ destination: { host: r, subset: a }, weight: 0 }] }'))).toEqual({ subset: 'a' });
  });
  test('shares that are not whole percents are rounded (largest remainder) and reported', () => {
    const { services, unsupported } = fromIstio(vs('{ route: [{ destination: { host: r, subset: a }, weight: 1 }, { destination: { host: r, subset: b }, weight: 2 }] }'));
    expect(services.r!.routes![0]).toEqual({ split: { a: 33, b: 67 } });
    expect(unsupported).toEqual([{ path: 'VirtualService r: spec.http[0].route', message: 'weights 1, 2 are applied as 33, 67 %: meshlet splits in whole percent' }]);
  });
});
