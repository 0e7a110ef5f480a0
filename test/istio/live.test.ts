// Live Istio config (`createMesh({ istio })`): DestinationRules and VirtualServices served by the
// Kubernetes API test server as the real resources, services that come up on their own with
// EndpointSlice discovery and pod labels, changes applied without a restart and without a failed
// request, malformed versions kept out, deletions, and the versions in force in stats and events.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type MeshEventMap } from '../../src/index.js';
import { closeAll, type Backend } from '../support/backend.js';
import { startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';
import { applyYaml, deploy } from '../support/istio-cluster.js';
import { REVIEWS_RULE, REVIEWS_TEST_V2, reviewsAllTo } from '../support/istio-tasks.js';

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
    for (let i = 0; i < 400 && !(changed && seen.length > 200); i++) {
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
