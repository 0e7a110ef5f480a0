// Config that cannot crash later (issue #11 §3): every bad shape is an InvalidConfigError naming
// its field at createMesh — holes in lists, top-level fields of the wrong type, registrations,
// the logger (a logger that fails: test/core/log.test.ts).
import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, InvalidConfigError, type Mesh, type MeshConfig } from '../../src/index.js';

const url = 'http://127.0.0.1:3001';
const svc = (extra: Record<string, unknown>) => ({ services: { a: { endpoints: [url], ...extra } } });
const meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});

/** The InvalidConfigError createMesh throws for `config` (fails the test when it builds or throws anything else). */
function refusal(config: unknown): InvalidConfigError {
  let caught: unknown;
  try {
    meshes.push(createMesh(config as MeshConfig));
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(InvalidConfigError);
  return caught as InvalidConfigError;
}

// Holes are written with Array(n) and assignment, so that nothing else in the list is undefined.
function holey(length: number, values: Record<number, unknown>): unknown[] {
  const list = new Array<unknown>(length);
  for (const [i, v] of Object.entries(values)) list[Number(i)] = v;
  return list;
}

describe('a hole in any config list is refused at its index', () => {
  const dns = (servers: unknown) => ({ services: { a: { discovery: { type: 'dns', host: 'a.test', port: 80, servers } } } });
  const cases: [string, unknown, string][] = [
    ['endpoints', { services: { a: { endpoints: holey(2, { 1: url }) } } }, 'services.a.endpoints[0]'],
    ['static discovery endpoints', { services: { a: { discovery: { type: 'static', endpoints: holey(2, { 0: url }) } } } }, 'services.a.discovery.endpoints[1]'],
    ['hosts', svc({ hosts: holey(2, { 1: 'b' }) }), 'services.a.hosts[0]'],
    ['routes', svc({ routes: holey(1, {}) }), 'services.a.routes[0]'],
    ['a route match', svc({ routes: [{ match: holey(2, { 0: { uri: { prefix: '/' } } }) }] }), 'services.a.routes[0].match[1]'],
    ['retryOn', svc({ retry: { retryOn: holey(2, { 1: '5xx' }) } }), 'services.a.retry.retryOn[0]'],
    ['retriableStatusCodes', svc({ retry: { retriableStatusCodes: holey(2, { 0: 503 }) } }), 'services.a.retry.retriableStatusCodes[1]'],
    ["a route's retryOn", svc({ routes: [{ retry: { retryOn: holey(1, {}) } }] }), 'services.a.routes[0].retry.retryOn[0]'],
    ['expectedStatuses', svc({ healthCheck: { path: '/h', expectedStatuses: holey(2, { 0: 200 }) } }), 'services.a.healthCheck.expectedStatuses[1]'],
    ['subjectAltNames', svc({ tls: { subjectAltNames: holey(2, { 1: 'a' }) } }), 'services.a.tls.subjectAltNames[0]'],
    ['locality failover', svc({ localityLb: { failover: holey(1, {}) } }), 'services.a.localityLb.failover[0]'],
    ['locality distribute', svc({ localityLb: { distribute: holey(1, {}) } }), 'services.a.localityLb.distribute[0]'],
    ['dns servers', dns(holey(2, { 1: '127.0.0.1:53' })), 'services.a.discovery.servers[0]'],
    ["a service's interceptors", svc({ interceptors: holey(1, {}) }), 'services.a.interceptors[0]'],
    ['mesh interceptors', { services: {}, interceptors: holey(1, {}) }, 'interceptors[0]'],
  ];
  test.each(cases)('%s', (_name, config, path) => {
    const err = refusal(config);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(/a hole in the list/);
  });

  test('setEndpoints refuses a hole the same way, and keeps the endpoints it had', () => {
    const mesh = createMesh({ services: { a: { endpoints: [url] } } });
    meshes.push(mesh);
    expect(() => mesh.setEndpoints('a', holey(2, { 1: 'http://127.0.0.1:3002' }) as string[])).toThrowError(/setEndpoints\("a"\)\[0\]: a hole in the list/);
    expect(mesh.stats().services.a!.endpoints.map((e) => e.url)).toEqual([url]);
  });
});

describe('top-level fields of the wrong type are refused', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['balancers: 5', { services: {}, balancers: 5 }, 'balancers', /expected an object, got a number/],
    ['balancers: []', { services: {}, balancers: [] }, 'balancers', /expected an object, got an array/],
    ['discoveries: "x"', { services: {}, discoveries: 'x' }, 'discoveries', /expected an object/],
    ['interceptors: {}', { services: {}, interceptors: {} }, 'interceptors', /expected a list of interceptors/],
    ['random: 0.5', { services: {}, random: 0.5 }, 'random', /expected a function/],
    ['now: null', { services: {}, now: null }, 'now', /expected a function/],
    ['logger: "x"', { services: {}, logger: 'x' }, 'logger', /expected an object with debug and warn functions/],
    ['logger: null', { services: {}, logger: null }, 'logger', /expected an object/],
    ['logger.debug: []', { services: {}, logger: { debug: [] } }, 'logger.debug', /expected a function, got an array/],
    ['logger.warn: 1', { services: {}, logger: { warn: 1 } }, 'logger.warn', /expected a function, got a number \(1\)/],
  ];
  test.each(cases)('%s', (_name, config, path, message) => {
    const err = refusal(config);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(message);
  });

  test('a logger with one level, or a class instance, is fine', () => {
    class Pinoish {
      warn(): void {}
    }
    meshes.push(createMesh({ services: {}, logger: { debug() {} } }));
    meshes.push(createMesh({ services: {}, logger: new Pinoish() }));
  });
});

describe("a mesh's own balancers and discoveries are reported at their config field", () => {
  const pick = () => ({ pick: () => { throw new Error('unused'); } });
  const cases: [string, unknown, string, RegExp][] = [
    ['a balancer name that is not kebab-case', { services: {}, balancers: { My_LB: pick } }, 'balancers.My_LB', /kebab-case/],
    ['a built-in balancer name', { services: {}, balancers: { 'round-robin': pick } }, 'balancers.round-robin', /already registered/],
    ['a balancer that is not a factory', { services: {}, balancers: { mine: 5 } }, 'balancers.mine', /expected a function or an object with a create function, got a number/],
    ['a balancer parseOptions that is not a function', { services: {}, balancers: { mine: { create: pick, parseOptions: 'x' } } }, 'balancers.mine.parseOptions', /expected a function/],
    ['a discovery that is not a factory', { services: {}, discoveries: { mine: null } }, 'discoveries.mine', /expected a function or an object/],
    ['the built-in static type', { services: {}, discoveries: { static: () => ({ stop() {} }) } }, 'discoveries.static', /already registered/],
    ['a discovery toJSON that is not a function', { services: {}, discoveries: { mine: { create: () => ({ stop() {} }), toJSON: 1 } } }, 'discoveries.mine.toJSON', /expected a function/],
  ];
  test.each(cases)('%s', (_name, config, path, message) => {
    const err = refusal(config);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(message);
  });
});

describe('code of yours that throws while the config is read is an InvalidConfigError at its field, with the cause', () => {
  const boom = new TypeError("Cannot read properties of undefined (reading 'x')");
  const cases: [string, unknown, string, RegExp][] = [
    [
      "a discovery's parseOptions",
      { discoveries: { mine: { create: () => ({ stop() {} }), parseOptions: () => { throw boom; } } }, services: { a: { discovery: { type: 'mine' } } } },
      'services.a.discovery',
      /the "mine" discovery's parseOptions threw: Cannot read properties/,
    ],
    [
      "a balancer's parseOptions",
      { balancers: { mine: { create: () => ({ pick: () => null }), parseOptions: () => { throw boom; } } }, services: { a: { endpoints: [url], balancer: 'mine' } } },
      'services.a.balancer',
      /the "mine" balancer's parseOptions threw/,
    ],
    ['an interceptor factory', { services: { a: { endpoints: [url], interceptors: [() => { throw boom; }] } } }, 'services.a.interceptors[0]', /the interceptor factory threw/],
    ['a discovery factory', { discoveries: { mine: () => { throw boom; } }, services: { a: { discovery: { type: 'mine' } } } }, 'services.a.discovery', /starting the "mine" discovery threw/],
  ];
  test.each(cases)('%s', (_name, config, path, message) => {
    const err = refusal(config);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(message);
    expect(err.cause).toBe(boom);
  });

  test('an InvalidConfigError of its own passes through unchanged', () => {
    const own = new InvalidConfigError('services.a.discovery.region', 'no such region');
    const err = refusal({ discoveries: { mine: { create: () => ({ stop() {} }), parseOptions: () => { throw own; } } }, services: { a: { discovery: { type: 'mine' } } } });
    expect(err).toBe(own);
  });

  test('a discovery factory that returns no source is refused', () => {
    const err = refusal({ discoveries: { mine: () => 42 }, services: { a: { discovery: { type: 'mine' } } } });
    expect(err.path).toBe('services.a.discovery');
    expect(err.message).toMatch(/returned a number \(42\), not a source with a stop\(\) method/);
  });
});
