// Property tests of fromIstio (issue #11 §4): for any input it returns a config or throws an
// InvalidConfigError, never another error; what it returns, createMesh builds or refuses with an
// InvalidConfigError; Object.prototype is left as it was. Seeds are fixed, runs bounded.
import fc from 'fast-check';
import { afterAll, expect, test } from 'vitest';
import { createMesh, fromIstio, InvalidConfigError, type FromIstioOptions } from '../../src/index.js';
import { baseDocs, toYaml, type Json, type Path } from '../support/istio-docs.js';

/** Object.prototype's members, `__proto__`, `constructor` and `hasOwnProperty` among them. */
const PROTO = Object.getOwnPropertyNames(Object.prototype);
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).map((k) => [k, Object.getOwnPropertyDescriptor(Object.prototype, k)]);

/** (3) Cheap check after every run: no enumerable member was added to Object.prototype. */
function unpolluted(): void {
  for (const k in {}) throw new Error(`Object.prototype polluted with ${k}`);
  if (Object.getOwnPropertyNames(Object.prototype).length !== PROTO.length) throw new Error('Object.prototype gained a member');
}

afterAll(() => {
  // (3) Nothing was added to, removed from or replaced on Object.prototype by any run.
  const after = Object.getOwnPropertyNames(Object.prototype).map((k) => [k, Object.getOwnPropertyDescriptor(Object.prototype, k)]);
  expect(after).toEqual(prototypeBefore);
});

const FIELDS = [
  ...['apiVersion', 'kind', 'metadata', 'name', 'spec', 'host', 'hosts', 'subsets', 'labels', 'trafficPolicy', 'loadBalancer', 'simple', 'consistentHash'],
  ...['httpHeaderName', 'httpCookie', 'ringHash', 'maglev', 'localityLbSetting', 'failover', 'distribute', 'from', 'to', 'warmup', 'connectionPool'],
  ...['tcp', 'http', 'maxConnections', 'outlierDetection', 'tls', 'mode', 'retryBudget', 'percent', 'value', 'match', 'headers', 'uri', 'exact'],
  ...['prefix', 'regex', 'queryParams', 'route', 'destination', 'subset', 'weight', 'port', 'timeout', 'retries', 'retryOn', 'attempts', 'fault'],
  ...['delay', 'abort', 'fixedDelay', 'httpStatus', 'percentage', 'mirror', 'mirrors', 'mirrorPercentage'],
  ...['rewrite', 'uriRegexRewrite', 'authority', 'redirect', 'redirectCode', 'derivePort', 'directResponse', 'status', 'body', 'string', 'bytes'],
  ...['request', 'response', 'set', 'add', 'remove', 'backoff', 'ttl', 'path'],
];
const SCALARS = ['r', 'h', 'v1', 'v2', 'ROUND_ROBIN', 'RANDOM', 'MUTUAL', 'ISTIO_MUTUAL', 'DISABLE', '10s', '5xx,503', 'us-east', 'networking.istio.io/v1', 'DestinationRule', 'VirtualService'];

const key = fc.oneof(fc.constantFrom(...PROTO, ...FIELDS), fc.string({ maxLength: 6 }));
const scalar = fc.oneof(
  fc.constantFrom<Json>(...PROTO, ...SCALARS, ...FIELDS),
  fc.string({ maxLength: 8 }),
  fc.integer({ min: -5, max: 70_000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const { value } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.array(fc.tuple(key, tie('value')), { maxLength: 3 }).map((entries) => {
      const o: Record<string, Json> = {};
      for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
      return o;
    }),
  ),
}));

/** Paths to every list and object in `v`. */
function containers(v: Json, path: Path = []): Path[] {
  if (v === null || typeof v !== 'object') return [];
  const children = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [path, ...children.flatMap(([k, x]) => containers(x, [...path, k]))];
}

/** One change to a document: set, replace or delete a key (or list item) somewhere in it. */
interface Edit {
  doc: number;
  at: number;
  key: string;
  value: Json;
  remove: boolean;
}
const edit: fc.Arbitrary<Edit> = fc.record({ doc: fc.nat(), at: fc.nat(), key, value, remove: fc.boolean() });

function apply(docs: Json[], edits: readonly Edit[]): Json[] {
  const out = JSON.parse(JSON.stringify(docs)) as Json[];
  for (const e of edits) {
    const d = e.doc % out.length;
    const paths = containers(out[d]!);
    const path = paths[e.at % paths.length]!;
    let at = out[d] as Record<string | number, Json>;
    for (const k of path) at = at[k] as Record<string | number, Json>;
    const k = Array.isArray(at) ? e.at % (at.length + 1) : Object.keys(at).length > 0 && e.remove ? Object.keys(at)[e.at % Object.keys(at).length]! : e.key;
    if (e.remove && Array.isArray(at)) at.splice(k as number, 1);
    else if (e.remove) delete at[k];
    else Object.defineProperty(at, k, { value: e.value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const options: FromIstioOptions = { discovery: () => ({ type: 'static', endpoints: ['http://127.0.0.1:9'] }) };
const quiet = { debug: () => {}, warn: () => {} };

/** fromIstio's outcome: a config, or null after an InvalidConfigError; anything else fails the property. */
function convert(text: unknown, opts?: unknown): ReturnType<typeof fromIstio> | null {
  try {
    return fromIstio(text as string, opts as FromIstioOptions);
  } catch (err) {
    if (err instanceof InvalidConfigError) return null;
    throw err;
  } finally {
    unpolluted();
  }
}

/** (2) createMesh builds the result (and closes) or refuses it with an InvalidConfigError. */
async function buildsOrRefuses(result: ReturnType<typeof fromIstio>): Promise<void> {
  let mesh;
  try {
    mesh = createMesh({ services: result.services, logger: quiet });
  } catch (err) {
    if (err instanceof InvalidConfigError) return;
    throw err;
  } finally {
    unpolluted();
  }
  await mesh.close();
}

test('(1) anything at all, as text and as options: a result or an InvalidConfigError', () => {
  fc.assert(
    fc.property(fc.anything(), fc.option(fc.anything(), { nil: undefined }), (text, opts) => {
      convert(text, opts);
    }),
    { seed: 1101, numRuns: 300 },
  );
});

test('(1) arbitrary text and YAML-looking text: a result or an InvalidConfigError', () => {
  const yamlish = fc.string({ unit: fc.constantFrom(...'ab: -[]{},&*!|>\'"#%?@`\n  \t~<0.1', 'spec', 'host', '__proto__', 'constructor', '<<'), maxLength: 60 });
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 80 }), yamlish), (text) => {
      convert(text);
      convert(`apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec:\n  ${text}`);
    }),
    { seed: 1102, numRuns: 400 },
  );
});

test('(1)+(2) valid documents with random keys and values planted: fromIstio and then createMesh only ever refuse with an InvalidConfigError', async () => {
  const base = baseDocs();
  await fc.assert(
    fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), fc.boolean(), async (edits, strict) => {
      const result = convert(toYaml(apply(base, edits)), { ...options, strict });
      if (result !== null) await buildsOrRefuses(result);
    }),
    { seed: 1103, numRuns: 200 },
  );
});

test('the planted documents do reach createMesh, and sometimes build', async () => {
  // Guards the property above against testing nothing: a fair share of runs gets past fromIstio.
  const base = baseDocs();
  const samples = fc.sample(fc.array(edit, { minLength: 1, maxLength: 4 }), { seed: 1103, numRuns: 100 });
  let converted = 0;
  let built = 0;
  for (const edits of samples) {
    const result = convert(toYaml(apply(base, edits)), options);
    if (result === null) continue;
    converted++;
    try {
      await createMesh({ services: result.services, logger: quiet }).close();
      built++;
    } catch {
      // refused: counted by the property above
    }
  }
  expect(converted).toBeGreaterThan(20);
  expect(built).toBeGreaterThan(10);
});
