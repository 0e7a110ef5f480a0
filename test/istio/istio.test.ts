// Istio documents converted to meshlet config. Fixtures are the examples of Istio's own reference
// pages (istio.io/latest/docs/reference/config/networking/destination-rule/ and
// .../virtual-service/, and the traffic-management tasks), kept short.
import { describe, expect, test } from 'vitest';
import { createMesh, fromIstio, type ServiceConfig } from '../../src/index.js';

const withStatic = { discovery: () => ({ type: 'static' as const, endpoints: ['http://127.0.0.1:9'] }) };

/** The converted services must be accepted by createMesh. */
async function validates(services: Record<string, ServiceConfig>): Promise<void> {
  const mesh = createMesh({ services });
  await mesh.close();
}

describe('DestinationRule', () => {
  test('load balancer with a subset override (destination-rule reference)', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bookinfo-ratings
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: testversion
    labels:
      version: v3
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
`,
      withStatic,
    );
    expect(unsupported).toEqual([]);
    expect(services.ratings).toMatchObject({
      discovery: { type: 'static', endpoints: ['http://127.0.0.1:9'] },
      balancer: 'least-request',
      subsets: { testversion: { labels: { version: 'v3' }, balancer: 'round-robin' } },
      namespaces: ['prod'], // the host's namespace: its Kubernetes names keep addressing the service
    });
    await validates(services);
    const mesh = createMesh({ services });
    try {
      for (const host of ['ratings', 'ratings.prod', 'ratings.prod.svc.cluster.local']) expect(mesh.dispatcher.lookup(host), host).not.toBeNull();
      expect(mesh.dispatcher.lookup('ratings.default')).toBeNull();
    } finally {
      await mesh.close();
    }
  });

  test('connection pool and outlier detection (destination-rule reference, reviews-cb-policy)', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-cb-policy
spec:
  host: reviews.prod.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 100
      http:
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
    outlierDetection:
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
`,
      withStatic,
    );
    expect(services.reviews).toMatchObject({
      pool: { connections: 100 },
      // 100 connections over HTTP/1.1 carry at most 100 requests at once, whatever http2MaxRequests says
      limits: { maxRequests: 100 },
      outlierDetection: { consecutive5xxErrors: 7, intervalMs: 300_000, baseEjectionTimeMs: 900_000 },
    });
    expect(unsupported).toEqual([
      { path: 'DestinationRule reviews-cb-policy: spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection', message: 'connections are not closed after a number of requests' },
    ]);
    await validates(services);
  });

  test('consistent hashing by header and by cookie; locality distribute and failover', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bookinfo-ratings
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
        ringHash:
          minimumRingSize: 2048
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-sticky
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          ttl: 0s
      localityLbSetting:
        enabled: true
        failover:
        - from: us-east
          to: eu-west
    outlierDetection:
      consecutive5xxErrors: 3
`,
      withStatic,
    );
    expect(services.ratings!.balancer).toEqual({ type: 'ring-hash', hashOn: { header: 'x-user' }, minimumRingSize: 2048 });
    // A zero ttl: Envoy generates a session cookie.
    expect(services.reviews!.balancer).toEqual({ type: 'ring-hash', hashOn: { cookie: 'user', ttlMs: 0 } });
    // failover with outlier detection (without it, Istio does not fail over: see defaults.test.ts)
    expect(services.reviews!.localityLb).toEqual({ enabled: true, failover: [{ from: 'us-east', to: 'eu-west' }] });
    expect(unsupported).toEqual([]);
    await validates(services);
  });

  test('a cookie ttl under 1 s (which Istio accepts) is applied as 1 s and reported: Max-Age is in whole seconds', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: { name: user, ttl: 0.5s }
`,
      withStatic,
    );
    expect(services.reviews!.balancer).toEqual({ type: 'ring-hash', hashOn: { cookie: 'user', ttlMs: 1000 } });
    expect(unsupported.map((u) => u.path)).toEqual(['DestinationRule reviews: spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl']);
    await validates(services);
  });

  test("tls: SIMPLE and MUTUAL map; ISTIO_MUTUAL becomes mode 'istio-mutual' (the mesh's certificates)", async () => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: db-mtls
spec:
  host: mydbserver.prod.svc.cluster.local
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/myclientcert.pem
      privateKey: /etc/certs/client_private_key.pem
      caCertificates: /etc/certs/rootcacerts.pem
      subjectAltNames: [spiffe://cluster.local/ns/prod/sa/db]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings-istio-mtls
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-istio-mtls
spec:
  host: reviews.prod.svc.cluster.local
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
      sni: reviews.prod
      subjectAltNames: [spiffe://cluster.local/ns/prod/sa/reviews]
      caCertificates: /etc/certs/rootcacerts.pem
`);
    expect(services.mydbserver!.tls).toEqual({
      cert: '/etc/certs/myclientcert.pem',
      key: '/etc/certs/client_private_key.pem',
      ca: '/etc/certs/rootcacerts.pem',
      subjectAltNames: ['spiffe://cluster.local/ns/prod/sa/db'],
    });
    expect(services.ratings!.tls).toEqual({ mode: 'istio-mutual' });
    expect(services.reviews!.tls).toEqual({ mode: 'istio-mutual', servername: 'reviews.prod', subjectAltNames: ['spiffe://cluster.local/ns/prod/sa/reviews'] });
    expect(unsupported).toEqual([
      { path: 'DestinationRule reviews-istio-mtls: spec.trafficPolicy.tls.caCertificates', message: expect.stringContaining("no effect with ISTIO_MUTUAL: the mesh's certificates") },
    ]);
    // With the kubernetes discovery (the pods' service accounts) the services are valid as they are.
    const api = 'http://127.0.0.1:1';
    for (const [name, svc] of Object.entries(services)) svc.discovery = { type: 'kubernetes', service: name, namespace: 'prod', port: 'http', apiServer: api };
    delete services.mydbserver; // its certificate files do not exist here
    await validates(services);
  });

  test('ISTIO_MUTUAL with endpoints that name no service account and no subjectAltNames fails at createMesh', () => {
    const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
`);
    services.ratings!.endpoints = ['http://127.0.0.1:1'];
    expect(() => createMesh({ services })).toThrowError(/services\.ratings\.tls: istio-mutual needs the destination's identities/);
  });
});

describe('VirtualService', () => {
  test('header match to v2, everything else to v1 (traffic-management concepts, reviews/jason)', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`,
      withStatic,
    );
    expect(unsupported).toEqual([]);
    expect(services.reviews!.routes).toEqual([
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], subset: 'v2' },
      { subset: 'v1' },
    ]);
    await validates(services);
  });

  test('weighted split, timeout, retries, fault injection and mirroring (virtual-service reference)', async () => {
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - route:
    - destination:
        host: ratings.prod.svc.cluster.local
        subset: v1
      weight: 75
    - destination:
        host: ratings.prod.svc.cluster.local
        subset: v2
      weight: 25
    timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream,503
    fault:
      delay:
        percentage:
          value: 0.1
        fixedDelay: 5s
      abort:
        percentage:
          value: 0.1
        httpStatus: 400
    mirror:
      host: ratings.prod.svc.cluster.local
      subset: v2
    mirrorPercentage:
      value: 50.0
`,
      withStatic,
    );
    expect(unsupported).toEqual([]);
    expect(services.ratings!.routes).toEqual([
      {
        split: { v1: 75, v2: 25 },
        timeoutMs: 10_000,
        // refused-stream never happens over HTTP/1.1, meshlet's protocol to endpoints
        retry: { attempts: 3, perTryTimeoutMs: 2_000, retryOn: ['gateway-error', 'connect-failure', 'retriable-status-codes'], retriableStatusCodes: [503] },
        fault: { delay: { fixedDelayMs: 5_000, percent: 0.1 }, abort: { httpStatus: 400, percent: 0.1 } },
        mirror: { subset: 'v2', percent: 50 },
      },
    ]);
    await validates(services);
  });

  test('unsupported fields are reported by path, never dropped silently; strict throws', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
  - match:
    - uri:
        prefix: /wpcatalog
      ignoreUriCase: true
    rewrite:
      uri: /newcatalog
    route:
    - destination:
        host: reviews
  - route:
    - destination:
        host: ratings
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ingress
spec: {}
`;
    const { services, unsupported } = fromIstio(yaml);
    // gateways [mesh] is meshlet's case (a sidecar's), and ignoreUriCase becomes a regex: both applied
    expect(unsupported.map((u) => u.path)).toEqual(['Gateway ingress: kind']);
    expect(services.reviews!.routes).toEqual([{ match: [{ uri: { regex: '/[wW][pP][cC][aA][tT][aA][lL][oO][gG].*' } }], rewrite: { uri: '/newcatalog' } }, { service: 'ratings' }]);
    expect(() => fromIstio(yaml, { strict: true })).toThrowError(/fromIstio: unsupported fields: Gateway ingress: kind/);
  });

  test.each([
    ['not YAML', 'a: [1,', /document 1: not valid YAML/],
    ['weights missing on a split', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - route:
    - destination: { host: r, subset: a }
    - destination: { host: r, subset: b }
`, /VirtualService r: spec.http\[0\].route: the weights add up to 0 \(Istio refuses such a route\)/],
    ['bad duration', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - timeout: ten seconds
    route:
    - destination: { host: r }
`, /spec.http\[0\].timeout: expected a duration/],
  ])('bad input: %s', (_name, yaml, message) => {
    expect(() => fromIstio(yaml)).toThrowError(message);
  });

  test('routes naming an unknown subset are rejected by createMesh with the path', () => {
    const { services } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - route:
    - destination: { host: r, subset: v9 }
`,
      withStatic,
    );
    expect(() => createMesh({ services })).toThrowError(/services\.r\.routes\[0\]\.subset: unknown subset a string \("v9"\) \(defined: none\)/);
  });
});

test("a subset's connectionPool limits become the subset's limits", async () => {
  const { services, unsupported } = fromIstio(
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      connectionPool:
        tcp:
          maxConnections: 10
        http:
          http2MaxRequests: 50
          http1MaxPendingRequests: 5
`,
    withStatic,
  );
  // 10 connections carry at most 10 requests at once (HTTP/1.1); the subset does not wait longer than the service
  expect(services.reviews!.subsets!.v2).toEqual({ labels: { version: 'v2' }, limits: { maxRequests: 10, maxPendingRequests: 5, maxQueueTimeMs: 600_000 } });
  expect(unsupported).toEqual([]);
  await validates(services);
});
