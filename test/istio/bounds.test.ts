// Values fromIstio used to pass on that createMesh then refused at a `services.<name>.…` path,
// naming no Istio document: each is now refused (what Istio's validation refuses) or applied at
// meshlet's cap and reported (what Istio takes), by document and field; a value at the bound
// passes fromIstio and createMesh.
import { describe, expect, test } from 'vitest';
import { createMesh, fromIstio } from '../../src/index.js';

const withStatic = { discovery: () => ({ type: 'static' as const, endpoints: ['http://127.0.0.1:9'] }) };
const quiet = { debug: () => {}, warn: () => {} };

/** A VirtualService `r` with one http route. */
const vs = (route: string, hosts = '[r]'): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: ${hosts}
  http:
  - ${route}
`;
/** A DestinationRule `r` with this trafficPolicy. */
const dr = (trafficPolicy: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy: ${trafficPolicy}
`;
const TO_R = 'route: [{ destination: { host: r } }]\n    ';

/** fromIstio's result, which createMesh builds. */
async function builds(yaml: string): Promise<ReturnType<typeof fromIstio>> {
  const result = fromIstio(yaml, withStatic);
  await createMesh({ services: result.services, logger: quiet }).close();
  return result;
}

test('a host with a port is refused at the document and field (Istio refuses it), not as a service name createMesh refuses', async () => {
  expect(() => fromIstio(vs(`${TO_R}timeout: 1s`, '["reviews:9080"]'), withStatic)).toThrow('VirtualService r: spec.hosts[0]: a host has no port: Istio refuses "reviews:9080"');
  expect(() => fromIstio(vs('route: [{ destination: { host: "ratings:9080" } }]'), withStatic)).toThrow('VirtualService r: spec.http[0].route[0].destination.host: a host has no port');
  expect(() => fromIstio('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: r }\nspec: { host: "r:80" }\n', withStatic)).toThrow('DestinationRule r: spec.host: a host has no port');
  expect(() => fromIstio(vs(TO_R, '[under_score]'), withStatic)).toThrow('VirtualService r: spec.hosts[0]: expected a host name (letters, digits, "-" and "."), got a string ("under_score")');
  // The port goes in the destination; hosts in any case and with a final dot are host names.
  const { services } = await builds(vs('route: [{ destination: { host: ratings, port: { number: 9080 } } }]', '[Reviews.prod.svc.cluster.local.]'));
  expect(Object.keys(services).sort()).toEqual(['9080.ratings', 'ratings', 'reviews']);
});

test('fault.abort.httpStatus outside 200..599 (or not a whole number) is refused at the document and field', async () => {
  for (const status of ['99', '600', '0', '503.5', '"abc"']) {
    expect(() => fromIstio(vs(`${TO_R}fault: { abort: { httpStatus: ${status}, percentage: { value: 10 } } }`), withStatic), status).toThrow(
      /^invalid config at VirtualService r: spec\.http\[0\]\.fault\.abort\.httpStatus: expected (an HTTP status from 200 to 599|a number)/,
    );
  }
  for (const status of [200, 599]) {
    const { services } = await builds(vs(`${TO_R}fault: { abort: { httpStatus: ${status}, percentage: { value: 10 } } }`));
    expect(services.r!.routes![0]!.fault).toEqual({ abort: { httpStatus: status, percent: 10 } });
  }
});

test("a duration past meshlet's cap is applied at the cap and reported by document and field, with the cap", async () => {
  const cases = [
    { field: 'fault.delay.fixedDelay', yaml: 'fault: { delay: { fixedDelay: 2h, percentage: { value: 10 } } }', atCap: 'fault: { delay: { fixedDelay: 1h, percentage: { value: 10 } } }', message: 'a fault delay is at most 1h in meshlet: 2h is applied as 1h', applied: { fault: { delay: { fixedDelayMs: 3_600_000 } } } },
    { field: 'timeout', yaml: 'timeout: 48h', atCap: 'timeout: 24h', message: 'a route timeout is at most 24h in meshlet: 48h is applied as 24h', applied: { timeoutMs: 86_400_000 } },
    { field: 'retries.perTryTimeout', yaml: 'retries: { attempts: 1, perTryTimeout: 30h }', atCap: 'retries: { attempts: 1, perTryTimeout: 24h }', message: 'a per-try timeout is at most 24h in meshlet: 30h is applied as 24h', applied: { retry: { perTryTimeoutMs: 86_400_000 } } },
    { field: 'retries.backoff', yaml: 'retries: { attempts: 1, backoff: 2m }', atCap: 'retries: { attempts: 1, backoff: 60s }', message: 'a retry back-off is at most 1m in meshlet: 2m is applied as 1m', applied: { retry: { backoff: { baseMs: 60_000, maxMs: 600_000 } } } },
  ];
  for (const c of cases) {
    const past = await builds(vs(TO_R + c.yaml));
    expect(past.services.r!.routes![0], c.field).toMatchObject(c.applied);
    expect(past.unsupported).toEqual([{ path: `VirtualService r: spec.http[0].${c.field}`, message: c.message }]);
    const at = await builds(vs(TO_R + c.atCap));
    expect(at.services.r!.routes![0], c.field).toMatchObject(c.applied);
    expect(at.unsupported, c.field).toEqual([]);
  }
});

test('retries.backoff under 1ms is refused at the document and field, as Istio refuses it', async () => {
  for (const backoff of ['0s', '0.5ms']) {
    expect(() => fromIstio(vs(`${TO_R}retries: { attempts: 1, backoff: ${backoff} }`), withStatic)).toThrow(
      'VirtualService r: spec.http[0].retries.backoff: expected a duration of at least 1ms',
    );
  }
  expect((await builds(vs(`${TO_R}retries: { attempts: 1, backoff: 1ms }`))).services.r!.routes![0]!.retry).toMatchObject({ backoff: { baseMs: 1, maxMs: 10 } });
});

test('a redirect port that is no port is refused at the document and field (Istio\'s ValidatePort)', async () => {
  for (const port of ['70000', '1.5', '-1']) {
    expect(() => fromIstio(vs(`redirect: { uri: /x, port: ${port} }`), withStatic), port).toThrow(
      'VirtualService r: spec.http[0].redirect.port: expected a port from 0 to 65535',
    );
  }
  expect((await builds(vs('redirect: { uri: /x, port: 65535 }'))).services.r!.routes![0]!.redirect).toEqual({ uri: '/x', port: 65_535 });
});

test('a direct response without a status, with one outside 200..599, or with a body over 1 MiB is refused at the document and field', async () => {
  expect(() => fromIstio(vs('directResponse: { body: { string: gone } }'), withStatic)).toThrow('VirtualService r: spec.http[0].directResponse.status: required');
  for (const status of ['99', '600', '204.5']) {
    expect(() => fromIstio(vs(`directResponse: { status: ${status} }`), withStatic), status).toThrow(
      'VirtualService r: spec.http[0].directResponse.status: expected an HTTP status from 200 to 599',
    );
  }
  const MiB = 1024 * 1024;
  expect(() => fromIstio(vs(`directResponse: { status: 200, body: { string: ${'x'.repeat(MiB + 1)} } }`), withStatic)).toThrow(
    `VirtualService r: spec.http[0].directResponse.body.string: a direct response body is at most 1 MiB (Istio refuses a larger one), got ${MiB + 1} bytes`,
  );
  expect(() => fromIstio(vs(`directResponse: { status: 200, body: { bytes: ${Buffer.alloc(MiB + 1, 'x').toString('base64')} } }`), withStatic)).toThrow(
    'VirtualService r: spec.http[0].directResponse.body.bytes: a direct response body is at most 1 MiB',
  );
  for (const status of [200, 599]) {
    const { services } = await builds(vs(`directResponse: { status: ${status}, body: { string: ${'x'.repeat(MiB)} } }`));
    expect(services.r!.routes![0]!.directResponse).toEqual({ status, body: 'x'.repeat(MiB) });
  }
});

const TP = 'DestinationRule r: spec.trafficPolicy';

test('connectionPool and outlierDetection durations under 1ms are refused at the document and field, as Istio refuses them', () => {
  const cases = [
    ['connectionPool.tcp.connectTimeout', '{ connectionPool: { tcp: { connectTimeout: 0s } } }'],
    ['connectionPool.tcp.connectTimeout', '{ connectionPool: { tcp: { connectTimeout: 0.5ms } } }'],
    ['connectionPool.http.idleTimeout', '{ connectionPool: { http: { idleTimeout: 0.5ms } } }'],
    ['outlierDetection.interval', '{ outlierDetection: { interval: 0s } }'],
    ['outlierDetection.baseEjectionTime', '{ outlierDetection: { baseEjectionTime: 0s } }'],
  ];
  for (const [field, policy] of cases) {
    expect(() => fromIstio(dr(policy!), withStatic), policy).toThrow(`${TP}.${field}: expected a duration of at least 1ms (Istio's validation refuses a shorter one)`);
  }
});

test("connectionPool and outlierDetection values past meshlet's caps are applied at the cap and reported; at the cap they pass", async () => {
  const cases = [
    { field: 'connectionPool.tcp.connectTimeout', past: '{ connectionPool: { tcp: { connectTimeout: 20m } } }', at: '{ connectionPool: { tcp: { connectTimeout: 10m } } }', message: 'a connect timeout is at most 10m in meshlet: 20m is applied as 10m', applied: { pool: { connectTimeoutMs: 600_000 } } },
    { field: 'connectionPool.http.idleTimeout', past: '{ connectionPool: { http: { idleTimeout: 2h } } }', at: '{ connectionPool: { http: { idleTimeout: 1h } } }', message: 'an idle timeout is at most 1h in meshlet: 2h is applied as 1h', applied: { pool: { keepAliveTimeoutMs: 3_600_000 } } },
    { field: 'outlierDetection.consecutive5xxErrors', past: '{ outlierDetection: { consecutive5xxErrors: 2000000 } }', at: '{ outlierDetection: { consecutive5xxErrors: 1000000 } }', message: 'a count of consecutive failures is at most 1000000 in meshlet: 2000000 is applied as 1000000', applied: { outlierDetection: { consecutive5xxErrors: 1_000_000 } } },
    { field: 'outlierDetection.consecutiveGatewayErrors', past: '{ outlierDetection: { consecutiveGatewayErrors: { value: 4294967295 } } }', at: '{ outlierDetection: { consecutiveGatewayErrors: { value: 1000000 } } }', message: 'a count of consecutive failures is at most 1000000 in meshlet: 4294967295 is applied as 1000000', applied: { outlierDetection: { consecutiveGatewayErrors: 1_000_000 } } },
    { field: 'outlierDetection.interval', past: '{ outlierDetection: { interval: 48h } }', at: '{ outlierDetection: { interval: 24h } }', message: 'an outlier detection interval is at most 24h in meshlet: 48h is applied as 24h', applied: { outlierDetection: { intervalMs: 86_400_000 } } },
    { field: 'outlierDetection.baseEjectionTime', past: '{ outlierDetection: { baseEjectionTime: 25h } }', at: '{ outlierDetection: { baseEjectionTime: 24h } }', message: 'an ejection time is at most 24h in meshlet: 25h is applied as 24h', applied: { outlierDetection: { baseEjectionTimeMs: 86_400_000 } } },
  ];
  for (const c of cases) {
    const past = await builds(dr(c.past));
    expect(past.services.r, c.field).toMatchObject(c.applied);
    expect(past.unsupported).toEqual([{ path: `${TP}.${c.field}`, message: c.message }]);
    const at = await builds(dr(c.at));
    expect(at.services.r, c.field).toMatchObject(c.applied);
    expect(at.unsupported, c.field).toEqual([]);
  }
});

const LB = `${TP}.loadBalancer`;
const hashed = (lb: string): string => dr(`{ loadBalancer: { consistentHash: { httpHeaderName: x, ${lb} } } }`);

test('loadBalancer values Istio (or Envoy) refuses are refused at the document and field', async () => {
  const cases = [
    [hashed('ringHash: { minimumRingSize: 8388609 }'), `${LB}.consistentHash.ringHash.minimumRingSize: expected a ring size up to 8388608 (Envoy refuses a larger one), got 8388609`],
    [hashed('minimumRingSize: 9000000'), `${LB}.consistentHash.minimumRingSize: expected a ring size up to 8388608`],
    [hashed('maglev: { tableSize: 5000011 }'), `${LB}.consistentHash.maglev.tableSize: expected a table size under 5000011 (Istio refuses a larger one), got 5000011`],
    [hashed('maglev: { tableSize: 65536 }'), `${LB}.consistentHash.maglev.tableSize: expected a prime table size (Istio refuses another), got 65536`],
    [dr('{ loadBalancer: { warmup: { duration: 0s } } }'), `${LB}.warmup.duration: expected a duration of at least 1ms`],
    [dr('{ loadBalancer: { warmup: { duration: 1s, aggression: { value: 0 } } } }'), `${LB}.warmup.aggression: expected an aggression above 0 (Istio refuses another), got 0`],
    [dr("{ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 100, 'b/*': 0 } }] } } }"), `${LB}.localityLbSetting.distribute[0].to.b/*: expected a locality weight from 1 to 100 (Istio's validation), got a number (0)`],
    [dr("{ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 200 } }] } } }"), `${LB}.localityLbSetting.distribute[0].to.a/*: expected a locality weight from 1 to 100`],
    [dr("{ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 60, 'b/*': 30 } }] } } }"), `${LB}.localityLbSetting.distribute[0].to: the locality weights add up to 90, not 100 (Istio refuses such a rule)`],
  ];
  for (const [yaml, message] of cases) expect(() => fromIstio(yaml!, withStatic), message).toThrow(message!);
  // Locality weights at Istio's bounds, 1 and 99, pass.
  const { services } = await builds(dr("{ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 99, 'b/*': 1 } }] } } }"));
  expect(services.r!.localityLb).toEqual({ distribute: [{ from: 'a/*', to: { 'a/*': 99, 'b/*': 1 } }] });
});

test("loadBalancer values Istio takes past meshlet's bounds are applied at the bound and reported; at the bound they pass", async () => {
  const cases = [
    { field: 'consistentHash.maglev.tableSize', past: hashed('maglev: { tableSize: 5 }'), at: hashed('maglev: { tableSize: 7 }'), message: 'a table size is at least 7 in meshlet: 5 is applied as 7', applied: { balancer: { type: 'maglev', tableSize: 7 } } },
    { field: 'consistentHash.httpCookie.ttl', past: dr('{ loadBalancer: { consistentHash: { httpCookie: { name: c, ttl: 12000h } } } }'), at: dr('{ loadBalancer: { consistentHash: { httpCookie: { name: c, ttl: 9600h } } } }'), message: "a cookie's TTL is at most 9600h in meshlet: 12000h is applied as 9600h", applied: { balancer: { hashOn: { cookie: 'c', ttlMs: 400 * 86_400_000 } } } },
    { field: 'warmup.duration', past: dr('{ loadBalancer: { warmup: { duration: 48h } } }'), at: dr('{ loadBalancer: { warmup: { duration: 24h } } }'), message: 'a slow start window is at most 24h in meshlet: 48h is applied as 24h', applied: { slowStart: { windowMs: 86_400_000 } } },
    { field: 'warmupDurationSecs', past: dr('{ loadBalancer: { warmupDurationSecs: 30h } }'), at: dr('{ loadBalancer: { warmupDurationSecs: 24h } }'), message: 'a slow start window is at most 24h in meshlet: 30h is applied as 24h', applied: { slowStart: { windowMs: 86_400_000 } } },
    { field: 'warmup.aggression', past: dr('{ loadBalancer: { warmup: { duration: 1s, aggression: { value: 200 } } } }'), at: dr('{ loadBalancer: { warmup: { duration: 1s, aggression: { value: 100 } } } }'), message: 'slow start aggression is at most 100 in meshlet: 200 is applied as 100', applied: { slowStart: { windowMs: 1000, aggression: 100 } } },
  ];
  for (const c of cases) {
    const past = await builds(c.past);
    expect(past.services.r, c.field).toMatchObject(c.applied);
    expect(past.unsupported).toEqual([{ path: `${LB}.${c.field}`, message: c.message }]);
    const at = await builds(c.at);
    expect(at.services.r, c.field).toMatchObject(c.applied);
    expect(at.unsupported, c.field).toEqual([]);
  }
  // The sizes at Envoy's and Istio's bounds, and the smallest table Istio takes (1 is prime to its
  // isPrime). The largest ring is not built here (seconds of CPU): fromIstio checks ring-hash.ts's own bound.
  expect(fromIstio(hashed('ringHash: { minimumRingSize: 8388608 }'), withStatic).services.r!.balancer).toMatchObject({ minimumRingSize: 8_388_608 });
  expect((await builds(hashed('maglev: { tableSize: 4999963 }'))).services.r!.balancer).toMatchObject({ tableSize: 4_999_963 });
  expect((await builds(hashed('maglev: { tableSize: 1 }'))).services.r!.balancer).toMatchObject({ tableSize: 7 });
});

test('warmupDurationSecs of 0 is no slow start, as Envoy reads a window of 0, and is reported: createMesh refused a window of 0', async () => {
  const { services, unsupported } = await builds(dr('{ loadBalancer: { warmupDurationSecs: 0s } }'));
  expect(services.r!.slowStart).toBeUndefined();
  expect(unsupported).toEqual([{ path: `${LB}.warmupDurationSecs`, message: 'no effect: a slow start window of 0ms is no slow start (as in Envoy)' }]);
});

test("a document's metadata.namespace that is no Kubernetes namespace is refused there: createMesh refused the hosts and namespaces made from it", async () => {
  const rule = (namespace: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: r, namespace: ${namespace} }\nspec: { host: r }\n`;
  for (const namespace of ['Prod', 'a_b', `${'n'.repeat(64)}`]) {
    expect(() => fromIstio(rule(namespace), withStatic), namespace).toThrow('DestinationRule r: metadata.namespace: expected a Kubernetes namespace');
  }
  expect((await builds(rule('n'.repeat(63)))).services.r).toMatchObject({ namespaces: ['n'.repeat(63)] });
});

describe('a regex RE2 refuses is refused at the document and field (Istio compiles it too)', () => {
  const vs = (http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - ${http}
`;
  test.each([
    ['uri', "{ match: [{ uri: { regex: '(' } }], route: [{ destination: { host: r } }] }", /VirtualService r: spec\.http\[0\]\.match\[0\]\.uri\.regex: invalid RE2 regular expression "\("/],
    ['header', "{ match: [{ headers: { x-user: { regex: 'a(?=b)' } } }], route: [{ destination: { host: r } }] }", /VirtualService r: spec\.http\[0\]\.match\[0\]\.headers\.x-user\.regex: invalid RE2/],
    ['rewrite', "{ rewrite: { uriRegexRewrite: { match: '[', rewrite: '/x' } }, route: [{ destination: { host: r } }] }", /VirtualService r: spec\.http\[0\]\.rewrite\.uriRegexRewrite: invalid RE2/],
    ['rewrite group', "{ rewrite: { uriRegexRewrite: { match: '^/a(.*)$', rewrite: '/b/\\2' } }, route: [{ destination: { host: r } }] }", /spec\.http\[0\]\.rewrite\.uriRegexRewrite: \\2 names group 2, but the pattern has 1 group/],
  ])('%s', (_name, http, message) => {
    expect(() => fromIstio(vs(http))).toThrowError(message);
  });

  test('a good regex, and Istio\'s regex "*" (present), still convert and build', async () => {
    const { services } = fromIstio(
      vs("{ match: [{ uri: { regex: '/api/v[0-9]+/.*' }, headers: { x-any: { regex: '*' } } }], rewrite: { uriRegexRewrite: { match: '^/api/v1/(.*)$', rewrite: '/\\1' } }, route: [{ destination: { host: r } }] }"),
      { discovery: () => ({ type: 'static', endpoints: ['http://127.0.0.1:9'] }) },
    );
    await createMesh({ services }).close();
  });
});

describe("a value meshlet's own validator refuses is refused at the document and field, not later by createMesh at a services.… path", () => {
  const refused = [
    { what: 'a redirect scheme', yaml: vs('redirect: { uri: /x, scheme: "ht tp" }'), at: 'VirtualService r: spec.http[0].redirect.scheme: expected a URL scheme' },
    { what: 'a redirect uri', yaml: vs('redirect: { uri: "/a b" }'), at: 'VirtualService r: spec.http[0].redirect.uri: expected a URL path' },
    { what: 'a redirect authority', yaml: vs('redirect: { authority: "a b" }'), at: 'VirtualService r: spec.http[0].redirect.authority: expected a host name' },
    { what: 'rewrite.uri', yaml: vs(`${TO_R}rewrite: { uri: "/a b" }`), at: 'VirtualService r: spec.http[0].rewrite.uri: expected a URL path' },
    { what: 'rewrite.authority', yaml: vs(`${TO_R}rewrite: { authority: "a b" }`), at: 'VirtualService r: spec.http[0].rewrite.authority: expected a host name' },
    { what: 'a request header name to set', yaml: vs(`${TO_R}headers: { request: { set: { "x a": v } } }`), at: 'VirtualService r: spec.http[0].headers.request.set.x a: expected a header name' },
    { what: 'a request header value to add', yaml: vs(`${TO_R}headers: { request: { add: { x-a: "v\\r\\nx-b: w" } } }`), at: 'VirtualService r: spec.http[0].headers.request.add.x-a: a header value has no CR, LF or NUL' },
    { what: 'a request header name to remove', yaml: vs(`${TO_R}headers: { request: { remove: ["x a"] } }`), at: 'VirtualService r: spec.http[0].headers.request.remove[0]: expected a header name' },
    { what: 'a response header name to add', yaml: vs(`${TO_R}headers: { response: { add: { "x\\na": v } } }`), at: 'VirtualService r: spec.http[0].headers.response.add.x\na: expected a header name' },
    { what: 'a response header value to set', yaml: vs(`${TO_R}headers: { response: { set: { x-a: "v\\nw" } } }`), at: 'VirtualService r: spec.http[0].headers.response.set.x-a: a header value has no CR, LF or NUL' },
    { what: 'a destination header value', yaml: vs('route: [{ destination: { host: r }, headers: { request: { set: { x-a: "v\\rw" } } } }]'), at: 'VirtualService r: spec.http[0].route[0].headers.request.set.x-a: a header value has no CR, LF or NUL' },
    { what: 'a Host set among the headers', yaml: vs(`${TO_R}headers: { request: { set: { host: "a b" } } }`), at: 'VirtualService r: spec.http[0].headers.request.set.host: expected a host name' },
    { what: 'an empty httpHeaderName', yaml: dr('{ loadBalancer: { consistentHash: { httpHeaderName: "" } } }'), at: 'DestinationRule r: spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName: expected a non-empty name' },
    { what: 'an empty httpQueryParameterName', yaml: dr('{ loadBalancer: { consistentHash: { httpQueryParameterName: "" } } }'), at: 'DestinationRule r: spec.trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName: expected a non-empty name' },
    { what: 'a cookie name', yaml: dr('{ loadBalancer: { consistentHash: { httpCookie: { name: "a b", ttl: 10s } } } }'), at: 'DestinationRule r: spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: expected a cookie name' },
    { what: 'a cookie path', yaml: dr('{ loadBalancer: { consistentHash: { httpCookie: { name: s, path: x, ttl: 10s } } } }'), at: 'DestinationRule r: spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.path: expected a path starting with "/"' },
    { what: 'an empty failover from', yaml: dr('{ loadBalancer: { localityLbSetting: { failover: [{ from: "", to: us-west }] } } }'), at: 'DestinationRule r: spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].from: expected both "from" and "to" regions' },
  ];
  for (const c of refused) {
    test(c.what, () => {
      expect(() => fromIstio(c.yaml, withStatic)).toThrow(`invalid config at ${c.at}`);
    });
  }

  test('good values still pass fromIstio and createMesh', async () => {
    const redirect = await builds(vs('redirect: { uri: /x, authority: "a.example:8080", scheme: HTTPS }'));
    expect(redirect.services.r!.routes![0]!.redirect).toMatchObject({ uri: '/x', authority: 'a.example:8080', scheme: 'HTTPS' });
    const headers = await builds(vs(`${TO_R}headers: { request: { set: { x-a: "v w", host: b.example }, remove: [x-c] }, response: { add: { x-b: "1" } } }\n    rewrite: { uri: /v2 }`));
    expect(headers.services.r!.routes![0]).toMatchObject({ headers: { request: { set: { 'x-a': 'v w' }, remove: ['x-c'] }, response: { add: { 'x-b': '1' } } }, rewrite: { uri: '/v2', authority: 'b.example' } });
    const cookie = await builds(dr('{ loadBalancer: { consistentHash: { httpCookie: { name: s, path: /app, ttl: 10s } } } }'));
    expect(cookie.services.r!.balancer).toMatchObject({ hashOn: { cookie: 's', path: '/app', ttlMs: 10_000 } });
    const header = await builds(dr('{ loadBalancer: { consistentHash: { httpHeaderName: x-user } } }'));
    expect(header.services.r!.balancer).toMatchObject({ hashOn: { header: 'x-user' } });
    const failover = await builds(dr('{ outlierDetection: { consecutive5xxErrors: 1 }, loadBalancer: { localityLbSetting: { failover: [{ from: us-east, to: us-west }] } } }'));
    expect(failover.unsupported).toEqual([]);
    expect(failover.services.r!.localityLb).toMatchObject({ failover: [{ from: 'us-east', to: 'us-west' }] });
  });
});
