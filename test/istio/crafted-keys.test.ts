// fromIstio with keys named like Object.prototype members (issue #11 §4): as fields they are
// reported like any unknown field, as names (hosts, subsets, headers, labels) they work like any
// other name, through createMesh too.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, InvalidConfigError, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { baseDocs, LABELS, objectPaths, pathText, toYaml, withKey } from '../support/istio-docs.js';

/** Every Object.prototype member, and a plain unknown name to compare with. */
const CRAFTED = [...Object.getOwnPropertyNames(Object.prototype), 'bogus'];
const withStatic = { discovery: () => ({ type: 'static' as const, endpoints: ['http://127.0.0.1:9'] }) };

async function builds(services: Record<string, ServiceConfig>): Promise<void> {
  const mesh = createMesh({ services });
  await mesh.close();
}

describe('a field named like an Object.prototype member is reported like any unknown field', () => {
  test('the base documents convert with nothing to report, and build', async () => {
    const { services, unsupported } = fromIstio(toYaml(baseDocs()), { ...withStatic, strict: true });
    expect(unsupported).toEqual([]);
    expect(Object.keys(services)).toEqual(['r', 'h']);
    await builds(services);
  });

  const places = baseDocs().flatMap((doc, d) => objectPaths(doc).map((path) => ({ d, path })));
  test('the places include the tables issue #11 found silent about unknown keys', () => {
    const where = places.map(({ d, path }) => `${LABELS[d]}: ${pathText(path)}`);
    expect(where).toEqual(
      expect.arrayContaining([
        'DestinationRule r: spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]',
        'VirtualService r: spec.http[0].route[0].destination',
        'VirtualService r: spec.http[0].mirror',
        'VirtualService r: spec.http[0].mirrorPercentage',
        'VirtualService r: spec.http[0].fault.delay.percentage',
        'VirtualService r: spec.http[1].mirrors[0]',
        'VirtualService r: spec.http[1].mirrors[0].destination',
        'VirtualService r: spec.http[1].mirrors[0].percentage',
      ]),
    );
  });

  test.each(places.map(({ d, path }) => [`${LABELS[d]}: ${pathText(path)}`, d, path] as const))('in %s', (where, d, path) => {
    for (const name of CRAFTED) {
      const docs = baseDocs();
      docs[d] = withKey(docs[d]!, path, name, 1);
      const yaml = toYaml(docs);
      expect(fromIstio(yaml).unsupported, name).toEqual([{ path: `${where}.${name}`, message: expect.any(String) }]);
      // strict turns the report into an error (the same list; checked for the name that used to throw a TypeError)
      if (name === 'hasOwnProperty') {
        const strict = (): unknown => fromIstio(yaml, { strict: true });
        expect(strict).toThrowError(InvalidConfigError);
        expect(strict).toThrowError(`invalid config at fromIstio: unsupported fields: ${where}.${name} (`);
      }
    }
  });
});

test('unknown keys inside destination, mirror, percentage, mirrorPercentage and failover entries are reported by path', () => {
  const { unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        failover: [{ from: us-east, to: eu-west, weight: 3 }]
        distribute: [{ from: us-east/a, to: { us-east/a: 100 }, priority: 1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - route:
    - destination: { host: r, subset: v1, subsett: v2 }
    mirror: { host: r, subset: v1, mirrorSubset: v2 }
    mirrorPercentage: { value: 5, valeu: 50 }
    fault:
      abort: { httpStatus: 503, percentage: { value: 1, percent: 9 } }
  - route:
    - destination: { host: r }
    mirrors:
    - destination: { host: r, subset: v1, port: { number: 80 }, extra: 1 }
      percentage: { value: 5, extra: 1 }
      extra: 1
`);
  expect(unsupported.map((u) => u.path)).toEqual([
    'DestinationRule r: spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].weight',
    'DestinationRule r: spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].priority',
    'VirtualService r: spec.http[0].route[0].destination.subsett',
    'VirtualService r: spec.http[0].mirror.mirrorSubset',
    'VirtualService r: spec.http[0].mirrorPercentage.valeu',
    'VirtualService r: spec.http[0].fault.abort.percentage.percent',
    'VirtualService r: spec.http[1].mirrors[0].destination.extra',
    'VirtualService r: spec.http[1].mirrors[0].percentage.extra',
    'VirtualService r: spec.http[1].mirrors[0].extra',
  ]);
});

describe('a host, subset, header or label named like an Object.prototype member is a name like any other', () => {
  const names = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable'];
  test.each(names)('%s', async (n) => {
    const host = n.toLowerCase();
    const { services, unsupported } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${n} }
spec:
  host: ${n}
  subsets:
  - { name: ${n}, labels: { ${n}: x, __proto__: y } }
  - { name: other, labels: { version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${n} }
spec:
  hosts: [${n}]
  http:
  - match:
    - headers: { ${n}: { exact: 'yes' }, __proto__: { prefix: 'y' } }
      queryParams: { ${n}: {}, __proto__: { exact: q } }
    route:
    - { destination: { host: ${n}, subset: ${n} }, weight: 60 }
    - { destination: { host: ${n}, subset: other }, weight: 40 }
    mirror: { host: ${n}, subset: ${n} }
  - route:
    - destination: { host: ${n}, subset: other }
`,
      { ...withStatic, strict: true },
    );
    expect(unsupported).toEqual([]);
    expect(Object.keys(services)).toEqual([host]);
    const svc = services[host]!;
    expect(Object.keys(svc.subsets!)).toEqual([n, 'other']);
    const labels = svc.subsets![n]!.labels;
    expect(Object.entries(labels)).toEqual([[n, 'x'], ['__proto__', 'y']]);
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    const [first] = svc.routes!;
    expect(Object.entries(first!.split!)).toEqual([[n, 60], ['other', 40]]);
    expect(first!.mirror).toEqual({ subset: n });
    expect(Object.keys(first!.match![0]!.headers!)).toEqual([n, '__proto__']);
    expect(Object.keys(first!.match![0]!.queryParams!)).toEqual([n, '__proto__']);
    await builds(services);
  });

  test('a host named __proto__ is refused at the document (no host name); a subset so named stays in the result, and createMesh refuses it by path', () => {
    const dr = (host: string, subset: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: x }
spec:
  host: ${host}
  subsets: [{ name: ${subset}, labels: { version: v1 } }]
`;
    expect(() => fromIstio(dr('__proto__', 'v1'), withStatic)).toThrowError('DestinationRule x: spec.host: expected a host name (letters, digits, "-" and "."), got a string ("__proto__")');

    const bySubset = fromIstio(dr('r', '__proto__'), { ...withStatic, strict: true }).services;
    expect(Object.keys(bySubset.r!.subsets!)).toEqual(['__proto__']);
    expect(() => createMesh({ services: bySubset })).toThrowError(/services\.r\.subsets\.__proto__: a subset name is letters/);
  });

  test('two subsets of one name are refused, not merged', () => {
    expect(() =>
      fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: x }
spec:
  host: r
  subsets: [{ name: constructor, labels: { a: b } }, { name: constructor, labels: { a: c } }]
`),
    ).toThrowError(/DestinationRule x: spec.subsets\[1\].name: subset "constructor" is defined twice/);
  });
});

test('values that are not strings or numbers where those are meant are refused by path', () => {
  const vs = (route: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: v }
spec:
  hosts: [r]
  http:
  - ${route}
`;
  const cases: [string, RegExp][] = [
    ['name: { a: 1 }', /spec.http\[0\].name: expected a string, got an object/],
    ['route: [{ destination: { host: r, subset: [a] } }]', /spec.http\[0\].route\[0\].destination.subset: expected a string, got an array/],
    ['route: [{ destination: { host: r, subset: a }, weight: { x: 1 } }]', /route\[0\].weight: expected a number, got an object/],
    ['retries: { retryOn: { constructor: 1 } }', /retries.retryOn: expected a string, got an object/],
    ['fault: { abort: { httpStatus: { value: 1 } } }', /fault.abort.httpStatus: expected a number, got an object/],
    ['match: [{ uri: { exact: { toString: 1 } } }]', /match\[0\].uri.exact: expected a string, got an object/],
    ['mirrorPercentage: { value: .nan }', /mirrorPercentage: expected a percentage from 0 to 100/],
  ];
  for (const [route, message] of cases) {
    expect(() => fromIstio(vs(route)), route).toThrowError(InvalidConfigError);
    expect(() => fromIstio(vs(route)), route).toThrowError(message);
  }
});


describe('through a real mesh: routes on headers named constructor and __proto__ (and a hash on one)', () => {
  let stable: Backend;
  let canary: Backend;
  let mesh: Mesh | undefined;
  beforeEach(async () => {
    [stable, canary] = [await startBackend('stable'), await startBackend('canary')];
  });
  afterEach(async () => {
    await mesh?.close();
    await closeAll([stable, canary]);
  });

  test('a request without such a header takes the default route; one with it, the matching route', async () => {
    const { services } = fromIstio(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: constructor } } }
  subsets:
  - { name: constructor, labels: { track: canary } }
  - { name: stable, labels: { track: stable } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - match: [{ headers: { constructor: { prefix: 'y' } } }]
    route: [{ destination: { host: r, subset: constructor } }]
  - match: [{ headers: { __proto__: {} } }]
    route: [{ destination: { host: r, subset: constructor } }]
  - route: [{ destination: { host: r, subset: stable } }]
`,
      {
        strict: true,
        discovery: () => ({ type: 'static', endpoints: [{ url: stable.url, labels: { track: 'stable' } }, { url: canary.url, labels: { track: 'canary' } }] }),
      },
    );
    mesh = createMesh({ services });
    const m = mesh;
    const hit = async (headers: Record<string, string>): Promise<string> => {
      const res = await request('http://r/', { dispatcher: m.dispatcher, headers });
      return ((await res.body.json()) as { backend: string }).backend;
    };
    expect(await hit({ accept: '*/*' })).toBe('stable');
    expect(await hit({ constructor: 'yes' })).toBe('canary');
    expect(await hit({ constructor: 'no' })).toBe('stable');
    expect(await hit({ ['__proto__']: 'anything' })).toBe('canary');
    expect(canary.received.length).toBe(2);
    expect(stable.received.length).toBe(2);
  });
});
