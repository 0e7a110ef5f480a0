import { describe, expect, test, vi } from 'vitest';
import { createMesh, InvalidConfigError, isMeshError, type MeshConfig } from '../../src/index.js';

const ok = ['http://127.0.0.1:3001'];

/** Each case: a config, and the path and message fragment its error must carry. */
const bad: [string, unknown, string, RegExp][] = [
  ['config is not an object', null, '', /at \(root\): expected an object, got null/],
  ['services missing', {}, 'services', /expected an object, got nothing/],
  ['unknown top-level field', { services: {}, servises: {} }, 'servises', /unknown field/],
  ['unknownHosts value', { services: {}, unknownHosts: 'drop' }, 'unknownHosts', /"passthrough", "reject"/],
  ['random is not a function', { services: {}, random: 4 }, 'random', /expected a function/],
  ['service name with upper case', { services: { Orders: { endpoints: ok } } }, 'services.Orders', /lower-case host name/],
  ['service name with underscore', { services: { my_svc: { endpoints: ok } } }, 'services.my_svc', /lower-case host name/],
  ['service config not an object', { services: { a: 'x' } }, 'services.a', /expected an object/],
  ['no discovery', { services: { a: {} } }, 'services.a.discovery', /required/],
  ['both endpoints and discovery', { services: { a: { endpoints: ok, discovery: { type: 'static', endpoints: ok } } } }, 'services.a.endpoints', /either/],
  ['unknown service field', { services: { a: { endpoints: ok, retries: 3 } } }, 'services.a.retries', /unknown field/],
  ['discovery without type', { services: { a: { discovery: { endpoints: ok } } } }, 'services.a.discovery.type', /expected a discovery type/],
  ['unknown discovery type', { services: { a: { discovery: { type: 'consul' } } } }, 'services.a.discovery.type', /unknown discovery type "consul"/],
  ['static endpoints not an array', { services: { a: { discovery: { type: 'static', endpoints: 'x' } } } }, 'services.a.discovery.endpoints', /array/],
  ['unknown static option', { services: { a: { discovery: { type: 'static', endpoints: ok, refresh: 1 } } } }, 'services.a.discovery.refresh', /unknown field/],
  ['endpoint not a URL', { services: { a: { endpoints: ['not a url'] } } }, 'services.a.endpoints[0].url', /absolute http\(s\) URL/],
  ['endpoint with a path', { services: { a: { endpoints: ['http://h:1/api'] } } }, 'services.a.endpoints[0].url', /origin only/],
  ['endpoint with credentials', { services: { a: { endpoints: ['http://u:p@h:1'] } } }, 'services.a.endpoints[0].url', /origin only/],
  ['endpoint with ftp', { services: { a: { endpoints: ['ftp://h:1'] } } }, 'services.a.endpoints[0].url', /protocol/],
  ['endpoint of a wrong type', { services: { a: { endpoints: [42] } } }, 'services.a.endpoints[0]', /URL string or an object/],
  ['weight zero', { services: { a: { endpoints: [{ url: ok[0], weight: 0 }] } } }, 'services.a.endpoints[0].weight', /integer from 1/],
  ['weight fractional', { services: { a: { endpoints: [{ url: ok[0], weight: 1.5 }] } } }, 'services.a.endpoints[0].weight', /integer from 1/],
  ['label not a string', { services: { a: { endpoints: [{ url: ok[0], labels: { v: 2 } }] } } }, 'services.a.endpoints[0].labels.v', /string/],
  ['priority out of range', { services: { a: { endpoints: [{ url: ok[0], priority: 200 }] } } }, 'services.a.endpoints[0].priority', /0 to 128/],
  ['unknown endpoint field', { services: { a: { endpoints: [{ url: ok[0], wieght: 2 }] } } }, 'services.a.endpoints[0].wieght', /unknown field/],
  ['duplicate endpoint', { services: { a: { endpoints: [ok[0], ok[0]] } } }, 'services.a.endpoints[1]', /duplicate/],
  ['unknown balancer', { services: { a: { endpoints: ok, balancer: 'fastest' } } }, 'services.a.balancer', /unknown balancer "fastest"/],
  ['balancer object without type', { services: { a: { endpoints: ok, balancer: {} } } }, 'services.a.balancer.type', /expected a balancer name/],
  ['unknown balancer option', { services: { a: { endpoints: ok, balancer: { type: 'round-robin', x: 1 } } } }, 'services.a.balancer.x', /unknown field/],
  ['hashOn with a non-hash balancer', { services: { a: { endpoints: ok, balancer: { type: 'round-robin', hashOn: { header: 'x' } } } } }, 'services.a.balancer.hashOn', /does not hash/],
  ['negative timeout', { services: { a: { endpoints: ok, timeoutMs: -1 } } }, 'services.a.timeoutMs', /≥ 0/],
  ['timeout as a malformed duration', { services: { a: { endpoints: ok, timeoutMs: 'two seconds' } } }, 'services.a.timeoutMs', /expected a duration in ms or a string such as "250ms"/],
  ['timeout NaN', { services: { a: { endpoints: ok, timeoutMs: NaN } } }, 'services.a.timeoutMs', /expected a number/],
  ['deprecated timeout still checked', { services: { a: { endpoints: ok, timeout: -1 } } }, 'services.a.timeout', /≥ 0/],
  ['old and new name together', { services: { a: { endpoints: ok, timeout: 1, timeoutMs: 1 } } }, 'services.a.timeout', /either "timeoutMs" or the deprecated "timeout"/],
  ['old and new readyTimeout together', { services: { a: { endpoints: ok, readyTimeout: 1, readyTimeoutMs: 1 } } }, 'services.a.readyTimeout', /give either "readyTimeoutMs" or the deprecated "readyTimeout", not both/],
  ['old and new perTryTimeout together', { services: { a: { endpoints: ok, retry: { perTryTimeout: 1, perTryTimeoutMs: 1 } } } }, 'services.a.retry.perTryTimeout', /give either "perTryTimeoutMs" or the deprecated "perTryTimeout", not both/],
  ["a subset's old and new timeout together", { services: { a: { endpoints: ok, subsets: { v1: { labels: { v: '1' }, timeout: 1, timeoutMs: 1 } } } } }, 'services.a.subsets.v1.timeout', /give either "timeoutMs" or the deprecated "timeout", not both/],
  ["a route's old and new timeout together", { services: { a: { endpoints: ok, routes: [{ timeout: 1, timeoutMs: 1 }] } } }, 'services.a.routes[0].timeout', /give either "timeoutMs" or the deprecated "timeout", not both/],
  ["a route's old and new perTryTimeout together", { services: { a: { endpoints: ok, routes: [{ retry: { perTryTimeout: 1, perTryTimeoutMs: '1ms' } }] } } }, 'services.a.routes[0].retry.perTryTimeout', /give either "perTryTimeoutMs" or the deprecated "perTryTimeout", not both/],
  ['a misspelled field names the nearest', { services: { a: { endpoints: ok, timeuotMs: 5 } } }, 'services.a.timeuotMs', /unknown field — did you mean "timeoutMs"\?/],
  ['a misspelled pool field', { services: { a: { endpoints: ok, pool: { conections: 5 } } } }, 'services.a.pool.conections', /did you mean "connections"/],
  ['hostHeader value', { services: { a: { endpoints: ok, hostHeader: 'x' } } }, 'services.a.hostHeader', /"service", "endpoint"/],
  ['hosts not an array', { services: { a: { endpoints: ok, hosts: 'b' } } }, 'services.a.hosts', /array/],
  ['host alias invalid', { services: { a: { endpoints: ok, hosts: ['B C'] } } }, 'services.a.hosts[0]', /host name/],
  ['host alias taken', { services: { a: { endpoints: ok }, b: { endpoints: ok, hosts: ['a'] } } }, 'services.b', /already used by service "a"/],
  ['a Kubernetes form of a name taken by an alias', { services: { orders: { endpoints: ok, namespaces: ['shop'] }, b: { endpoints: ok, hosts: ['orders.shop'] } } }, 'services.b', /host "orders.shop" is already used by service "orders"/],
  ['an alias taken by a Kubernetes form', { services: { b: { endpoints: ok, hosts: ['orders.shop.svc'] }, orders: { endpoints: ok, namespaces: ['shop'] } } }, 'services.orders', /host "orders.shop.svc" is already used by service "b"/],
  ['namespaces not a list', { services: { a: { endpoints: ok, namespaces: 'shop' } } }, 'services.a.namespaces', /list of Kubernetes namespaces/],
  ['namespace with a dot', { services: { a: { endpoints: ok, namespaces: ['shop', 'a.b'] } } }, 'services.a.namespaces[1]', /Kubernetes namespace \(a lower-case DNS label/],
  ['mesh namespace upper case', { services: {}, namespace: 'Shop' }, 'namespace', /Kubernetes namespace/],
  ['clusterDomain with a trailing dot', { services: {}, clusterDomain: 'cluster.local.' }, 'clusterDomain', /lower-case DNS domain/],
  ['unknownHosts object with another field', { services: {}, unknownHosts: { allow: [] } }, 'unknownHosts.allow', /unknown field/],
  ['passthrough not a list', { services: {}, unknownHosts: { passthrough: 'api.stripe.com' } }, 'unknownHosts.passthrough', /list of host names/],
  ['passthrough entry with a port', { services: {}, unknownHosts: { passthrough: ['a.example', 'api.stripe.com:443'] } }, 'unknownHosts.passthrough[1]', /no port: an entry matches every port/],
  ['passthrough entry as a URL', { services: {}, unknownHosts: { passthrough: ['https://api.stripe.com'] } }, 'unknownHosts.passthrough[0]', /expected a host name or IP address/],
  ['passthrough wildcard', { services: {}, unknownHosts: { passthrough: ['*.example.org'] } }, 'unknownHosts.passthrough[0]', /a wildcard is written as a suffix: "\.example\.org"/],
  ['passthrough IPv4 not canonical', { services: {}, unknownHosts: { passthrough: ['127.1'] } }, 'unknownHosts.passthrough[0]', /expected a host name or IP address/],
  ['passthrough suffix of an IP', { services: {}, unknownHosts: { passthrough: ['.10.0.0.5'] } }, 'unknownHosts.passthrough[0]', /a suffix is a domain/],
  ['passthrough entry empty', { services: {}, unknownHosts: { passthrough: [''] } }, 'unknownHosts.passthrough[0]', /got a string \(""\)/],
  ['pool connections zero', { services: { a: { endpoints: ok, pool: { connections: 0 } } } }, 'services.a.pool.connections', /≥ 1/],
  ['pool unknown field', { services: { a: { endpoints: ok, pool: { max: 1 } } } }, 'services.a.pool.max', /unknown field/],
  ['hedge not an object', { services: { a: { endpoints: ok, hedge: 3 } } }, 'services.a.hedge', /expected an object/],
  ['hedge with two delays', { services: { a: { endpoints: ok, hedge: { delayMs: 5, delayPercentile: 90 } } } }, 'services.a.hedge.delayPercentile', /give one of delayMs, delayPercentile and hedgeOnPerTryTimeout/],
  ['hedge percentile out of range', { services: { a: { endpoints: ok, hedge: { delayPercentile: 100 } } } }, 'services.a.hedge.delayPercentile', /≤ 99.9/],
  ['hedge maxAttempts 1', { services: { a: { endpoints: ok, hedge: { maxAttempts: 1 } } } }, 'services.a.hedge.maxAttempts', /≥ 2/],
  ['hedge bounds on a fixed delay', { services: { a: { endpoints: ok, hedge: { delayMs: 5, maxDelayMs: 9 } } } }, 'services.a.hedge.maxDelayMs', /adaptive delay/],
  ['hedge bounds crossed', { services: { a: { endpoints: ok, hedge: { minDelayMs: 9, maxDelayMs: 5 } } } }, 'services.a.hedge.maxDelayMs', /≥ minDelayMs \(9\)/],
  ['hedge nonFatalStatuses entry', { services: { a: { endpoints: ok, hedge: { nonFatalStatuses: [503, 'x'] } } } }, 'services.a.hedge.nonFatalStatuses[1]', /status from 200 to 599/],
  ['hedge budget field', { services: { a: { endpoints: ok, hedge: { budget: { percnt: 5 } } } } }, 'services.a.hedge.budget.percnt', /did you mean "percent"/],
  ['hedge opts a service into non-idempotent hedging', { services: { a: { endpoints: ok, hedge: { allowNonIdempotent: true } } } }, 'services.a.hedge.allowNonIdempotent', /only a route/],
  ['hedgeOnPerTryTimeout without a per-try timeout', { services: { a: { endpoints: ok, hedge: { hedgeOnPerTryTimeout: true } } } }, 'services.a.hedge.hedgeOnPerTryTimeout', /needs a per-try timeout/],
  ['a route\'s hedgeOnPerTryTimeout with its retry off', { services: { a: { endpoints: ok, retry: { perTryTimeoutMs: 50 }, routes: [{ retry: false, hedge: { hedgeOnPerTryTimeout: true } }] } } }, 'services.a.routes[0].hedge.hedgeOnPerTryTimeout', /needs a per-try timeout/],
  ['a route hedge field', { services: { a: { endpoints: ok, routes: [{ hedge: { delay: 5 } }] } } }, 'services.a.routes[0].hedge.delay', /unknown field — did you mean "delayMs"/],
  ['buffer limit negative', { services: { a: { endpoints: ok, perRequestBufferLimitBytes: -1 } } }, 'services.a.perRequestBufferLimitBytes', /≥ 0/],
  ['buffer limit fractional', { services: { a: { endpoints: ok, perRequestBufferLimitBytes: 1.5 } } }, 'services.a.perRequestBufferLimitBytes', /integer/],
  ["a subset's own peak-ewma decayMs (the estimate is the endpoint's)", { services: { a: { endpoints: ok, subsets: { v1: { labels: { v: '1' }, balancer: { type: 'peak-ewma', decayMs: 1000 } } } } } }, 'services.a.subsets.v1.balancer.decayMs', /the service's is 300 ms/],
];

describe('createMesh rejects bad configuration with the path of the field', () => {
  test.each(bad)('%s', (_name, config, path, message) => {
    let caught: unknown;
    try {
      createMesh(config as MeshConfig);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    expect(isMeshError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: 'INVALID_CONFIG', path });
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).toContain(`invalid config at ${path || '(root)'}`);
  });
});

describe('good configuration', () => {
  test("a subset's peak-ewma may repeat the service's decayMs, or leave it out", async () => {
    const mesh = createMesh({
      services: {
        a: { endpoints: ok, balancer: { type: 'peak-ewma', decayMs: 1000 }, subsets: { v1: { labels: { v: '1' }, balancer: { type: 'peak-ewma', decayMs: '1s' } }, v2: { labels: { v: '2' }, balancer: 'peak-ewma' } } },
      },
    });
    await mesh.close();
  });

  test('defaults are applied and visible in stats', async () => {
    const mesh = createMesh({ services: { a: { endpoints: ok } } });
    try {
      const s = mesh.stats().services.a!;
      expect(s.ready).toBe(true);
      expect(s.discovery).toBe('static');
      expect(s.endpoints).toEqual([
        expect.objectContaining({ url: 'http://127.0.0.1:3001', weight: 1, state: 'healthy', inFlight: 0, requests: 0 }),
      ]);
    } finally {
      await mesh.close();
    }
  });

  test('an empty services map is allowed (everything passes through)', async () => {
    const mesh = createMesh({ services: {} });
    await mesh.close();
  });
});

describe('deprecated duration names', () => {
  test('timeout, readyTimeout and retry.perTryTimeout (of the service, a subset, a route) still work, with one DeprecationWarning per name', async () => {
    // The warning is once per process per code, and other tests of this file already give
    // `timeout`: a fresh copy of the modules has a fresh record of what was warned about.
    vi.resetModules();
    const fresh = await import('../../src/index.js');
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const config = (): MeshConfig => ({
      services: {
        a: {
          endpoints: ok,
          timeout: 2_000,
          readyTimeout: 300,
          retry: { perTryTimeout: 150 },
          subsets: { v1: { labels: { v: '1' }, timeout: 900 } },
          routes: [{ subset: 'v1', timeout: 700, retry: { perTryTimeout: 50 } }],
        },
      },
    });
    try {
      const mesh = fresh.createMesh(config());
      const again = fresh.createMesh(config()); // no second warning for any of them
      try {
        const a = JSON.parse(JSON.stringify(mesh)).services.a;
        expect(a).toMatchObject({
          timeoutMs: 2_000,
          readyTimeoutMs: 300,
          retry: { perTryTimeoutMs: 150 },
          subsets: { v1: { timeoutMs: 900 } },
          routes: [{ timeoutMs: 700, retry: { perTryTimeoutMs: 50 } }],
        });
        // Written back under the current names only.
        expect(a).not.toHaveProperty('timeout');
        expect(a).not.toHaveProperty('readyTimeout');
        expect(a.retry).not.toHaveProperty('perTryTimeout');
        expect(a.subsets.v1).not.toHaveProperty('timeout');
        expect(a.routes[0]).not.toHaveProperty('timeout');
        expect(a.routes[0].retry).not.toHaveProperty('perTryTimeout');
      } finally {
        await Promise.all([mesh.close(), again.close()]);
      }
      const warnings = emit.mock.calls.map(([message, options]) => ({ message: String(message), options }));
      expect(warnings.map((w) => w.options).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual(
        ['MESHLET_DEP_PERTRYTIMEOUT', 'MESHLET_DEP_READYTIMEOUT', 'MESHLET_DEP_TIMEOUT'].map((code) => ({ type: 'DeprecationWarning', code })),
      );
      for (const [old, current] of [['timeout', 'timeoutMs'], ['readyTimeout', 'readyTimeoutMs'], ['perTryTimeout', 'perTryTimeoutMs']]) {
        expect(warnings.some((w) => w.message.includes(`"${old}" (ms) is deprecated; use "${current}"`)), old).toBe(true);
      }
    } finally {
      emit.mockRestore();
    }
  });
});
