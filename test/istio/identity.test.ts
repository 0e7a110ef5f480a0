// sourceLabels, sourceNamespace and workloadSelector evaluated against this process's identity
// (src/istio/identity.ts): from fromIstio's options or the Kubernetes downward API (a labels file
// in its key="value" format, POD_NAMESPACE), once, at conversion; unknown never widens a match.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, InvalidConfigError, type Mesh, type SourceIdentity } from '../../src/index.js';
import { parseLabelsFile } from '../../src/istio/identity.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'meshlet-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A downward-API labels file with `text`; its path. */
function labelsFile(text: string): string {
  const p = join(dir, `labels-${n++}`);
  writeFileSync(p, text);
  return p;
}
const NOWHERE = join(dir, 'absent');

const RATINGS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings }
spec:
  hosts: [ratings]
  http:
  - match: [{ sourceLabels: { app: reviews, version: v2 }, uri: { prefix: /api } }]
    route: [{ destination: { host: ratings, subset: v2 } }]
  - match: [{ sourceNamespace: staging }]
    route: [{ destination: { host: ratings, subset: v3 } }]
  - route: [{ destination: { host: ratings, subset: v1 } }]
`;

describe('the downward-API labels file', () => {
  test('key="value" lines, values quoted as Go quotes them', () => {
    const text = 'app="reviews"\npod-template-hash="7b9f4c"\nnote="a \\"quoted\\" \\\\ value\\n\\tend"\nk="caf\\u00e9 \\x41\\101"\n\n';
    expect({ ...parseLabelsFile(text, 'f') }).toEqual({ app: 'reviews', 'pod-template-hash': '7b9f4c', note: 'a "quoted" \\ value\n\tend', k: 'café AA' });
  });

  test.each([
    ['no quotes', 'app=reviews', 2],
    ['a bad escape', 'ok="1"\napp="re\\qviews"', 2],
    ['an unterminated quote', 'app="reviews', 2],
  ])('%s is an InvalidConfigError naming the file and line', (_name, text, line) => {
    const file = labelsFile(text.includes('\n') ? text : `x="1"\n${text}`);
    const err = (() => {
      try {
        fromIstio(RATINGS, { source: { labelsFile: file, env: {} } });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toContain('fromIstio options.source.labelsFile');
    expect((err as Error).message).toContain(`${file} line ${line}:`);
  });

  test('is read only when a document asks for labels', () => {
    const bad = labelsFile('not a label line');
    expect(() => fromIstio('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: r }\nspec: { hosts: [r], http: [{ route: [{ destination: { host: r } }] }] }\n', { source: { labelsFile: bad } })).not.toThrow();
  });
});

describe('source conditions, evaluated once', () => {
  const routes = (source: SourceIdentity) => fromIstio(RATINGS, { source: { env: {}, ...source } });

  test("labels from the downward-API file: this process is reviews v2, so its /api requests go to ratings v2", () => {
    const { services, unsupported } = routes({ labelsFile: labelsFile('app="reviews"\nversion="v2"\nextra="x"\n'), namespace: 'prod' });
    expect(services.ratings!.routes).toEqual([{ match: [{ uri: { prefix: '/api' } }], subset: 'v2' }, { subset: 'v1' }]);
    expect(unsupported).toEqual([]);
  });

  test('labels that are not all this process’s: the block never matches and its route is skipped, unreported', () => {
    const { services, unsupported } = routes({ labels: { app: 'reviews', version: 'v1' }, namespace: 'prod' });
    expect(services.ratings!.routes).toEqual([{ subset: 'v1' }]);
    expect(unsupported).toEqual([]);
  });

  test('the namespace: source.namespace, else the namespace option, else POD_NAMESPACE', () => {
    const labels = { app: 'productpage' };
    const v3 = [{ subset: 'v3' }, { subset: 'v1' }];
    expect(routes({ labels, namespace: 'staging' }).services.ratings!.routes).toEqual(v3);
    expect(fromIstio(RATINGS, { namespace: 'staging', source: { labels, env: {} } }).services['ratings']!.routes).toEqual(v3);
    expect(routes({ labels, env: { POD_NAMESPACE: 'staging' } }).services.ratings!.routes).toEqual(v3);
    expect(routes({ labels, env: { POD_NAMESPACE: 'prod' } }).services.ratings!.routes).toEqual([{ subset: 'v1' }]);
    expect(fromIstio(RATINGS, { namespace: 'staging', source: { labels, namespace: 'prod', env: {} } }).services['ratings.staging']).toBeUndefined();
  });

  test('an unknown identity never widens a match: the block is left out and reported, with why', () => {
    const { services, unsupported } = routes({ labelsFile: NOWHERE });
    expect(services.ratings!.routes).toEqual([{ subset: 'v1' }]);
    expect(unsupported).toEqual([
      { path: 'VirtualService ratings: spec.http[0].match[0].sourceLabels', message: expect.stringMatching(/^this process's labels are unknown \(no source.labels option; labels file .*absent: ENOENT\): this match block is left out/) },
      { path: 'VirtualService ratings: spec.http[1].match[0].sourceNamespace', message: expect.stringMatching(/^this process's namespace is unknown.*: this match block is left out/) },
    ]);
  });

  test.each([
    ['labels not an object', { labels: 'app=x' }, 'fromIstio options.source.labels'],
    ['a label value not a string', { labels: { app: 1 } }, 'fromIstio options.source.labels.app'],
    ['an empty labelsFile', { labelsFile: '' }, 'fromIstio options.source.labelsFile'],
    ['an unknown key', { label: {} }, 'fromIstio options.source.label'],
  ])('%s is an InvalidConfigError naming the option', (_name, source, path) => {
    expect(() => fromIstio(RATINGS, { source: source as never })).toThrowError(InvalidConfigError);
    expect(() => fromIstio(RATINGS, { source: source as never })).toThrowError(path);
  });
});

describe('workloadSelector', () => {
  const rule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  workloadSelector: { matchLabels: { app: productpage } }
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`;
  test('a rule for this process applies; one for other workloads is left out; unknown labels are reported', () => {
    expect(fromIstio(rule, { source: { labels: { app: 'productpage', version: 'v1' } } })).toEqual({ services: { reviews: expect.objectContaining({ balancer: 'random' }) }, unsupported: [] });
    expect(fromIstio(rule, { source: { labels: { app: 'ratings' } } })).toEqual({ services: {}, unsupported: [] });
    const unknown = fromIstio(rule, { source: { labelsFile: NOWHERE } });
    expect(unknown.services.reviews).toMatchObject({ balancer: 'random' });
    expect(unknown.unsupported).toEqual([{ path: 'DestinationRule reviews: spec.workloadSelector', message: expect.stringMatching(/^applied whatever the workload: this process's labels are unknown/) }]);
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

  test('reviews v2 (by its labels file) reaches ratings v2 on /api; another process the same YAML sends to v1', async () => {
    backends = [await startBackend('v1'), await startBackend('v2'), await startBackend('v3')];
    const endpoints = backends.map((b) => ({ url: b.url, labels: { version: b.name } }));
    const rule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings }
spec:
  host: ratings
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]
---
${RATINGS}`;
    const backendOf = async (m: Mesh, path: string) => ((await (await request(`http://ratings${path}`, { dispatcher: m.dispatcher })).body.json()) as { backend: string }).backend;
    for (const [labels, expected] of [
      ['app="reviews"\nversion="v2"\n', 'v2'],
      ['app="reviews"\nversion="v1"\n', 'v1'],
    ] as const) {
      const { services } = fromIstio(rule, { discovery: () => ({ type: 'static', endpoints }), source: { labelsFile: labelsFile(labels), env: { POD_NAMESPACE: 'prod' } } });
      mesh = createMesh({ services });
      expect(await backendOf(mesh, '/api/ratings/1')).toBe(expected);
      expect(await backendOf(mesh, '/health')).toBe('v1');
      await mesh.close();
      mesh = undefined;
    }
  });
});
