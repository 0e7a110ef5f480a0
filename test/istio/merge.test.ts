// Several DestinationRules for one host, merged as Istio's pilot merges them
// (pilot/pkg/model/destination_rule.go mergeDestinationRule, push_context.go
// sortConfigBySelectorAndCreationTime): in pilot's order — a workloadSelector first, then the oldest
// creationTimestamp, then name, then namespace — subsets of new names are added and the first
// trafficPolicy wins; whatever a later rule loses is reported by document and path.
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, InvalidConfigError, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

/** A DestinationRule document; `meta` adds to its metadata (namespace, creationTimestamp). */
function dr(name: string, spec: string, meta = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}${meta ? `, ${meta}` : ''} }
spec:
${spec
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;
}
const all = (...docs: string[]): string => docs.join('---\n');
const subsetNames = (svc: { subsets?: Record<string, unknown> } | undefined): string[] => Object.keys(svc?.subsets ?? {});
const OLD = 'creationTimestamp: "2024-01-01T00:00:00Z"';
const NEW = 'creationTimestamp: "2024-06-01T00:00:00Z"';

describe('subsets', () => {
  test("a second rule's subsets are added to the first's", () => {
    const { services, unsupported } = fromIstio(
      all(
        dr('reviews', 'host: reviews\nsubsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]', OLD),
        dr('reviews-canary', 'host: reviews\nsubsets: [{ name: canary, labels: { track: canary } }]', NEW),
      ),
    );
    expect(unsupported).toEqual([]);
    expect(subsetNames(services.reviews)).toEqual(['v1', 'v2', 'canary']);
    expect(services.reviews!.subsets!.canary).toEqual({ labels: { track: 'canary' } });
  });

  test('a subset name the earlier rule defines is ignored in the later one, and reported', () => {
    const { services, unsupported } = fromIstio(
      all(
        // Newer, and first in the text: still read second.
        dr('reviews-canary', 'host: reviews\nsubsets: [{ name: v1, labels: { version: v9 } }, { name: canary, labels: { track: canary } }]', NEW),
        dr('reviews', 'host: reviews\nsubsets: [{ name: v1, labels: { version: v1 } }]', OLD),
      ),
    );
    expect(services.reviews!.subsets).toEqual({ v1: { labels: { version: 'v1' } }, canary: { labels: { track: 'canary' } } });
    expect(unsupported).toEqual([
      { path: 'DestinationRule reviews-canary: spec.subsets[0]', message: 'ignored: subset "v1" is defined by DestinationRule reviews, which comes first for this host, and Istio keeps the first rule\'s' },
    ]);
  });
});

describe('trafficPolicy', () => {
  test("the oldest rule's trafficPolicy wins whole (its portLevelSettings too); a newer one's is reported", () => {
    const { services, unsupported } = fromIstio(
      all(
        dr('reviews', 'host: reviews\ntrafficPolicy: { loadBalancer: { simple: RANDOM } }', OLD),
        dr('a-reviews', 'host: reviews\ntrafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: ROUND_ROBIN } }] }', NEW),
      ),
    );
    expect(services.reviews).toMatchObject({ balancer: 'random' });
    expect(Object.keys(services)).toEqual(['reviews']); // no service for port 9080: the ignored policy's portLevelSettings
    expect(unsupported).toEqual([
      { path: 'DestinationRule a-reviews: spec.trafficPolicy', message: 'ignored: DestinationRule reviews, which comes first for this host, has a trafficPolicy, and Istio takes the first rule\'s whole' },
    ]);
  });

  test('a later rule gives the policy when no earlier one has one (mergeDestinationRule takes it then)', () => {
    const { services, unsupported } = fromIstio(
      all(
        dr('reviews', 'host: reviews\nsubsets: [{ name: v1, labels: { version: v1 } }]', OLD),
        dr('reviews-canary', 'host: reviews\ntrafficPolicy: { loadBalancer: { simple: RANDOM } }\nsubsets: [{ name: canary, labels: { track: canary } }]', NEW),
      ),
    );
    expect(unsupported).toEqual([]);
    expect(services.reviews).toMatchObject({ balancer: 'random' });
    expect(subsetNames(services.reviews)).toEqual(['v1', 'canary']);
  });
});

describe('order', () => {
  const policy = (name: string, simple: string, meta = ''): string => dr(name, `host: reviews\ntrafficPolicy: { loadBalancer: { simple: ${simple} } }`, meta);

  test('without timestamps the name decides, not the text order', () => {
    const { services, unsupported } = fromIstio(all(policy('reviews-a', 'ROUND_ROBIN'), policy('reviews-b', 'RANDOM')));
    expect(services.reviews).toMatchObject({ balancer: 'round-robin' });
    expect(unsupported.map((u) => u.path)).toEqual(['DestinationRule reviews-b: spec.trafficPolicy']);
  });

  test('a rule without a creationTimestamp counts as the oldest (Go\'s zero time, as in pilot)', () => {
    const { services, unsupported } = fromIstio(all(policy('b', 'RANDOM'), policy('a', 'ROUND_ROBIN', OLD)));
    expect(services.reviews).toMatchObject({ balancer: 'random' });
    expect(unsupported.map((u) => u.path)).toEqual(['DestinationRule a: spec.trafficPolicy']);
  });

  test('with equal timestamps and names, the namespace decides', () => {
    const host = (ns: string, simple: string): string => dr('reviews', `host: reviews.shop.svc.cluster.local\ntrafficPolicy: { loadBalancer: { simple: ${simple} } }`, `namespace: ${ns}, ${OLD}`);
    const { services, unsupported } = fromIstio(all(host('prod', 'RANDOM'), host('canary', 'ROUND_ROBIN')));
    expect(services.reviews).toMatchObject({ balancer: 'round-robin' });
    expect(unsupported).toEqual([
      {
        path: 'DestinationRule reviews: spec.trafficPolicy',
        message: 'ignored: DestinationRule reviews (namespace canary), which comes first for this host, has a trafficPolicy, and Istio takes the first rule\'s whole',
      },
    ]);
  });

  test('a malformed creationTimestamp is an InvalidConfigError naming it', () => {
    const text = policy('reviews', 'RANDOM', 'creationTimestamp: "yesterday"');
    expect(() => fromIstio(text)).toThrowError(InvalidConfigError);
    expect(() => fromIstio(text)).toThrowError(/DestinationRule reviews: metadata\.creationTimestamp: expected an RFC 3339 time/);
  });
});

describe('workloadSelector', () => {
  const ME = { labels: { app: 'productpage' } };
  const mine = (name: string, rest: string, meta = NEW, app = 'productpage'): string => dr(name, `host: reviews\nworkloadSelector: { matchLabels: { app: ${app} } }\n${rest}`, meta);

  test("a rule selecting this workload comes first, however new; a rule without a selector whose exportTo lists '.' merges into it", () => {
    const { services, unsupported } = fromIstio(
      all(
        dr('reviews', 'host: reviews\nexportTo: ["."]\ntrafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }\nsubsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]', OLD),
        mine('reviews-productpage', 'trafficPolicy: { loadBalancer: { simple: RANDOM } }\nsubsets: [{ name: v1, labels: { version: v3 } }]'),
      ),
      { source: ME },
    );
    expect(services.reviews).toMatchObject({ balancer: 'random', subsets: { v1: { labels: { version: 'v3' } }, v2: { labels: { version: 'v2' } } } });
    expect(unsupported).toEqual([
      { path: 'DestinationRule reviews: spec.exportTo', message: expect.stringMatching(/^applied for every caller/) },
      { path: 'DestinationRule reviews: spec.trafficPolicy', message: expect.stringMatching(/^ignored: DestinationRule reviews-productpage, which comes first/) },
      { path: 'DestinationRule reviews: spec.subsets[0]', message: expect.stringMatching(/^ignored: subset "v1" is defined by DestinationRule reviews-productpage/) },
    ]);
  });

  test('a rule without a selector or exportTo is not applied to a workload another rule selects (reported); it is to other workloads', () => {
    const text = all(dr('reviews', 'host: reviews\nsubsets: [{ name: v2, labels: { version: v2 } }]', OLD), mine('reviews-productpage', 'subsets: [{ name: v1, labels: { version: v1 } }]'));
    const selected = fromIstio(text, { source: ME });
    expect(subsetNames(selected.services.reviews)).toEqual(['v1']);
    expect(selected.unsupported).toEqual([
      { path: 'DestinationRule reviews: spec', message: 'not applied to this workload: DestinationRule reviews-productpage selects it by its workloadSelector, and Istio merges a rule without a selector into that one only when its exportTo lists "."' },
    ]);
    const other = fromIstio(text, { source: { labels: { app: 'ratings' } } });
    expect(subsetNames(other.services.reviews)).toEqual(['v2']);
    expect(other.unsupported).toEqual([]);
  });

  test('rules of the same selector merge; a rule of another selector that also selects this workload is reported', () => {
    const { services, unsupported } = fromIstio(
      all(
        mine('pp-a', 'subsets: [{ name: v1, labels: { version: v1 } }]', OLD),
        mine('pp-b', 'subsets: [{ name: v2, labels: { version: v2 } }]', NEW),
        dr('pp-other', 'host: reviews\nworkloadSelector: { matchLabels: { tier: web } }\nsubsets: [{ name: v3, labels: { version: v3 } }]', 'creationTimestamp: "2023-01-01T00:00:00Z"'),
      ),
      { source: { labels: { app: 'productpage', tier: 'web' } } },
    );
    // pp-other is the oldest: its selector is the one the workload gets, and pp-a and pp-b are left out.
    expect(subsetNames(services.reviews)).toEqual(['v3']);
    expect(unsupported.map((u) => u.path)).toEqual(['DestinationRule pp-a: spec', 'DestinationRule pp-b: spec']);
    expect(unsupported[0]!.message).toMatch(/^not applied: DestinationRule pp-other, whose workloadSelector also selects this workload, comes first/);
    const same = fromIstio(all(mine('pp-a', 'subsets: [{ name: v1, labels: { version: v1 } }]', OLD), mine('pp-b', 'subsets: [{ name: v2, labels: { version: v2 } }]', NEW)), { source: ME });
    expect(subsetNames(same.services.reviews)).toEqual(['v1', 'v2']);
    expect(same.unsupported).toEqual([]);
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

  test("a route to the canary rule's subset and one to the first rule's both reach their pods", async () => {
    backends = [await startBackend('v1'), await startBackend('canary')];
    const endpoints: { url: string; labels: Record<string, string> }[] = [
      { url: backends[0]!.url, labels: { version: 'v1' } },
      { url: backends[1]!.url, labels: { version: 'v2', track: 'canary' } },
    ];
    const text = all(
      dr('reviews', 'host: reviews\nsubsets: [{ name: v1, labels: { version: v1 } }]', OLD),
      dr('reviews-canary', 'host: reviews\nsubsets: [{ name: canary, labels: { track: canary } }]', NEW),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: canary } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`,
    );
    const { services, unsupported } = fromIstio(text, { discovery: () => ({ type: 'static', endpoints }) });
    expect(unsupported).toEqual([]);
    mesh = createMesh({ services });
    const backendOf = async (headers: Record<string, string>): Promise<string> =>
      ((await (await request('http://reviews/', { dispatcher: mesh!.dispatcher, headers })).body.json()) as { backend: string }).backend;
    for (let i = 0; i < 5; i++) {
      expect(await backendOf({ 'end-user': 'jason' })).toBe('canary');
      expect(await backendOf({})).toBe('v1');
    }
  });
});
