// Live Istio config under change: a replaced service whose new discovery does not answer, a
// version that drops out of force again, and many resources with one refused among them.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type MeshEventMap } from '../../src/index.js';
import { closeAll, type Backend } from '../support/backend.js';
import { startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';
import { applyYaml, deploy } from '../support/istio-cluster.js';

let api: KubeApiServer | undefined;
let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = undefined;
  if (api) api.failWith = null;
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

/** Settles once `cond` holds (checked every 20 ms; the test's own timeout bounds it). */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

async function call(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<{ status: number; backend: string | undefined }> {
  const res = await request(url, { dispatcher: m.dispatcher, headers });
  const text = await res.body.text();
  return { status: res.statusCode, backend: res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as { backend: string }).backend : undefined };
}

const rule = (subsets: string[], extra = ''): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
${extra}  subsets:
${subsets.map((s) => `  - name: ${s}\n    labels:\n      version: ${s === 'canary' ? 'v3' : s}`).join('\n')}
`;

const routeTo = (subset: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
`;

test('a pool change while the API server refuses everything: the old service keeps serving its endpoints until the new one is listed', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', `${rule(['v1', 'v2', 'v3'])}---\n${routeTo('v1')}`);
  const warnings: string[] = [];
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: (w: string) => warnings.push(w), debug: () => {} } });
  const m = mesh;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v1');
  const old = m.service('reviews')!;

  // As soon as the change reaches the mesh, the API server refuses every request (the
  // replacement's lists among them: they reach it only after this handler has run).
  const want = String(Number(a.resourceVersion) + 1);
  const applied = nextConfig(m, (e) => {
    if (versionOf(e, 'DestinationRule', 'reviews') !== want) return false;
    a.failWith = 503;
    a.dropWatches();
    return true;
  });
  applyYaml(a, 'shop', rule(['v1', 'v2', 'v3'], '  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: 7\n'));
  await applied;
  // Past the replacement's readyTimeoutMs: warned, or (the defect) the replacement took over with no endpoints.
  await waitFor(() => warnings.some((w) => w.includes('discovery has not answered')) || m.service('reviews') !== old);
  expect(m.service('reviews')).toBe(old);
  expect(warnings.filter((w) => w.includes('discovery has not answered'))).toEqual([
    "meshlet:mesh: live config: service reviews: the new config's discovery has not answered in 5000 ms; the previous config keeps serving its 3 endpoints until it does",
  ]);
  for (let i = 0; i < 5; i++) expect(await call(m, 'http://reviews.shop/')).toEqual({ status: 200, backend: 'reviews-v1' });

  // The API server answers again: the replacement is listed and takes over.
  a.failWith = null;
  await waitFor(() => m.service('reviews') !== old);
  expect(m.stats().services.reviews!.endpoints).toHaveLength(3);
  // Its pod list may have failed meanwhile (the endpoints then go out without labels, so no
  // subset has any until the pods are listed: a leftover, see the stop's note): wait for them.
  await waitFor(() => m.stats().services.reviews!.endpoints.every((e) => e.labels.version !== undefined));
  for (let i = 0; i < 5; i++) expect(await call(m, 'http://reviews.shop/')).toEqual({ status: 200, backend: 'reviews-v1' });
}, 60_000);

test('a version that was in force and drops out again is reported again (warning and event)', async () => {
  const a = await cluster();
  applyYaml(a, 'shop', rule(['v1']));
  applyYaml(a, 'shop', routeTo('canary')); // no rule defines canary yet
  const vs = a.resourceVersion;
  const warnings: string[] = [];
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: (w: string) => warnings.push(w), debug: () => {} } });
  const m = mesh;
  const errors: MeshEventMap['istio-config-error'][] = [];
  m.on('istio-config-error', (e) => errors.push(e));
  const notApplied = (): string[] => warnings.filter((w) => w.includes(`VirtualService shop/reviews version ${vs} not applied`));
  await call(m, 'http://reviews.shop/'); // the first lists are in
  expect(errors.map((e) => [e.kind, e.resourceVersion, e.kept])).toEqual([['VirtualService', vs, null]]);
  expect(notApplied()).toHaveLength(1);

  // The rule gains canary: the same VirtualService version now applies.
  let applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === vs);
  applyYaml(a, 'shop', rule(['v1', 'canary']));
  await applied;
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');

  // The rule loses canary: that version is out of force again, and said so again.
  applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === undefined);
  applyYaml(a, 'shop', rule(['v1']));
  await applied;
  expect(errors.map((e) => [e.kind, e.resourceVersion, e.kept])).toEqual([
    ['VirtualService', vs, null],
    ['VirtualService', vs, null],
  ]);
  expect(notApplied()).toHaveLength(2);
  expect(m.stats().istio!.resources.find((r) => r.kind === 'VirtualService')).toMatchObject({ resourceVersion: vs, inForce: null, error: expect.stringContaining('canary') });

  // Still refused on the next unrelated change: not reported a third time.
  const next = String(Number(a.resourceVersion) + 1);
  applied = nextConfig(m, (e) => versionOf(e, 'DestinationRule', 'reviews') === next);
  applyYaml(a, 'shop', rule(['v1', 'v2']));
  await applied;
  expect(errors).toHaveLength(2);
  expect(notApplied()).toHaveLength(2);
});

test('many rules with refused versions among them: later changes apply, the refused stay out (reported once), and one that fits again applies', async () => {
  const a = await cluster();
  for (let i = 0; i < 20; i++) a.apply('destinationrules', 'shop', { metadata: { name: `dr-${i}` }, spec: { host: 'reviews', subsets: [{ name: `s${i}`, labels: { version: `v${(i % 3) + 1}` } }] } });
  a.apply('destinationrules', 'shop', { metadata: { name: 'dr-bad' }, spec: { host: 'reviews', subsets: 'nope' } });
  const bad = a.resourceVersion;
  applyYaml(a, 'shop', routeTo('canary')); // no rule defines canary yet
  const vs = a.resourceVersion;
  mesh = createMesh({ istio: { namespaces: ['shop'], apiServer: a.url }, logger: { warn: () => {}, debug: () => {} } });
  const m = mesh;
  const errors: string[] = [];
  m.on('istio-config-error', (e) => errors.push(`${e.name}@${e.resourceVersion} kept ${e.kept}`));
  await call(m, 'http://reviews.shop/'); // the first lists are in
  expect(errors.sort()).toEqual([`dr-bad@${bad} kept null`, `reviews@${vs} kept null`]);
  const inForce = (): Record<string, string | null> => Object.fromEntries(m.stats().istio!.resources.map((r) => [r.name, r.inForce]));
  expect(inForce()).toMatchObject({ 'dr-0': expect.any(String), 'dr-19': expect.any(String), 'dr-bad': null, reviews: null });

  // An unrelated rule changes: it applies; both refused versions stay out, not reported again.
  let want = String(Number(a.resourceVersion) + 1);
  let applied = nextConfig(m, (e) => versionOf(e, 'DestinationRule', 'dr-3') === want);
  a.apply('destinationrules', 'shop', { metadata: { name: 'dr-3' }, spec: { host: 'reviews', subsets: [{ name: 's3', labels: { version: 'v2' } }] } });
  await applied;
  expect(errors).toHaveLength(2);
  expect(inForce()).toMatchObject({ 'dr-3': want, 'dr-bad': null, reviews: null });

  // A rule gains canary: the refused VirtualService version fits now and applies; dr-bad stays out.
  want = String(Number(a.resourceVersion) + 1);
  applied = nextConfig(m, (e) => versionOf(e, 'VirtualService', 'reviews') === vs);
  a.apply('destinationrules', 'shop', { metadata: { name: 'dr-5' }, spec: { host: 'reviews', subsets: [{ name: 's5', labels: { version: 'v3' } }, { name: 'canary', labels: { version: 'v3' } }] } });
  await applied;
  expect(inForce()).toMatchObject({ 'dr-5': want, 'dr-bad': null, reviews: vs });
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
  expect(errors).toHaveLength(2);

  // A malformed version of one of the many: its previous version stays in force (nothing else changes: no istio-config).
  const before = inForce()['dr-11'];
  want = String(Number(a.resourceVersion) + 1);
  a.apply('destinationrules', 'shop', { metadata: { name: 'dr-11' }, spec: { host: 'reviews', subsets: 'nope' } });
  await waitFor(() => errors.length === 3);
  expect(errors[2]).toBe(`dr-11@${want} kept ${before}`);
  expect(inForce()).toMatchObject({ 'dr-11': before, 'dr-5': expect.any(String), 'dr-bad': null, reviews: vs });
  expect((await call(m, 'http://reviews.shop/')).backend).toBe('reviews-v3');
});
