/**
 * `dns` discovery against a real DNS server on 127.0.0.1 (test/support/dns-server.ts) and real
 * HTTP backends on 127.0.0.x (Linux routes all of 127/8 to lo). Short TTLs (0–1 s) and small
 * minRefresh keep the file within a few seconds. node:dns is never stubbed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { dnsDiscovery } from '../../src/discovery/dns.js';
import { Backoff } from '../../src/discovery/refresh.js';
import { startBackend, type Backend } from '../support/backend.js';
import { startDns, type TestDns } from '../support/dns-server.js';

let dns: TestDns;
let servers: http.Server[] = [];
let backends: Backend[] = [];
let mesh: Mesh | null = null;

beforeEach(async () => {
  dns = await startDns();
});

afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = null;
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await Promise.all(backends.map((b) => b.close()));
  servers = [];
  backends = [];
  await dns.close();
});

/** An HTTP server on `address` (any of 127.0.0.x, or ::1) answering with its own address. */
async function serveOn(address: string, port = 0): Promise<number> {
  const s = http.createServer((req, res) => res.end(JSON.stringify({ at: address })));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, address, resolve);
  });
  servers.push(s);
  return (s.address() as AddressInfo).port;
}

/** Which backend address answered a request to the service `web`. */
const at = async (m: Mesh): Promise<string> => {
  const res = await request('http://web/', { dispatcher: m.dispatcher });
  return ((await res.body.json()) as { at: string }).at;
};
const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stats = (m: Mesh) => m.stats().services.web!;
const urls = (m: Mesh) => stats(m).endpoints.map((e) => e.url).sort();

/** Poll `check` every 20 ms until it holds (bounded): timing-tolerant waits for a refresh. */
async function until(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await sleep(20);
  }
}

function dnsMesh(discovery: Record<string, unknown>, extra: Record<string, unknown> = {}): Mesh {
  return createMesh({
    services: { web: { discovery: { type: 'dns', host: 'web.test', servers: [dns.server], family: 4, minRefresh: 50, ...discovery }, balancer: 'round-robin', ...extra } },
  });
}

describe('dns: A and AAAA records', () => {
  test('requests reach a backend from test/support/backend.ts through its A record', async () => {
    const b = await startBackend('only');
    backends.push(b);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 30 }] });
    mesh = dnsMesh({ port: b.port });
    const res = await request('http://web/hello', { dispatcher: mesh.dispatcher });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { backend: string }).backend).toBe('only');
    expect(b.received.map((r) => r.url)).toEqual(['/hello']);
  });

  test('every A record is an endpoint; a changed answer is picked up when the 1 s TTL runs out', async () => {
    const port = await serveOn('127.0.0.1');
    await serveOn('127.0.0.2', port);
    await serveOn('127.0.0.3', port);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 1 }, { address: '127.0.0.2', ttl: 1 }] });
    mesh = dnsMesh({ port });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await at(mesh));
    expect([...seen].sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    const t0 = performance.now();
    dns.zone.set('web.test', { a: [{ address: '127.0.0.3', ttl: 1 }] });
    await until(() => urls(mesh!).join() === `http://127.0.0.3:${port}`);
    expect(performance.now() - t0).toBeGreaterThan(500); // not before the TTL ran out
    for (let i = 0; i < 3; i++) expect(await at(mesh)).toBe('127.0.0.3');
    expect(dns.queries.filter((q) => q.type === 'A')).toHaveLength(2);
  });

  test('a TTL longer than maxRefresh is cut to maxRefresh; a TTL of 0 waits minRefresh', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 3600 }] });
    mesh = dnsMesh({ port: 8080, maxRefresh: 150 });
    await until(() => stats(mesh!).ready);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.2', ttl: 0 }] });
    await until(() => urls(mesh!).join() === 'http://127.0.0.2:8080', 1000);
    const before = dns.queries.length;
    await sleep(500);
    // TTL 0 → every minRefresh (50 ms): about 10 queries, at least 5 and at most 12.
    expect(dns.queries.length - before).toBeGreaterThanOrEqual(5);
    expect(dns.queries.length - before).toBeLessThanOrEqual(12);
  });

  test('an unchanged answer is not pushed again (one discovery update for many queries)', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }, { address: '127.0.0.2', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080 });
    await until(() => dns.queries.length >= 5);
    expect(stats(mesh).discoveryUpdates).toBe(1);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.2', ttl: 0 }, { address: '127.0.0.1', ttl: 0 }] }); // same set, other order
    const n = dns.queries.length;
    await until(() => dns.queries.length >= n + 3);
    expect(stats(mesh).discoveryUpdates).toBe(1);
  });

  test('AAAA records give bracketed IPv6 endpoints; family "both" merges A and AAAA', async () => {
    let port = 0;
    try {
      port = await serveOn('::1');
    } catch {
      return; // no IPv6 loopback on this machine
    }
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1' }], aaaa: [{ address: '::1', ttl: 5 }] });
    mesh = dnsMesh({ port, family: 6 });
    expect(await at(mesh)).toBe('::1');
    expect(urls(mesh)).toEqual([`http://[::1]:${port}`]);
    await mesh.close();
    mesh = dnsMesh({ port, family: 'both' });
    await until(() => stats(mesh!).ready);
    expect(urls(mesh)).toEqual([`http://127.0.0.1:${port}`, `http://[::1]:${port}`]);
  });

  test('family "both": an AAAA failure keeps the last AAAA addresses while a new A answer is published', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }], aaaa: [{ address: '::1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, family: 'both' });
    await until(() => urls(mesh!).length === 2);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.2', ttl: 0 }], fail: { AAAA: 'SERVFAIL' } });
    await until(() => urls(mesh!)[0] === 'http://127.0.0.2:8080');
    expect(urls(mesh)).toEqual(['http://127.0.0.2:8080', 'http://[::1]:8080']);
    expect(stats(mesh).lastDiscoveryError).toMatch(/ESERVFAIL.*keeping the last good endpoints/);
  });

  test('after the name went away, a family that fails does not bring back its old addresses', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }], aaaa: [{ address: '::1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, family: 'both', onNxdomain: 'drop' });
    await until(() => urls(mesh!).length === 2);
    dns.zone.delete('web.test');
    await until(() => urls(mesh!).length === 0);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.2', ttl: 0 }], fail: { AAAA: 'SERVFAIL' } });
    await until(() => urls(mesh!).length > 0);
    expect(urls(mesh)).toEqual(['http://127.0.0.2:8080']);
  });

  test('records of the wrong address family in an answer are skipped', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1' }], aaaa: [{ address: '::1' }], mixFamilies: true });
    mesh = dnsMesh({ port: 8080, family: 4 });
    await until(() => stats(mesh!).ready);
    expect(urls(mesh)).toEqual(['http://127.0.0.1:8080']);
    await mesh.close();
    mesh = dnsMesh({ port: 8080, family: 6 });
    await until(() => stats(mesh!).ready);
    expect(urls(mesh)).toEqual(['http://[::1]:8080']);
  });

  test('an answer too big for UDP comes over TCP: 200 A records, 200 endpoints', async () => {
    const a = Array.from({ length: 200 }, (_, i) => ({ address: `127.0.${1 + (i >> 8)}.${1 + (i & 255)}` }));
    dns.zone.set('web.test', { a });
    mesh = dnsMesh({ port: 8080 });
    await until(() => stats(mesh!).ready);
    expect(stats(mesh).endpoints).toHaveLength(200);
    expect(dns.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });
});

describe('dns: failures', () => {
  test.each([
    ['SERVFAIL', () => dns.zone.set('web.test', { rcode: 'SERVFAIL' }), /ESERVFAIL/],
    ['REFUSED', () => dns.zone.set('web.test', { rcode: 'REFUSED' }), /EREFUSED/],
    ['no reply (timeout)', () => dns.zone.set('web.test', { noReply: true }), /ETIMEOUT/],
    ['server gone (connection refused)', () => void dns.close(), /ECONNREFUSED/],
  ])('%s keeps the last good set, counted in stats', async (_, fail, code) => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port, timeout: 50, tries: 1 });
    expect(await at(mesh)).toBe('127.0.0.1');
    fail();
    await until(() => stats(mesh!).discoveryErrors >= 2);
    expect(await at(mesh)).toBe('127.0.0.1');
    expect(urls(mesh)).toEqual([`http://127.0.0.1:${port}`]);
    expect(stats(mesh).lastDiscoveryError).toMatch(code);
    expect(stats(mesh).lastDiscoveryError).toMatch(/^dns discovery: web\.test failed \(E[A-Z]+\); keeping the last good endpoints$/);
  });

  test('failures back off: the gaps between queries never shrink, and recovery resets them', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, minRefresh: 20 });
    await until(() => stats(mesh!).ready);
    dns.zone.set('web.test', { rcode: 'SERVFAIL' });
    const from = dns.queries.length;
    await until(() => dns.queries.length >= from + 6);
    const times = dns.queries.slice(from).map((q) => q.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // gap n is in [base/2, base] with base doubling from 20 ms: each gap ≥ the one before (−5 ms timer slack).
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]! - 5);
    expect(gaps.at(-1)!).toBeGreaterThanOrEqual(150); // the 5th gap's base is 320 ms
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    const errors = stats(mesh).discoveryErrors;
    await until(() => dns.queries.length >= from + 12, 5000);
    expect(stats(mesh).discoveryErrors).toBeLessThanOrEqual(errors + 1);
  });

  test('NXDOMAIN after a good answer: kept for keepFor, then dropped; the name coming back restores it', async () => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port, keepFor: 400 });
    expect(await at(mesh)).toBe('127.0.0.1');
    dns.zone.delete('web.test');
    await until(() => stats(mesh!).discoveryErrors >= 1);
    expect(stats(mesh).lastDiscoveryError).toMatch(/web\.test has no A records \(ENOTFOUND\); keeping the last good endpoints for up to 400 ms/);
    expect(await at(mesh)).toBe('127.0.0.1');
    await until(async () => (await codeOf(at(mesh!))) === 'NO_HEALTHY_ENDPOINT', 2000);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    await until(async () => (await codeOf(at(mesh!))) === 'ok', 2000);
  });

  test('onNxdomain "drop" empties the service at the first NXDOMAIN', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, onNxdomain: 'drop' });
    await until(() => urls(mesh!).length === 1);
    dns.zone.delete('web.test');
    await until(() => urls(mesh!).length === 0);
    expect(stats(mesh).discoveryErrors).toBe(0);
  });

  test.each([
    ['NXDOMAIN', 'nothing.test'],
    ['NODATA (only AAAA records, family 4)', 'v6only.test'],
  ])('a name that never resolved (%s) fails requests fast with NO_HEALTHY_ENDPOINT', async (_, host) => {
    dns.zone.set('v6only.test', { aaaa: [{ address: '::1' }] });
    mesh = dnsMesh({ host, port: 8080 }, { readyTimeout: 10_000 });
    const t = performance.now();
    expect(await codeOf(at(mesh))).toBe('NO_HEALTHY_ENDPOINT');
    expect(performance.now() - t).toBeLessThan(2000); // well before readyTimeout
    expect(stats(mesh).discoveryErrors).toBe(0);
  });
});

describe('dns: stopping', () => {
  test('close during an unanswered query resolves at once; no query or timer fires afterwards', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timers0 = timers();
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, timeout: 5000 });
    await until(() => stats(mesh!).ready);
    dns.zone.set('web.test', { noReply: true });
    const n = dns.queries.length;
    await until(() => dns.queries.length > n); // a query is in flight, unanswered
    const m = mesh;
    const s = stats(m);
    const t = performance.now();
    await m.close();
    mesh = null;
    expect(performance.now() - t).toBeLessThan(1000); // did not wait for the 5 s query timeout
    const queries = dns.queries.length;
    await sleep(300);
    expect(dns.queries.length).toBe(queries);
    expect(m.stats().services.web!.discoveryErrors).toBe(s.discoveryErrors);
    expect(timers()).toBeLessThanOrEqual(timers0);
  });
});

describe('dns: back-off schedule', () => {
  test('from minRefresh, doubling with jitter in [base/2, base], never below minRefresh, capped at 30 s', () => {
    const mid = new Backoff(100, 300_000, () => 0.5);
    expect(Array.from({ length: 11 }, () => mid.next())).toEqual([100, 150, 300, 600, 1200, 2400, 4800, 9600, 19_200, 22_500, 22_500]);
    const high = new Backoff(100, 300_000, () => 0.999_999);
    expect(Math.round(Array.from({ length: 20 }, () => high.next()).at(-1)!)).toBe(30_000);
    const low = new Backoff(100, 1_000, () => 0);
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([100, 100, 200, 400, 500, 500]);
    low.reset();
    expect(low.next()).toBe(100);
  });
});

describe('dns: config', () => {
  const base = { type: 'dns', host: 'web.test', port: 80 };
  test.each([
    [{ type: 'dns', port: 80 }, 'host', /required/],
    [{ ...base, host: 42 }, 'host', /expected a DNS name/],
    [{ ...base, host: '10.0.0.1' }, 'host', /use static discovery/],
    [{ ...base, host: 'bad name.test' }, 'host', /expected a DNS name/],
    [{ ...base, host: `${'a'.repeat(64)}.test` }, 'host', /expected a DNS name/],
    [{ type: 'dns', host: 'x.test' }, 'port', /required/],
    [{ ...base, port: 0 }, 'port', /1 and ≤ 65535/],
    [{ ...base, port: '80' }, 'port', /expected an integer/],
    [{ ...base, family: 5 }, 'family', /expected 4, 6 or "both"/],
    [{ ...base, family: '4' }, 'family', /expected 4, 6 or "both"/],
    [{ ...base, servers: [] }, 'servers', /non-empty list/],
    [{ ...base, servers: '127.0.0.1' }, 'servers', /non-empty list/],
    [{ ...base, servers: ['dns.example'] }, 'servers[0]', /expected an IP address/],
    [{ ...base, servers: ['127.0.0.1:53', '[::1]:99999'] }, 'servers[1]', /≤ 65535/],
    [{ ...base, servers: ['[127.0.0.1]:53'] }, 'servers[0]', /expected an IP address/],
    [{ ...base, protocol: 'ftp' }, 'protocol', /"http", "https"/],
    [{ ...base, minRefresh: 0 }, 'minRefresh', /≥ 10/],
    [{ ...base, minRefresh: 5_000, maxRefresh: 1_000 }, 'maxRefresh', /≥ 5000/],
    [{ ...base, timeout: -1 }, 'timeout', /≥ 10/],
    [{ ...base, tries: 1.5 }, 'tries', /integer/],
    [{ ...base, onNxdomain: 'forget' }, 'onNxdomain', /"keep", "drop"/],
    [{ ...base, keepFor: -1 }, 'keepFor', /≥ 0/],
    [{ ...base, ttl: 5 }, 'ttl', /unknown field/],
    [{ ...base, keepOnNxdomainMs: 5 }, 'keepOnNxdomainMs', /unknown field/],
  ])('rejects %j at discovery.%s', (discovery, field, message) => {
    let err: { code?: string; path?: string; message?: string } = {};
    try {
      createMesh({ services: { web: { discovery } } });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.path).toBe(`services.web.discovery.${field}`);
    expect(err.message).toMatch(message);
  });

  test('defaults, and parsed options round-trip through JSON', () => {
    const parsed = dnsDiscovery.parseOptions!({ host: 'web.test', port: 80 }, 'd');
    expect(parsed).toEqual({
      host: 'web.test',
      port: 80,
      servers: undefined,
      family: 'both',
      protocol: 'http',
      minRefresh: 1_000,
      maxRefresh: 300_000,
      timeout: 2_000,
      tries: 2,
      onNxdomain: 'keep',
      keepFor: 60_000,
    });
    const full = dnsDiscovery.parseOptions!({ host: 'web.test.', port: 8443, servers: ['127.0.0.1:5353', '[::1]:53', '::1', '10.0.0.1'], family: 6, protocol: 'https', minRefresh: 500, maxRefresh: 600_000, timeout: 300, tries: 3, onNxdomain: 'drop', keepFor: 0 }, 'd');
    expect(dnsDiscovery.parseOptions!(JSON.parse(JSON.stringify(full)) as Record<string, unknown>, 'd')).toEqual(full);
    expect(dnsDiscovery.parseOptions!({ host: 'web.test', port: 80, minRefresh: 600_000 }, 'd').maxRefresh).toBe(600_000);
  });
});
