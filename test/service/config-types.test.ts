/**
 * The config's types: built-in balancer and discovery names and their options are checked by
 * `tsc` (a typo fails to compile), custom ones type-check once declared by module augmentation.
 * The `@ts-expect-error` lines are verified by test/typecheck.test.ts, which runs `tsc` over the
 * project; this file also checks at run time that what type-checks is accepted.
 */
import { afterAll, expect, test } from 'vitest';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';

declare module '../../src/balancers/config.js' {
  interface CustomBalancers {
    'first-only': { strict?: boolean };
  }
}

const meshes: Mesh[] = [];
afterAll(async () => {
  await Promise.all(meshes.map((m) => m.close({ graceMs: 0 })));
});

const endpoints = ['http://127.0.0.1:9'];

test('built-in balancers type-check with their own options only; a declared custom one works', () => {
  const ok: ServiceConfig[] = [
    { endpoints, balancer: 'round-robin' },
    { endpoints, balancer: { type: 'peak-ewma', decayMs: '500ms', choiceCount: 3 } },
    { endpoints, balancer: { type: 'ring-hash', hashOn: { header: 'x-user' }, minimumRingSize: 256 } },
    { endpoints, balancer: { type: 'maglev', tableSize: 65537 } },
    { endpoints, balancer: { type: 'maglev', hashOn: [{ header: 'x-user', terminal: true }, { query: 'u' }, (req) => req.header('x-tenant')] } },
    { endpoints, balancer: { type: 'first-only', strict: true } },
  ];
  const m = createMesh({
    balancers: { 'first-only': { create: (eps, _o, deps) => ({ pick: () => eps[0]?.picked ?? deps.noEndpoint }), parseOptions: (raw) => raw } },
    services: Object.fromEntries(ok.map((s, i) => [`s${i}`, s])),
  });
  meshes.push(m);
  expect(Object.keys(m.stats().services)).toHaveLength(ok.length);

  // @ts-expect-error a misspelled built-in name
  const typo: ServiceConfig = { endpoints, balancer: 'round_robin' };
  // @ts-expect-error maglev's option on ring-hash
  const crossed: ServiceConfig = { endpoints, balancer: { type: 'ring-hash', tableSize: 3 } };
  // @ts-expect-error round robin does not hash requests
  const hashless: ServiceConfig = { endpoints, balancer: { type: 'round-robin', hashOn: { header: 'x' } } };
  // @ts-expect-error terminal is a boolean
  const loose: ServiceConfig = { endpoints, balancer: { type: 'maglev', hashOn: [{ header: 'x', terminal: 'yes' }] } };
  // @ts-expect-error a discovery type nobody declared
  const unknownSource: ServiceConfig = { discovery: { type: 'consul', service: 'x' } };
  // @ts-expect-error a duration string needs a unit
  const unitless: ServiceConfig = { endpoints, timeoutMs: '30' };
  expect([typo, crossed, hashless, loose, unknownSource, unitless]).toHaveLength(6);
});
