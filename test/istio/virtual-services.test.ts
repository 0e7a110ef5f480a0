// Several VirtualServices for one host. Pilot reads VirtualServices in its order — the oldest
// creationTimestamp, then name, then namespace (pilot/pkg/model/config.go
// configCompareByCreationTime, used by virtualservice_controller.go
// sortMergedVirtualServicesByCreationTime) — so a newer one never takes over from an older one by
// its name or its place in the text. A sidecar keeps the first's virtual host and drops the
// others' as duplicate domains (httproute.go), so the first's routes apply alone; Istio leaves two
// VirtualServices for one host undefined (istioctl analyze IST0109), so the overlap is reported,
// naming both and the host, whatever the order.
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

/** A VirtualService for `hosts` sending everything (or, with `jason`, end-user jason alone) to subset `to`. */
function vs(name: string, to: string, meta = '', opts: { hosts?: string; jason?: boolean } = {}): string {
  const match = opts.jason ? '\n  - match: [{ headers: { end-user: { exact: jason } } }]\n    route' : '\n  - route';
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}${meta ? `, ${meta}` : ''} }
spec:
  hosts: ${opts.hosts ?? '[reviews]'}
  http:${match}: [{ destination: { host: reviews, subset: ${to} } }]
`;
}
const all = (...docs: string[]): string => docs.join('---\n');
const OLD = 'creationTimestamp: "2024-01-01T00:00:00Z"';
const NEW = 'creationTimestamp: "2024-01-01T01:00:00Z"';
/** The routes one VirtualService alone gives reviews. */
const routesOf = (doc: string): unknown[] => fromIstio(doc).services.reviews!.routes!;

describe('order', () => {
  test("a newer VirtualService whose name sorts first, first in the text, is not applied: the older one's routes alone; the overlap is reported", () => {
    const older = vs('reviews', 'v1', OLD);
    const newer = vs('a-canary', 'v2', NEW);
    const { services, unsupported } = fromIstio(all(newer, older));
    expect(services.reviews!.routes).toEqual(routesOf(older));
    expect(unsupported).toEqual([
      {
        path: 'VirtualService a-canary: spec.hosts[0]',
        message: expect.stringMatching(/^host reviews is also routed by VirtualService reviews, which comes first .*IST0109/),
      },
    ]);
  });

  test('as old: by name, then namespace; without timestamps (pilot\'s zero time): by name, not by place in the text', () => {
    for (const meta of [[OLD, OLD], ['', '']]) {
      const b = vs('b', 'v2', meta[0]);
      const a = vs('a', 'v1', meta[1]);
      const { services, unsupported } = fromIstio(all(b, a));
      expect(services.reviews!.routes).toEqual(routesOf(a));
      expect(unsupported.map((u) => u.path)).toEqual(['VirtualService b: spec.hosts[0]']);
      expect(unsupported[0]!.message).toMatch(/also routed by VirtualService a,/);
    }
    // One name in two namespaces, for one host: the namespace decides.
    const { unsupported } = fromIstio(
      all(vs('r', 'v2', 'namespace: zz', { hosts: '[reviews.shop.svc.cluster.local]' }), vs('r', 'v1', 'namespace: aa', { hosts: '[reviews.shop.svc.cluster.local]' })),
    );
    expect(unsupported).toEqual([{ path: 'VirtualService r: spec.hosts[0]', message: expect.stringMatching(/^host reviews\.shop\.svc\.cluster\.local is also routed by VirtualService r \(namespace aa\), which comes first/) }]);
  });

  test('the older one first in the text still keeps its place, and the overlap is reported all the same', () => {
    const older = vs('z-old', 'v1', OLD);
    const newer = vs('a-new', 'v2', NEW);
    const { services, unsupported } = fromIstio(all(older, newer));
    expect(services.reviews!.routes).toEqual(routesOf(older));
    expect(unsupported.map((u) => [u.path, /VirtualService z-old/.test(u.message)])).toEqual([['VirtualService a-new: spec.hosts[0]', true]]);
  });
});

describe('the overlap reported', () => {
  test('by service: another spelling of the host overlaps, another host does not', () => {
    const { unsupported } = fromIstio(
      all(vs('reviews', 'v1', `${OLD}, namespace: shop`), vs('fqdn', 'v2', `${NEW}, namespace: shop`, { hosts: '[ratings, reviews.shop.svc.cluster.local]' })),
    );
    expect(unsupported).toEqual([{ path: 'VirtualService fqdn: spec.hosts[1]', message: expect.stringMatching(/^host reviews\.shop\.svc\.cluster\.local is also routed by VirtualService reviews \(namespace shop\)/) }]);
  });

  test('one VirtualService naming its host twice, or one per host, is no overlap', () => {
    expect(fromIstio(vs('reviews', 'v1', 'namespace: shop', { hosts: '[reviews, reviews.shop.svc.cluster.local]' })).unsupported).toEqual([]);
    expect(fromIstio(all(vs('reviews', 'v1'), vs('ratings', 'v1', '', { hosts: '[ratings]' }))).unsupported).toEqual([]);
  });

  test("one bound to gateways alone does not route the host's sidecars, and overlaps nothing", () => {
    const gatewayOnly = vs('a-gw', 'v2').replace('  hosts:', '  gateways: [shop-gateway]\n  hosts:');
    const { services, unsupported } = fromIstio(all(gatewayOnly, vs('reviews', 'v1', OLD)));
    expect(unsupported).toEqual([]);
    expect(services.reviews!.routes).toEqual(routesOf(vs('reviews', 'v1', OLD)));
  });
});

describe('through createMesh', () => {
  let backends: Backend[] = [];
  let mesh: Mesh | undefined;
  afterEach(async () => {
    await mesh?.close();
    mesh = undefined;
    await closeAll(backends);
    backends = [];
  });

  test("the older VirtualService's routes alone apply: a newer one named to sort first sends nothing, what the older one does not match goes to the whole service", async () => {
    backends = [await startBackend('v1'), await startBackend('v2'), await startBackend('v3')];
    const endpoints = backends.map((b) => ({ url: b.url, labels: { version: b.name } }));
    const rule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]
`;
    // The older one sends jason to v3; the newer one, first in the text and by name, everyone to v2.
    const { services } = fromIstio(all(rule, vs('a-canary', 'v2', NEW), vs('reviews', 'v3', OLD, { jason: true })), { discovery: () => ({ type: 'static', endpoints }) });
    services.reviews!.balancer = 'round-robin'; // three unmatched requests: one to each version
    mesh = createMesh({ services, random: () => 0 });
    const backendOf = async (headers: Record<string, string>): Promise<string> =>
      ((await (await request('http://reviews/', { dispatcher: mesh!.dispatcher, headers })).body.json()) as { backend: string }).backend;
    for (let i = 0; i < 3; i++) expect(await backendOf({ 'end-user': 'jason' })).toBe('v3');
    const others = new Set<string>();
    for (let i = 0; i < 3; i++) others.add(await backendOf({}));
    expect([...others].sort()).toEqual(['v1', 'v2', 'v3']);
  });
});
