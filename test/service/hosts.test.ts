// Which unknown hosts `unknownHosts: { passthrough: [...] }` lets out: the rule the dispatcher
// asks once per origin (test/core/dispatcher.test.ts checks it on real servers), and how the
// list is written back by toJSON; and which host names address a service with a dot in its name.
import { request } from 'undici';
import { afterAll, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { passthroughRule } from '../../src/service/hosts.js';
import { startBackend } from '../support/backend.js';

const meshes: Mesh[] = [];
afterAll(async () => {
  await Promise.all(meshes.map((m) => m.close({ graceMs: 0 })));
});

test('exact entries match that host only; a ".suffix" matches names below it, not the bare domain', () => {
  const pass = passthroughRule({ passthrough: ['api.stripe.com', '.example.org', '10.0.0.5', '[fd00::1]'] });
  const cases: [string, boolean][] = [
    ['api.stripe.com', true],
    ['api.stripe.com.', true], // a fully qualified name is the same host
    ['stripe.com', false],
    ['evil.api.stripe.com', false],
    ['api.stripe.com.evil', false],
    ['a.example.org', true],
    ['b.a.example.org', true],
    ['example.org', false],
    ['badexample.org', false],
    ['10.0.0.5', true],
    ['10.0.0.50', false],
    ['[fd00::1]', true],
    ['[fd00::2]', false],
  ];
  expect(cases.map(([host]) => [host, pass(host)])).toEqual(cases);
  expect(passthroughRule('passthrough')('anything.example')).toBe(true);
  expect(passthroughRule('reject')('api.stripe.com')).toBe(false);
  expect(passthroughRule({ passthrough: [] })('api.stripe.com')).toBe(false);
});

test('the list is kept lower-case and without duplicates, and toJSON writes it back as a list createMesh takes again', () => {
  const m = createMesh({ services: {}, unknownHosts: { passthrough: ['API.Stripe.com', 'api.stripe.com', '.Example.org', '[FD00::1]'] } });
  meshes.push(m);
  const json = JSON.parse(JSON.stringify(m));
  expect(json.unknownHosts).toEqual({ passthrough: ['api.stripe.com', '.example.org', '[fd00::1]'] });
  const again = createMesh(json);
  meshes.push(again);
  expect(JSON.parse(JSON.stringify(again))).toEqual(json);
});

test('a service name with a dot has no Kubernetes forms: orders.v2 is reached as orders.v2 only', async () => {
  const backend = await startBackend('v2');
  try {
    const m = createMesh({ unknownHosts: 'reject', services: { 'orders.v2': { endpoints: [backend.url], namespaces: ['shop'] } } });
    meshes.push(m);
    const res = await request('http://orders.v2/k', { dispatcher: m.dispatcher });
    expect(((await res.body.json()) as { backend: string }).backend).toBe('v2');
    expect(m.dispatcher.lookup('orders.v2')).not.toBeNull();
    for (const host of ['orders.v2.shop', 'orders.v2.shop.svc', 'orders.v2.shop.svc.cluster.local']) {
      expect(m.dispatcher.lookup(host), host).toBeNull();
      const err = await request(`http://${host}/k`, { dispatcher: m.dispatcher }).then(
        (r) => r.body.dump().then(() => null),
        (e: unknown) => e,
      );
      expect(err, host).toMatchObject({ code: 'UNKNOWN_SERVICE', service: host });
    }
    expect(backend.received.map((r) => r.headers.host)).toEqual(['orders.v2']);
    // A dot-free name in the same mesh does get them: the namespace list itself is in effect.
    const control = createMesh({ unknownHosts: 'reject', services: { orders: { endpoints: [backend.url], namespaces: ['shop'] } } });
    meshes.push(control);
    for (const host of ['orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local']) expect(control.dispatcher.lookup(host), host).not.toBeNull();
  } finally {
    await backend.close();
  }
});
