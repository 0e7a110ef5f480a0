import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startDns, type TestDns } from '../support/dns-server.js';

let dns: TestDns;
let servers: http.Server[] = [];
let mesh: Mesh | null = null;

/** An HTTP server on `address` (127.0.0.x all route to lo) answering with its own address. */
async function serveOn(address: string, port = 0): Promise<number> {
  const s = http.createServer((req, res) => res.end(JSON.stringify({ at: address, host: req.headers.host })));
  await new Promise<void>((r) => s.listen(port, address, r));
  servers.push(s);
  return (s.address() as AddressInfo).port;
}

beforeEach(async () => {
  dns = await startDns();
});

afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = null;
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  await dns.close();
});

const at = async (m: Mesh, host = 'web'): Promise<string> => {
  const res = await request(`http://${host}/`, { dispatcher: m.dispatcher });
  return ((await res.body.json()) as { at: string }).at;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('dns (A records)', () => {
  test('endpoints come from A records; a changed answer is picked up when the TTL runs out', async () => {
    const port = await serveOn('127.0.0.1');
    await serveOn('127.0.0.2', port);
    await serveOn('127.0.0.3', port);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 1 }, { address: '127.0.0.2', ttl: 1 }] });
    mesh = createMesh({
      services: { web: { discovery: { type: 'dns', host: 'web.test', port, family: 4, servers: [dns.server], minRefresh: 50 }, balancer: 'round-robin' } },
    });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await at(mesh));
    expect([...seen].sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.3', ttl: 1 }] });
    await sleep(1200);
    for (let i = 0; i < 3; i++) expect(await at(mesh)).toBe('127.0.0.3');
    expect(mesh.stats().services.web!.discoveryUpdates).toBeGreaterThanOrEqual(2);
  });

  test('SERVFAIL and timeouts keep the last good set, counted in stats', async () => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 1 }] });
    mesh = createMesh({
      services: { web: { discovery: { type: 'dns', host: 'web.test', port, family: 4, servers: [dns.server], minRefresh: 50, timeout: 100 } } },
    });
    expect(await at(mesh)).toBe('127.0.0.1');
    dns.zone.set('web.test', { rcode: 'SERVFAIL' });
    await sleep(1300);
    expect(await at(mesh)).toBe('127.0.0.1');
    dns.zone.set('web.test', { noReply: true });
    await sleep(800);
    expect(await at(mesh)).toBe('127.0.0.1');
    const s = mesh.stats().services.web!;
    expect(s.discoveryErrors).toBeGreaterThanOrEqual(2);
    expect(s.lastDiscoveryError).toMatch(/keeping the last good endpoints/);
  });

  test('NXDOMAIN after a good answer: kept for keepOnNxdomainMs, then dropped', async () => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 1 }] });
    mesh = createMesh({
      services: { web: { discovery: { type: 'dns', host: 'web.test', port, family: 4, servers: [dns.server], minRefresh: 50, keepOnNxdomainMs: 400 } } },
    });
    expect(await at(mesh)).toBe('127.0.0.1');
    dns.zone.delete('web.test');
    await sleep(1100);
    expect(await at(mesh)).toBe('127.0.0.1'); // first NXDOMAIN at ~1 s: kept
    await sleep(600);
    expect(await at(mesh).catch((e: { code: string }) => e.code)).toBe('NO_HEALTHY_ENDPOINT');
  });

  test('a name that never resolves fails requests fast with NO_HEALTHY_ENDPOINT', async () => {
    mesh = createMesh({ services: { web: { discovery: { type: 'dns', host: 'nothing.test', port: 80, servers: [dns.server] } } } });
    const t = performance.now();
    expect(await at(mesh).catch((e: { code: string }) => e.code)).toBe('NO_HEALTHY_ENDPOINT');
    expect(performance.now() - t).toBeLessThan(1000);
  });

  test('AAAA records give bracketed IPv6 endpoints', async () => {
    dns.zone.set('v6.test', { a: [], aaaa: [{ address: '::1', ttl: 5 }] });
    let port = 0;
    try {
      port = await serveOn('::1');
    } catch {
      return; // no IPv6 loopback on this machine
    }
    mesh = createMesh({ services: { web: { discovery: { type: 'dns', host: 'v6.test', port, family: 6, servers: [dns.server] } } } });
    expect(await at(mesh)).toBe('::1');
    expect(mesh.stats().services.web!.endpoints[0]!.url).toBe(`http://[::1]:${port}`);
  });
});

describe('dns-srv', () => {
  test('ports and weights from SRV records; the lower priority group serves, the next takes over', async () => {
    const p1 = await serveOn('127.0.0.1');
    const p2 = await serveOn('127.0.0.1');
    const p3 = await serveOn('127.0.0.2');
    dns.zone.set('_http._tcp.web.test', {
      srv: [
        { target: 'a.targets.internal', port: p1, priority: 10, weight: 3 },
        { target: 'a.targets.internal', port: p2, priority: 10, weight: 1 },
        { target: 'b.targets.internal', port: p3, priority: 20, weight: 1 },
        { target: 'missing.targets.internal', port: 1, priority: 10, weight: 1 },
      ],
    });
    dns.zone.set('a.targets.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('b.targets.internal', { a: [{ address: '127.0.0.2' }] });
    mesh = createMesh({
      services: { web: { discovery: { type: 'dns-srv', name: '_http._tcp.web.test', servers: [dns.server], minRefresh: 50, refresh: 100 }, balancer: 'round-robin' } },
    });
    for (let i = 0; i < 4; i++) expect(await at(mesh)).toBe('127.0.0.1');
    const eps = mesh.stats().services.web!.endpoints;
    expect(Object.fromEntries(eps.map((e) => [e.url, e.weight]))).toEqual({
      [`http://127.0.0.1:${p1}`]: 3,
      [`http://127.0.0.1:${p2}`]: 1,
      [`http://127.0.0.2:${p3}`]: 1,
    });
    expect(mesh.stats().services.web!.lastDiscoveryError).toMatch(/missing\.targets\.internal of _http\._tcp\.web\.test does not resolve/);
    // The priority-10 group goes away: priority 20 takes over.
    dns.zone.set('_http._tcp.web.test', { srv: [{ target: 'b.targets.internal', port: p3, priority: 20, weight: 1 }] });
    await sleep(300);
    expect(await at(mesh)).toBe('127.0.0.2');
  });

  test('a single "." target means decidedly unavailable', async () => {
    dns.zone.set('_http._tcp.gone.test', { srv: [{ target: '.', port: 0 }] });
    mesh = createMesh({ services: { web: { discovery: { type: 'dns-srv', name: '_http._tcp.gone.test', servers: [dns.server] } } } });
    expect(await at(mesh).catch((e: { code: string }) => e.code)).toBe('NO_HEALTHY_ENDPOINT');
  });
});

describe('config', () => {
  test.each([
    [{ type: 'dns', port: 80 }, /discovery\.host: required/],
    [{ type: 'dns', host: 'x' }, /discovery\.port: required/],
    [{ type: 'dns', host: 'x', port: 80, family: 5 }, /discovery\.family: expected 4, 6 or "both"/],
    [{ type: 'dns', host: 'x', port: 80, servers: ['dns.example'] }, /discovery\.servers\[0\]: expected an IP address/],
    [{ type: 'dns-srv' }, /discovery\.name: required/],
    [{ type: 'dns', host: 'x', port: 80, ttl: 5 }, /discovery\.ttl: unknown field/],
  ])('rejects %j', (discovery, message) => {
    expect(() => createMesh({ services: { web: { discovery } } })).toThrowError(message);
  });
});
