/**
 * `dns` discovery against a real DNS server on 127.0.0.1 (test/support/dns-server.ts) and real
 * HTTP backends on 127.0.0.x (Linux routes all of 127/8 to lo). Short TTLs (0–1 s) and small
 * minRefreshMs keep the file within a few seconds. node:dns is never stubbed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import type { DiscoveryConfig } from '../../src/index.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { dnsDiscovery } from '../../src/discovery/dns.js';
import type { DiscoveryContext } from '../../src/discovery/discovery.js';
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
  vi.useRealTimers();
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
const stats = (m: Mesh) => m.stats().services.web!;
const urls = (m: Mesh) => stats(m).endpoints.map((e) => e.url).sort();

/**
 * Poll `check` every 20 ms until it holds: waits for a refresh. Bounded, but generously (at least
 * 10 s): it fails only when the condition never comes, not when the machine is slow.
 * (On fake timers vi.waitFor moves them on per poll: tests on fake timers wait otherwise.)
 */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`condition not met within ${Math.max(ms, 10_000)} ms`);
    },
    { interval: 20, timeout: Math.max(ms, 10_000) },
  );
}

function dnsMesh(discovery: Record<string, unknown>, extra: Record<string, unknown> = {}): Mesh {
  return createMesh({
    services: { web: { discovery: { type: 'dns', host: 'web.test', servers: [dns.server], family: 4, minRefreshMs: 50, ...discovery } as unknown as DiscoveryConfig, // tests pass overrides, some malformed on purpose
      balancer: 'round-robin', ...extra } },
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

  test('a TTL longer than maxRefreshMs is cut to maxRefreshMs; a TTL of 0 waits minRefreshMs', async () => {
    const next: number[] = [];
    const logger = { debug: (m: string) => void (/web\.test: next refresh in (\d+) ms$/.exec(m) && next.push(Number(/in (\d+) ms$/.exec(m)![1]))), warn: () => {} };
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 3600 }] });
    mesh = createMesh({ logger, services: { web: { discovery: { type: 'dns', host: 'web.test', servers: [dns.server], family: 4, minRefreshMs: 50, maxRefreshMs: 150, port: 8080 } } } });
    await until(() => next.length >= 1);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.2', ttl: 0 }] });
    await until(() => urls(mesh!).join() === 'http://127.0.0.2:8080' && next.length >= 3, 2000);
    expect(next.slice(0, 3)).toEqual([150, 50, 50]); // 3600 s cut to 150 ms; then TTL 0 → minRefreshMs
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
    ['a malformed reply', () => dns.zone.set('web.test', { malformed: true }), /EBADRESP/],
    ['server gone (connection refused)', () => void dns.close(), /ECONNREFUSED/],
  ])('%s keeps the last good set, counted in stats', async (_, fail, code) => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port, timeoutMs: 50, tries: 1 });
    expect(await at(mesh)).toBe('127.0.0.1');
    fail();
    await until(() => stats(mesh!).discoveryErrors >= 2);
    expect(await at(mesh)).toBe('127.0.0.1');
    expect(urls(mesh)).toEqual([`http://127.0.0.1:${port}`]);
    expect(stats(mesh).lastDiscoveryError).toMatch(code);
    expect(stats(mesh).lastDiscoveryError).toMatch(/^dns discovery: web\.test failed \(E[A-Z]+\); keeping the last good endpoints$/);
  });

  test('NXDOMAIN after a good answer: kept for keepForMs, then dropped; the name coming back restores it', async () => {
    const port = await serveOn('127.0.0.1');
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port, keepForMs: 400 });
    expect(await at(mesh)).toBe('127.0.0.1');
    dns.zone.delete('web.test');
    await until(() => stats(mesh!).discoveryErrors >= 1);
    expect(stats(mesh).lastDiscoveryError).toMatch(/web\.test has no A records \(ENOTFOUND\); keeping the last good endpoints for up to 400 ms/);
    expect(await at(mesh)).toBe('127.0.0.1');
    await until(async () => (await codeOf(at(mesh!))) === 'NO_HEALTHY_ENDPOINT', 2000);
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    await until(async () => (await codeOf(at(mesh!))) === 'ok', 2000);
  });

  test('a CNAME loop after a good answer is kept like NXDOMAIN, and the message says what happened, never "(null)"', async () => {
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, keepForMs: 60_000 });
    await until(() => urls(mesh!).length === 1);
    dns.zone.set('web.test', { cname: 'loop.test' });
    dns.zone.set('loop.test', { cname: 'web.test' });
    await until(() => stats(mesh!).discoveryErrors >= 1);
    expect(stats(mesh).lastDiscoveryError).toBe(
      'dns discovery: web.test has no A records (an empty answer: no record at the end of the CNAME chain, or a CNAME loop); keeping the last good endpoints for up to 60000 ms',
    );
    expect(urls(mesh)).toEqual(['http://127.0.0.1:8080']);
  });

  test('onNxdomain "keep" with keepForMs 0 drops the endpoints at the first NXDOMAIN, keeping nothing', async () => {
    const warnings: string[] = [];
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = createMesh({
      logger: { warn: (m: string) => void warnings.push(m) },
      services: { web: { discovery: { type: 'dns', host: 'web.test', servers: [dns.server], family: 4, minRefreshMs: 50, port: 8080, onNxdomain: 'keep', keepForMs: 0 } } },
    });
    await until(() => urls(mesh!).length === 1);
    expect(stats(mesh).discoveryUpdates).toBe(1);
    dns.zone.delete('web.test');
    await until(() => urls(mesh!).length === 0);
    // Dropped by that refresh, not by a keep timer: nothing was reported as kept, and the reason
    // is the NXDOMAIN itself (a kept set's drop says "for N ms").
    expect(stats(mesh).discoveryErrors).toBe(0);
    expect(stats(mesh).lastDiscoveryError ?? '').not.toMatch(/keeping/);
    expect(stats(mesh).discoveryUpdates).toBe(2);
    const drops = warnings.filter((w) => /dropping its endpoints/.test(w));
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatch(/web\.test has no A records \(ENOTFOUND\); dropping its endpoints$/);
    expect(await codeOf(at(mesh))).toBe('NO_HEALTHY_ENDPOINT');
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
    // The readyTimeout runs on the fake clock, which never moves here: the request cannot have waited for it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    mesh = dnsMesh({ host, port: 8080 }, { readyTimeoutMs: 10_000 });
    expect(await codeOf(at(mesh))).toBe('NO_HEALTHY_ENDPOINT');
    // Said why: the name (not found, or without records of the family).
    expect(stats(mesh).discoveryErrors).toBe(1);
    expect(stats(mesh).lastDiscoveryError).toBe(`dns discovery: ${host} has no A records (${host === 'nothing.test' ? 'ENOTFOUND' : 'ENODATA'})`);
  });
});

describe('dns: stopping', () => {
  /** Wait for real I/O without moving the fake clock: setImmediate turns, bounded (10 s). */
  async function io(check: () => boolean): Promise<void> {
    const end = performance.now() + 10_000;
    while (!check()) {
      if (performance.now() > end) throw new Error('condition not met within 10 s');
      await new Promise((r) => setImmediate(r));
    }
  }

  test('close during an unanswered query resolves at once; no query or timer fires afterwards', async () => {
    // The mesh's timers run on the fake clock (vi.getTimerCount() sees them all, unref'd ones too);
    // the query's timeout is c-ares's own: 60 s, beyond the test's 20 s, so close cannot wait for it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
    mesh = dnsMesh({ port: 8080, timeoutMs: 60_000, tries: 1 });
    await io(() => stats(mesh!).ready);
    dns.zone.set('web.test', { noReply: true });
    const n = dns.queries.length;
    await vi.advanceTimersByTimeAsync(50); // TTL 0: the next refresh, minRefreshMs later
    await io(() => dns.queries.length > n); // a query is in flight, unanswered
    const m = mesh;
    const s = stats(m);
    await m.close();
    mesh = null;
    const queries = dns.queries.length;
    await new Promise((r) => setImmediate(r)); // the cancelled query's callback
    expect(vi.getTimerCount()).toBe(0); // no refresh, back-off or ready timer left to fire
    await vi.runAllTimersAsync();
    expect(dns.queries.length).toBe(queries);
    expect(m.stats().services.web!.discoveryErrors).toBe(s.discoveryErrors);
  });
});

describe('dns: back-off schedule (fake timers, the real DNS server)', () => {
  /** Run a source directly; its timers are fake, its queries real. Debug lines carry the delays. */
  function run(options: Record<string, unknown>) {
    const pushes: string[][] = [];
    const errors: string[] = [];
    const delays: number[] = [];
    const abort = new AbortController();
    const ctx: DiscoveryContext = {
      service: 'web',
      update: (specs) => pushes.push(specs.map((s) => s.origin)),
      error: (err) => errors.push(err.message),
      signal: abort.signal,
      log: { debug: (m) => void (/miss \d+, next refresh in (\d+) ms/.exec(m) && delays.push(Number(/in (\d+) ms/.exec(m)![1]))), warn: () => {} },
      now: () => Date.now(),
      random: () => 0.5,
    };
    const source = dnsDiscovery.create(dnsDiscovery.parseOptions!({ host: 'web.test', port: 8080, servers: [dns.server], family: 4, ...options }, 'd'), ctx);
    return { pushes, errors, delays, stop: () => void source.stop() };
  }

  /** Wait for real I/O while timers are fake: setImmediate turns, bounded by the real clock. */
  async function until(check: () => boolean, ms = 5000): Promise<void> {
    const end = performance.now() + ms;
    while (!check()) {
      if (performance.now() > end) throw new Error(`condition not met within ${ms} ms`);
      await new Promise((r) => setImmediate(r));
    }
  }

  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  test.each([
    ['lowest draw', 0, [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]],
    ['highest draw', 0.999_999, [200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]],
  ])('failures wait minRefreshMs × 2^(n−1) × [1, 2) (%s), capped at 30 s; a good answer starts over', async (_, draw, expected) => {
    vi.spyOn(Math, 'random').mockReturnValue(draw);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    dns.zone.set('web.test', { rcode: 'SERVFAIL' });
    const r = run({ minRefreshMs: 100, timeoutMs: 200, tries: 1 });
    try {
      for (let n = 1; n <= expected.length; n++) {
        await until(() => r.delays.length === n && vi.getTimerCount() === 1); // the n-th failure came back and set its timer
        // Recovery: after the last failure the next refresh succeeds and resets the back-off.
        if (n === expected.length) dns.zone.set('web.test', { a: [{ address: '127.0.0.1', ttl: 0 }] });
        const t = Date.now();
        await vi.advanceTimersToNextTimerAsync();
        expect(Date.now() - t).toBe(r.delays[n - 1]);
      }
      expect(r.delays).toEqual(expected);
      await until(() => r.pushes.length === 1);
      expect(dns.queries).toHaveLength(expected.length + 1);
      // The next failure waits minRefreshMs × draw again.
      dns.zone.set('web.test', { rcode: 'SERVFAIL' });
      await until(() => vi.getTimerCount() === 1);
      await vi.advanceTimersToNextTimerAsync(); // TTL 0: minRefreshMs later
      await until(() => r.delays.length === expected.length + 1);
      expect(r.delays.at(-1)).toBe(expected[0]);
    } finally {
      r.stop();
    }
  });

  test('a pending back-off never keeps the process alive, and stop() clears it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    dns.zone.set('web.test', { rcode: 'SERVFAIL' });
    const r = run({ timeoutMs: 200, tries: 1 });
    await until(() => r.delays.length === 1);
    expect(vi.getTimerCount()).toBe(1);
    r.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.runAllTimersAsync();
    expect(dns.queries).toHaveLength(1);
  });
});

describe('dns: durations and renamed options', () => {
  const parse = (o: Record<string, unknown>) => dnsDiscovery.parseOptions!({ host: 'web.test', port: 80, ...o }, 'd');

  test('every duration takes ms or an Istio-style string', () => {
    expect(parse({ minRefreshMs: '250ms', maxRefreshMs: '2m', timeoutMs: '1.5s', keepForMs: '1m30s' })).toMatchObject({
      minRefreshMs: 250,
      maxRefreshMs: 120_000,
      timeoutMs: 1_500,
      keepForMs: 90_000,
    });
    expect(() => parse({ keepForMs: '10 minutes' })).toThrowError(/d\.keepForMs: expected a duration in ms or a string such as "250ms"/);
    expect(() => parse({ timeoutMs: '1.5ms' })).toThrowError(/d\.timeoutMs: expected an integer/);
  });

  test('the old names still work, with one DeprecationWarning each (code MESHLET_DEP_<FIELD>)', () => {
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    expect(parse({ keepFor: 5_000, minRefresh: 20, maxRefresh: 40_000, timeout: 300 })).toMatchObject({ keepForMs: 5_000, minRefreshMs: 20, maxRefreshMs: 40_000, timeoutMs: 300 });
    parse({ keepFor: 6_000, timeout: 400 }); // no second warning
    expect(emit.mock.calls.map((c) => c[1])).toEqual(
      ['MINREFRESH', 'MAXREFRESH', 'TIMEOUT', 'KEEPFOR'].map((f) => ({ type: 'DeprecationWarning', code: `MESHLET_DEP_${f}` })),
    );
    expect(emit.mock.calls[3]![0]).toMatch(/"keepFor" \(ms\) is deprecated; use "keepForMs"/);
    expect(() => parse({ keepFor: 1, keepForMs: 1 })).toThrowError(/d\.keepFor: give either "keepForMs" or the deprecated "keepFor", not both/);
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
    [{ ...base, minRefreshMs: 0 }, 'minRefreshMs', /≥ 10/],
    [{ ...base, minRefreshMs: 5_000, maxRefreshMs: 1_000 }, 'maxRefreshMs', /≥ 5000/],
    [{ ...base, timeoutMs: -1 }, 'timeoutMs', /≥ 10/],
    [{ ...base, tries: 1.5 }, 'tries', /integer/],
    [{ ...base, onNxdomain: 'forget' }, 'onNxdomain', /"keep", "drop"/],
    [{ ...base, keepForMs: -1 }, 'keepForMs', /≥ 0/],
    [{ ...base, ttl: 5 }, 'ttl', /unknown field/],
    [{ ...base, keepOnNxdomainMs: 5 }, 'keepOnNxdomainMs', /unknown field/],
  ])('rejects %j at discovery.%s', (discovery, field, message) => {
    let err: { code?: string; path?: string; message?: string } = {};
    try {
      createMesh({ services: { web: { discovery: discovery as DiscoveryConfig } } }); // deliberately malformed configs
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
      minRefreshMs: 1_000,
      maxRefreshMs: 300_000,
      timeoutMs: 2_000,
      tries: 2,
      onNxdomain: 'keep',
      keepForMs: 60_000,
    });
    const full = dnsDiscovery.parseOptions!({ host: 'web.test.', port: 8443, servers: ['127.0.0.1:5353', '[::1]:53', '::1', '10.0.0.1'], family: 6, protocol: 'https', minRefreshMs: 500, maxRefreshMs: 600_000, timeoutMs: 300, tries: 3, onNxdomain: 'drop', keepForMs: 0 }, 'd');
    expect(dnsDiscovery.parseOptions!(JSON.parse(JSON.stringify(full)) as Record<string, unknown>, 'd')).toEqual(full);
    expect(dnsDiscovery.parseOptions!({ host: 'web.test', port: 80, minRefreshMs: 600_000 }, 'd').maxRefreshMs).toBe(600_000);
  });
});
