// A mistyped service name passes through (unknownHosts: 'passthrough') and fails to resolve: the
// caller's error says the host is not a configured meshlet service and names the closest one,
// on both passthrough paths — the dispatcher's (fetch, undici.request) and the mesh http.Agent's.
//
// How the names fail to resolve, for real and offline: this machine's resolver may well answer
// for a bare name (search domains, a resolver that knows it), so the tests do not rely on it, and
// node:dns is not mocked. Instead each passthrough path is given a DNS lookup built on
// `dns.Resolver` pointed at the DNS test server on 127.0.0.1 (test/support/dns-server.ts), which
// answers NXDOMAIN for every name: the dispatcher through `passthroughDispatcher: new Agent({
// connect: { lookup } })`, the agent through node:http's own `lookup` request option. The query
// reaching the server is checked, so the failure is a real resolution.
import dns from 'node:dns';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Agent, request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { annotateUnresolved, bareName, closestName } from '../../src/core/unknown-host.js';
import { startDns, type TestDns } from '../support/dns-server.js';
import { httpError } from '../support/http-client.js';

let server: TestDns;
let lookup: NonNullable<http.RequestOptions['lookup']>;
let passthrough: Agent;
let mesh: Mesh;

beforeAll(async () => {
  server = await startDns();
  const resolver = new dns.Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([server.server]);
  lookup = ((hostname: string, options: dns.LookupOptions, callback: (err: Error | null, address?: unknown, family?: number) => void) => {
    resolver.resolve4(hostname, (err, addresses) => {
      if (err) return callback(err);
      if (options.all) return callback(null, addresses.map((address) => ({ address, family: 4 })));
      callback(null, addresses[0], 4);
    });
  }) as unknown as typeof lookup;
  passthrough = new Agent({ connect: { lookup } as object });
  mesh = createMesh({
    services: { orders: { endpoints: ['http://127.0.0.1:9'] }, payments: { endpoints: ['http://127.0.0.1:9'] } },
    passthroughDispatcher: passthrough,
  });
});

afterAll(async () => {
  await mesh.close();
  await passthrough.close();
  await server.close();
});

const HINT = /ENOTFOUND ordrs — "ordrs" is not a configured meshlet service, so it was resolved as a host name; did you mean "orders"\?$/;

describe('the dispatcher passthrough (fetch, undici.request)', () => {
  test('undici.request: the DNS failure names the closest service and keeps its code', async () => {
    const err = (await request('http://ordrs/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err.code).toBe('ENOTFOUND');
    expect(err.message).toMatch(HINT);
    expect(err.stack?.split('\n')[0]).toMatch(HINT);
    expect(server.queries.some((q) => q.name === 'ordrs')).toBe(true);
  });

  test('fetch: the hint is in the cause of "fetch failed"', async () => {
    const err = (await mesh.fetch('http://ordrs:8080/x').catch((e: unknown) => e)) as Error & { cause: Error };
    expect(err.cause.message).toMatch(HINT);
  });

  test('a name with a dot is meant for DNS: its error is left as it is', async () => {
    const err = (await request('http://ordrs.example/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err.code).toBe('ENOTFOUND');
    expect(err.message).not.toMatch(/meshlet/);
  });

  test('with no close name, the configured ones are listed', async () => {
    const err = (await request('http://inventory/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/"inventory" is not a configured meshlet service, so it was resolved as a host name \(configured: orders, payments\)$/);
  });
});

describe('the mesh http.Agent passthrough', () => {
  test("http.get: the DNS failure names the closest service and keeps its code (the request's own lookup)", async () => {
    const agent = mesh.agent();
    try {
      const err = await httpError('http://ordrs/x', { agent, lookup });
      expect(err.code).toBe('ENOTFOUND');
      expect(err.message).toMatch(HINT);
    } finally {
      agent.destroy();
    }
  });

  test('the lookup given to the agent applies too, and a dotted name is left alone', async () => {
    const agent = mesh.agent({ lookup } as http.AgentOptions);
    try {
      expect((await httpError('http://payment/x', { agent })).message).toMatch(/did you mean "payments"\?$/);
      expect((await httpError('http://payment.example/x', { agent })).message).not.toMatch(/meshlet/);
    } finally {
      agent.destroy();
    }
  });
});

describe('the rules', () => {
  test('bare names: one label, not an IP address, not localhost', () => {
    expect(['ordrs', 'ORDRS:8080', 'localhost', 'localhost:80', '10.0.0.1', '[::1]:80', 'a.b', ''].map(bareName)).toEqual(['ordrs', 'ordrs', null, null, null, null, null, null]);
  });

  test('the closest name is suggested within a third of the length (at least 2 edits)', () => {
    const names = ['orders', 'payments', 'inventory'];
    expect(['ordrs', 'ordres', 'paymnts', 'invntory', 'redis', 'x'].map((w) => closestName(w, names))).toEqual(['orders', 'orders', 'payments', 'inventory', undefined, undefined]);
    expect(closestName('orders', [])).toBeUndefined();
  });

  test('only resolution failures are annotated, once', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(annotateUnresolved(refused, 'ordrs', ['orders']).message).toBe('connect ECONNREFUSED');
    const again = Object.assign(new Error('getaddrinfo EAI_AGAIN ordrs'), { code: 'EAI_AGAIN' });
    annotateUnresolved(again, 'ordrs', ['orders']);
    annotateUnresolved(again, 'ordrs', ['orders']);
    expect(again.message).toBe('getaddrinfo EAI_AGAIN ordrs — "ordrs" is not a configured meshlet service, so it was resolved as a host name; did you mean "orders"?');
    expect(annotateUnresolved(undefined, 'ordrs', ['orders'])).toBeUndefined();
  });
});
