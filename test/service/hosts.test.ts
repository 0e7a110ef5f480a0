// Which unknown hosts `unknownHosts: { passthrough: [...] }` lets out: the rule the dispatcher
// asks once per origin (test/core/dispatcher.test.ts checks it on real servers), and how the
// list is written back by toJSON.
import { afterAll, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { passthroughRule } from '../../src/service/hosts.js';

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
