// Live Istio config (`createMesh({ istio })`): DestinationRules and VirtualServices served by the
// Kubernetes API test server as the real resources, services that come up on their own with
// EndpointSlice discovery and pod labels, changes applied without a restart and without a failed
// request, malformed versions kept out, deletions, and the versions in force in stats and events.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type MeshEventMap } from '../../src/index.js';
import { closeAll, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';
import { startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';
import { applyYaml, deploy } from '../support/istio-cluster.js';
import { RATINGS_RULE, REVIEWS_RULE, REVIEWS_TEST_V2, reviewsAllTo } from '../support/istio-tasks.js';

let api: KubeApiServer | undefined;
let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = undefined;
  await api?.close();
  api = undefined;
  await closeAll(backends);
  backends = [];
});

async function cluster(): Promise<KubeApiServer> {
  api = await startKubeApi();
  backends.push(...(await deploy(api, 'shop', 'reviews', ['v1', 'v2', 'v3'])));
  return api;
}

/** The next `istio-config` event for which `pred` holds (subscribe before causing it). */
function nextConfig(m: Mesh, pred: (e: MeshEventMap['istio-config']) => boolean = () => true): Promise<MeshEventMap['istio-config']> {
  return new Promise((resolve) => {
    const sub = m.on('istio-config', (e) => {
      if (!pred(e)) return;
      sub.dispose();
      resolve(e);
    });
  });
}

const versionOf = (e: MeshEventMap['istio-config'], kind: string, name: string): string | undefined => e.resources.find((r) => r.kind === kind && r.name === name)?.resourceVersion;

async function call(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<{ status: number; backend: string | undefined }> {
  const res = await request(url, { dispatcher: m.dispatcher, headers });
  const text = await res.body.text();
  return { status: res.statusCode, backend: res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as { backend: string }).backend : undefined };
}

test('request routing: with only `istio` configured, reviews.shop.svc.cluster.local routes jason to v2 and everyone else to v1', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${REVIEWS_TEST_V2}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url } });
  const url = 'http://reviews.shop.svc.cluster.local/reviews/0';
  // The first request waits for the first lists, then for the new service's first EndpointSlices.
  expect(await call(mesh, url, { 'end-user': 'jason' })).toEqual({ status: 200, backend: 'reviews-v2' });
  for (let i = 0; i < 5; i++) {
    expect((await call(mesh, url, { 'end-user': 'jason' })).backend).toBe('reviews-v2');
    expect((await call(mesh, url, { 'end-user': 'mary' })).backend).toBe('reviews-v1');
    expect((await call(mesh, 'http://reviews.shop/reviews/0')).backend).toBe('reviews-v1');
  }
  expect(backends.find((b) => b.name === 'reviews-v3')!.received).toEqual([]);
  const stats = mesh.stats();
  expect(stats.istio).toMatchObject({ synced: true, services: ['reviews'] });
  expect(stats.istio!.collections).toContain('/apis/networking.istio.io/v1/namespaces/shop/virtualservices');
  expect(stats.istio!.resources.map((r) => [r.kind, r.name, r.resourceVersion === r.inForce])).toEqual(
    expect.arrayContaining([
      ['DestinationRule', 'reviews', true],
      ['VirtualService', 'reviews', true],
    ]),
  );
  expect(stats.services.reviews!.endpoints).toHaveLength(3);
});

test('a VirtualService moving 100 % v1 to 100 % v2 applies without a restart and without a failed request', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, unknownHosts: 'reject' });
  const m = mesh;
  const url = 'http://reviews.shop.svc.cluster.local/';
  expect((await call(m, url)).backend).toBe('reviews-v1');
  const service = m.service('reviews');
  let changed = false;
  let failed = 0;
  const seen: string[] = [];
  // Eight callers, each a bounded loop, sending while the change is applied.
  const caller = async (): Promise<void> => {
    for (let i = 0; i < 5_000 && !(changed && seen.length > 200); i++) {
      const sentAfter = changed;
      const r = await call(m, url).catch(() => ({ status: 0, backend: undefined }));
      if (r.status !== 200) failed++;
      if (sentAfter) seen.push(r.backend ?? 'none');
    }
  };
  const callers = Array.from({ length: 8 }, caller);
  const applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', reviewsAllTo('v2'));
  await applied;
  changed = true;
  await Promise.all(callers);
  expect(failed).toBe(0);
  // Every request sent after the change was applied went to v2.
  expect(seen.length).toBeGreaterThan(200);
  expect(seen.filter((b) => b !== 'reviews-v2')).toEqual([]);
  // Reconfigured in place: the same service, its endpoints and pools kept.
  expect(m.service('reviews')).toBe(service);
});

test('a malformed version keeps the last good one in force (warned, an event), the next good one applies, a deletion removes its config', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  const warnings: string[] = [];
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: (m: string) => warnings.push(m), debug: () => {} } });
  const m = mesh;
  const url = 'http://reviews.shop/';
  expect((await call(m, url)).backend).toBe('reviews-v1');
  const good = m.stats().istio!.resources.find((r) => r.kind === 'VirtualService')!.resourceVersion;
  const errors: MeshEventMap['istio-config-error'][] = [];
  m.on('istio-config-error', (e) => errors.push(e));
  const bad = [
    // A shape fromIstio refuses: `http` is not a list.
    { metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: 5 } },
    // A field fromIstio refuses: a weight that is no number.
    { metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' }, weight: 'half' }] }] } },
    // A config that does not parse: a route to a subset no DestinationRule defines.
    { metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v9' } }] }] } },
  ];
  for (const [i, object] of bad.entries()) {
    const reported = new Promise<MeshEventMap['istio-config-error']>((resolve) => {
      const sub = m.on('istio-config-error', (e) => (sub.dispose(), resolve(e)));
    });
    a.apply('virtualservices', 'shop', object);
    const e = await reported;
    expect(e, `bad version ${i}`).toMatchObject({ kind: 'VirtualService', namespace: 'shop', name: 'reviews', resourceVersion: a.resourceVersion, kept: good });
    for (let j = 0; j < 3; j++) expect((await call(m, url)).backend).toBe('reviews-v1');
    const vs = m.stats().istio!.resources.find((r) => r.kind === 'VirtualService')!;
    expect(vs).toMatchObject({ resourceVersion: a.resourceVersion, inForce: good, error: e.message });
  }
  expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/spec\.http: expected a list/), expect.stringMatching(/weight/), expect.stringMatching(/v9/)]);
  expect(warnings.filter((w) => /VirtualService shop\/reviews version \d+ not applied/.test(w))).toHaveLength(3);
  // The next good version applies.
  let applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', reviewsAllTo('v2'));
  await applied;
  expect((await call(m, url)).backend).toBe('reviews-v2');
  expect(m.stats().istio!.resources.find((r) => r.kind === 'VirtualService')).not.toHaveProperty('error');
  // Deleting the VirtualService removes its routes: every version takes traffic again.
  applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === undefined);
  a.remove('virtualservices', 'shop', 'reviews');
  await applied;
  const seen = new Set<string | undefined>();
  for (let i = 0; i < 30 && seen.size < 3; i++) seen.add((await call(m, url)).backend);
  expect(seen).toEqual(new Set(['reviews-v1', 'reviews-v2', 'reviews-v3']));
  // Deleting the DestinationRule too removes the service.
  applied = nextConfig(m, (e) => e.services.length === 0);
  a.remove('destinationrules', 'shop', 'reviews');
  await applied;
  expect(m.service('reviews')).toBeUndefined();
  expect(m.stats().istio).toMatchObject({ services: [], resources: [] });
});

const CANARY_RULE = (name: string, subsets: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
spec:
  host: reviews
  subsets: ${subsets}
`;

test('a second DestinationRule for the host adds its subset: the unchanged VirtualService stays in force, and a route to the new subset applies', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  let applied = nextConfig(m, (e) => versionOf(e, 'DestinationRule', 'reviews-canary') === a.resourceVersion);
  applyYaml(a, 'shop', CANARY_RULE('reviews-canary', '[{ name: canary, labels: { version: v3 } }]'));
  await applied;
  // The rules merge (Istio's mergeDestinationRule): v1 is still defined, so the route to it stays.
  const vs = m.stats().istio!.resources.find((r) => r.kind === 'VirtualService')!;
  expect(vs).not.toHaveProperty('error');
  expect(vs.inForce).toBe(vs.resourceVersion);
  for (let i = 0; i < 3; i++) expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  expect(m.service('reviews')!.config.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'v3', 'canary']);
  applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', reviewsAllTo('canary'));
  await applied;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
});

test("the older DestinationRule's subset wins by the API server's creationTimestamp, whatever the names; the newer one's is reported", async () => {
  const a = await cluster();
  a.now = () => Date.UTC(2024, 0, 1);
  applyYaml(a, 'shop', REVIEWS_RULE);
  a.now = () => Date.UTC(2024, 0, 1, 0, 1);
  // Named to sort before `reviews`: by name it would come first and its v1 (pods of v2) would win.
  applyYaml(a, 'shop', `${CANARY_RULE('a-canary', '[{ name: v1, labels: { version: v2 } }, { name: canary, labels: { version: v3 } }]')}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: () => {}, debug: () => {} } });
  const m = mesh;
  for (let i = 0; i < 3; i++) expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  expect(m.stats().istio!.unsupported).toEqual([{ path: 'DestinationRule a-canary: spec.subsets[0]', message: expect.stringMatching(/^ignored: subset "v1" is defined by DestinationRule reviews \(namespace shop\)/) }]);
  const applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', reviewsAllTo('canary'));
  await applied;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
});

test("a newer VirtualService for the host, named to sort first, does not take over: the API server's creationTimestamp orders them, and the overlap is reported", async () => {
  const a = await cluster();
  let t = Date.UTC(2024, 0, 1);
  a.now = () => t;
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: () => {}, debug: () => {} } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  t += 3600_000;
  const canary = String(Number(a.resourceVersion) + 1); // the version the API server gives it
  const applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'a-canary') === canary);
  applyYaml(a, 'shop', reviewsAllTo('v2').replace('name: reviews\n', 'name: a-canary\n'));
  await applied;
  for (let i = 0; i < 3; i++) expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  expect(m.stats().istio!.unsupported).toEqual([{ path: 'VirtualService a-canary: spec.hosts[0]', message: expect.stringMatching(/^host reviews is also routed by VirtualService reviews \(namespace shop\), which comes first/) }]);
});

test('an API server without networking.istio.io/v1 is read at v1beta1 (the list answers 404 at v1)', async () => {
  const a = await cluster();
  a.istioVersions = ['v1beta1', 'v1alpha3'];
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v3')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url } });
  expect((await call(mesh, 'http://reviews.shop.svc/')).backend).toBe('reviews-v3');
  expect(mesh.stats().istio!.collections).toEqual(['/apis/networking.istio.io/v1beta1/namespaces/shop/destinationrules', '/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices']);
  expect(a.requests.filter((r) => r.startsWith('GET /apis/networking.istio.io/v1/'))).toHaveLength(2);
});

test('a service given in `services` merges with the live config, its own fields winning; without live config it is its own again', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v2')}`);
  const v1 = backends.find((b) => b.name === 'reviews-v1')!;
  // Given: the endpoints (static, one of them labelled v2) and the balancer; from the cluster: subsets and routes.
  mesh = createMesh({
    services: { reviews: { namespaces: ['shop'], endpoints: [{ url: v1.url, labels: { version: 'v2' } }], balancer: 'round-robin' } },
    istio: { namespaces: ['shop'], apiServer: a.url },
  });
  const m = mesh;
  await nextConfig(m).catch(() => {});
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  const cfg = m.service('reviews')!.config;
  expect(cfg).toMatchObject({ discoveryType: 'static', balancer: { name: 'round-robin' } });
  expect(cfg.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'v3']);
  expect(cfg.routes).toHaveLength(1);
  const applied = nextConfig(m, (e) => e.resources.length === 0);
  a.remove('virtualservices', 'shop', 'reviews');
  a.remove('destinationrules', 'shop', 'reviews');
  await applied;
  expect(m.service('reviews')!.config).toMatchObject({ subsets: [], routes: [] });
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
});

test('`istio` is checked at createMesh: errors name the field', () => {
  expect(() => createMesh({ istio: { namespaces: [], apiServer: 'http://127.0.0.1:1' } })).toThrowError(/istio\.namespaces: expected at least one namespace/);
  expect(() => createMesh({ istio: { namespaces: ['Shop'], apiServer: 'http://127.0.0.1:1' } })).toThrowError(/istio\.namespaces\[0\]|istio\.namespaces\.0/);
  expect(() => createMesh({ istio: { namespaces: ['shop'], apiServer: 'localhost:6443' } })).toThrowError(/istio\.apiServer: expected an http\(s\) URL/);
  expect(() => createMesh({ istio: { namespaces: ['shop'], apiServer: 'http://127.0.0.1:1', colour: 'blue' } as never })).toThrowError(/istio\.colour/);
  expect(() => createMesh({ istio: { namespaces: ['shop'], kubeconfig: '/nonexistent/kubeconfig' } })).toThrowError(/istio\.kubeconfig/);
});

test('a DestinationRule changing the pool replaces the service: the new one takes its hosts, no request fails, the old one closes', async () => {
  const a = await cluster();
  backends.push(...(await deploy(a, 'shop', 'ratings', ['v1'])));
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}---\n${RATINGS_RULE}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, unknownHosts: 'reject' });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  expect((await call(m, 'http://ratings.shop/')).backend).toBe('ratings-v1');
  const before = m.service('reviews')!;
  const ratings = m.service('ratings')!;
  const ratingsConfig = ratings.config;
  let changed = false;
  let failed = 0;
  let after = 0;
  const caller = async (): Promise<void> => {
    for (let i = 0; i < 5_000 && !(changed && after > 100); i++) {
      const r = await call(m, 'http://reviews.shop/').catch(() => ({ status: 0, backend: undefined }));
      if (r.status !== 200 || r.backend !== 'reviews-v1') failed++;
      if (changed) after++;
    }
  };
  const callers = Array.from({ length: 4 }, caller);
  const applied = nextConfig(m, (e) => versionOf(e, 'DestinationRule', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', REVIEWS_RULE.replace('spec:\n  host: reviews\n', 'spec:\n  host: reviews\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: 3\n'));
  await applied;
  // The old service serves until the new one's discovery has answered; then the new one takes over.
  expect(m.service('reviews')).toBe(before);
  await until(() => m.service('reviews') !== before);
  changed = true;
  await Promise.all(callers);
  expect(failed).toBe(0);
  const now = m.service('reviews')!;
  expect(now).not.toBe(before);
  expect(now.config.pool.connections).toBe(3);
  // The other service was not touched: same object, same config (its state kept).
  expect(m.service('ratings')).toBe(ratings);
  expect(ratings.config).toBe(ratingsConfig);
  // The old service closed once its requests settled: it refuses new ones.
  await before.close(0);
  expect(before.stats().inFlight).toBe(0);
});

test('a watch broken after history was compacted relists (410) and the change made meanwhile applies', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url, watchTimeoutMs: 60_000 } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  const listsBefore = a.requests.filter((r) => r.includes('/virtualservices') && !r.includes('watch=')).length;
  const applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  a.dropWatches();
  applyYaml(a, 'shop', reviewsAllTo('v3'));
  a.compact();
  await applied;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
  expect(a.requests.filter((r) => r.includes('/virtualservices') && !r.includes('watch=')).length).toBeGreaterThan(listsBefore);
});

test('an API server that serves no networking.istio.io version: reported, and a request waits at most readyTimeoutMs', async () => {
  const a = await cluster();
  a.istioVersions = [];
  const warnings: string[] = [];
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url, readyTimeoutMs: 0 }, unknownHosts: 'reject', logger: { warn: (w: string) => warnings.push(w), debug: () => {} } });
  const err = await request('http://reviews.shop.svc.cluster.local/', { dispatcher: mesh.dispatcher }).then(
    () => null,
    (e: { code: string }) => e.code,
  );
  expect(err).toBe('UNKNOWN_SERVICE');
  const m = mesh;
  await until(() => warnings.some((w) => /v1alpha3\/namespaces\/shop\/(destinationrules|virtualservices) answered 404/.test(w)));
  expect(m.stats().istio).toMatchObject({ synced: false, services: [] });
});

test('toJSON writes the istio block (no literal token) and createMesh takes it back', async () => {
  const a = await cluster();
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url, token: 'secret-token', port: 9080 } });
  const json = mesh.toJSON();
  expect(json.istio).toEqual({ namespaces: ['shop'], port: 9080, readyTimeoutMs: 5000, apiServer: a.url });
  expect(JSON.stringify(json)).not.toContain('secret-token');
  const again = createMesh(JSON.parse(JSON.stringify(json)));
  expect(again.toJSON()).toEqual(json);
  await again.close();
});

test('a watch event that is not JSON is reported and skipped; the next event applies', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  const warnings: string[] = [];
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: (w: string) => warnings.push(w), debug: () => {} } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  await until(() => a.watchers >= 4); // DestinationRules and VirtualServices, and reviews' slices and pods
  a.sendRaw('{"type": "MODIFIED", "object": {"metadata": {"name": "reviews"');
  await until(() => warnings.some((w) => /istio config: \/apis\/networking\.istio\.io\/v1\/namespaces\/shop\/\w+: skipped a watch event that is not JSON/.test(w)));
  const applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === a.resourceVersion);
  applyYaml(a, 'shop', reviewsAllTo('v2'));
  await applied;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v2');
});

test('the events of one watch chunk are tried once: a burst of 40 changes is one config, not 40', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${reviewsAllTo('v1')}`);
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  await until(() => a.watchers >= 4);
  const configs: MeshEventMap['istio-config'][] = [];
  m.on('istio-config', (e) => configs.push(e));
  let rv = 90_000;
  const vs = (version: string): string =>
    JSON.stringify({
      type: 'MODIFIED',
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: 'shop', resourceVersion: String(++rv), creationTimestamp: '2024-01-01T00:00:00Z' },
        spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: version } }] }] },
      },
    });
  const burst = Array.from({ length: 40 }, (_, i) => vs(i % 2 === 0 ? 'v2' : 'v1'));
  burst.push(vs('v3'));
  a.sendRaw(burst.join('\n'), 'virtualservices');
  await until(() => configs.some((e) => versionOf(e, 'VirtualService', 'reviews') === String(rv)));
  // One chunk as written; a reader may still get it in a few pieces, never one per event.
  expect(configs.length).toBeGreaterThanOrEqual(1);
  expect(configs.length).toBeLessThanOrEqual(3);
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!kubectl) console.warn('skipping the kubectl shape check: kubectl is not installed');

test.skipIf(!kubectl)('kubectl reads the Istio resources of the test server as from a real API server', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${REVIEWS_RULE}---\n${REVIEWS_TEST_V2}`);
  const home = mkdtempSync(join(tmpdir(), 'meshlet-kubectl-'));
  try {
    const { stdout } = await promisify(execFile)('kubectl', ['--server', a.url, '-n', 'shop', 'get', 'virtualservices,destinationrules', '-o', 'json', '--request-timeout=10s'], {
      env: { ...process.env, KUBECONFIG: '/dev/null', HOME: home },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const list = JSON.parse(stdout) as { items: { apiVersion: string; kind: string; metadata: { name: string; namespace: string } }[] };
    expect(list.items.map((i) => `${i.apiVersion} ${i.kind} ${i.metadata.namespace}/${i.metadata.name}`).sort()).toEqual([
      'networking.istio.io/v1 DestinationRule shop/reviews',
      'networking.istio.io/v1 VirtualService shop/reviews',
    ]);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
