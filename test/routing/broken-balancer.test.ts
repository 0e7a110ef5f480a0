// A balancer whose factory throws (a user's, registered for the mesh) must not break discovery:
// the update applies, the failure is logged, and the target's requests fail typed until it builds.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Endpoint, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
});

test('a balancer that throws on an endpoint update: logged, requests fail with NO_HEALTHY_ENDPOINT, and it recovers when it builds again', async () => {
  backends = await startBackends(2);
  const warnings: string[] = [];
  mesh = createMesh({
    logger: { warn: (m: string) => warnings.push(m) },
    balancers: {
      'only-one': (endpoints) => {
        if (endpoints.length > 1) throw new RangeError('only one endpoint, please');
        return { pick: () => ({ type: 'pick', endpoint: endpoints[0]! }) };
      },
    },
    services: { api: { endpoints: [backends[0]!.url], balancer: 'only-one' as never } },
  });
  const get = () =>
    request('http://api/', { dispatcher: mesh!.dispatcher }).then(
      async (r) => (await r.body.dump(), r.statusCode as number | string),
      (e: { code: string; message: string }) => `${e.code}: ${e.message}`,
    );
  expect(await get()).toBe(200);

  expect(() => mesh!.setEndpoints('api', [backends[0]!.url, backends[1]!.url])).not.toThrow();
  expect(warnings.some((w) => w.includes('balancer "only-one" threw while building its picker: only one endpoint, please'))).toBe(true);
  expect(await get()).toMatch(/^NO_HEALTHY_ENDPOINT: .*balancer "only-one" threw/);
  expect(backends[1]!.received).toHaveLength(0);

  mesh.setEndpoints('api', [backends[1]!.url]);
  expect(await get()).toBe(200);
  expect(backends[1]!.received).toHaveLength(1);
});

/** A mesh over one backend whose balancer is `factory`; `get` answers a status or `CODE: message`. */
async function meshWith(factory: (endpoints: readonly Endpoint[]) => unknown, warnings: string[] = []) {
  backends = await startBackends(1);
  mesh = createMesh({
    logger: { warn: (m: string) => warnings.push(m) },
    balancers: { broken: factory as never },
    services: { api: { endpoints: [backends[0]!.url], balancer: 'broken' as never } },
  });
  return () =>
    request('http://api/', { dispatcher: mesh!.dispatcher }).then(
      async (r) => (await r.body.dump(), r.statusCode as number | string),
      (e: { code: string; message: string }) => `${e.code}: ${e.message}`,
    );
}

test.each([
  ['null', () => null, /returned null instead of a picker/],
  ['an object without pick', () => ({}), /returned an object without a pick method instead of a picker/],
  ['a Promise (an async factory)', async () => ({ pick: () => ({ type: 'fail', error: new Error('never') }) }), /returned a Promise \(create must build its picker synchronously\)/],
])('a factory that returns %s: logged, and its requests fail with NO_HEALTHY_ENDPOINT naming the balancer', async (_what, factory, message) => {
  const warnings: string[] = [];
  const get = await meshWith(factory, warnings);
  expect(warnings.some((w) => message.test(w) && w.includes('balancer "broken"'))).toBe(true);
  const answer = await get();
  expect(answer).toMatch(/^NO_HEALTHY_ENDPOINT: .*balancer "broken" returned/);
  expect(answer).toMatch(message);
  expect(backends[0]!.received).toHaveLength(0);
});

test.each([
  ['the endpoint itself (not its .picked)', (eps: readonly Endpoint[]) => eps[0], /returned an object that is not a pick result from pick/],
  ['a Promise', (eps: readonly Endpoint[]) => Promise.resolve(eps[0]!.picked), /returned a Promise \(pick must answer synchronously\)/],
  ['a number', () => 1, /returned number from pick/],
  ['a fail result whose error is a string', () => ({ type: 'fail', error: 'nope' }), /returned a fail result whose error is not an Error/],
])('a pick that returns %s ends the request with LAYER_FAILED naming the balancer (never an answer with no response)', async (_what, pick, message) => {
  const get = await meshWith((endpoints) => ({ pick: () => pick(endpoints) }));
  const answer = await get();
  expect(answer).toMatch(/^LAYER_FAILED: .*balancer "broken" returned/);
  expect(answer).toMatch(message);
  expect(backends[0]!.received).toHaveLength(0);
});
