// A balancer whose factory throws (a user's, registered for the mesh) must not break discovery:
// the update applies, the failure is logged, and the target's requests fail typed until it builds.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
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
