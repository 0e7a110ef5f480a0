/**
 * `dns-srv` discovery against a real DNS server on 127.0.0.1 (test/support/dns-server.ts) and
 * real HTTP backends (test/support/backend.ts, all on 127.0.0.1, told apart by port). node:dns is
 * never stubbed.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import type { DiscoveryConfig } from '../../src/index.js';
import { createMesh, type Mesh } from '../../src/index.js';
import type { EndpointSpec } from '../../src/core/endpoint-spec.js';
import type { DiscoveryContext } from '../../src/discovery/discovery.js';
import { dnsSrvDiscovery, MAX_TARGETS_PER_REFRESH, type DnsSrvOptions } from '../../src/discovery/dns-srv.js';
import { startBackends, closeAll, type Backend } from '../support/backend.js';
import { startDns, type SrvAnswer, type TestDns } from '../support/dns-server.js';

const SRV = '_http._tcp.web.test';
let dns: TestDns;
let backends: Backend[] = [];
let mesh: Mesh | null = null;

beforeEach(async () => {
  dns = await startDns();
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close({ graceMs: 200 });
  mesh = null;
  await closeAll(backends);
  backends = [];
  await dns.close();
});

const stats = (m: Mesh) => m.stats().services.web!;
const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

/** Name of the backend that answered a request to the service `web`. */
async function hit(m: Mesh): Promise<string> {
  const res = await request('http://web/', { dispatcher: m.dispatcher });
  return ((await res.body.json()) as { backend: string }).backend;
}

/** Poll `check` every 20 ms until it holds; bounded generously (at least 10 s), so only a condition that never comes fails it. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`condition not met within ${Math.max(ms, 10_000)} ms`);
    },
    { interval: 20, timeout: Math.max(ms, 10_000) },
  );
}

function srvMesh(discovery: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Mesh {
  return createMesh({
    services: {
      web: { discovery: { type: 'dns-srv', name: SRV, servers: [dns.server], minRefreshMs: 20, refreshMs: 100, ...discovery }, balancer: 'round-robin', ...extra },
    },
  });
}

/** Run a source directly and collect what it pushes (the exact specs, priorities included). */
function capture(options: Record<string, unknown>): { pushes: EndpointSpec[][]; errors: string[]; stop: () => void } {
  const pushes: EndpointSpec[][] = [];
  const errors: string[] = [];
  const abort = new AbortController();
  const ctx: DiscoveryContext = {
    service: 'web',
    update: (specs) => pushes.push([...specs]),
    error: (err) => errors.push(err.message),
    signal: abort.signal,
    log: { debug: () => {}, warn: () => {} },
    now: () => performance.now(),
    random: () => 0.5,
  };
  const parsed = dnsSrvDiscovery.parseOptions!({ name: SRV, servers: [dns.server], ...options }, 'discovery') as DnsSrvOptions;
  const source = dnsSrvDiscovery.create(parsed, ctx);
  return { pushes, errors, stop: () => void source.stop() };
}
const summary = (specs: readonly EndpointSpec[]) => specs.map((s) => `${s.origin} w${s.weight} p${s.priority}`).sort();

describe('dns-srv: records to endpoints', () => {
  test('port and weight from each record; requests reach the backends in the 3:1 weights of the lowest priority', async () => {
    backends = await startBackends(3);
    const [b0, b1, b2] = backends as [Backend, Backend, Backend];
    dns.zone.set(SRV, {
      srv: [
        { target: 'a.internal', port: b0.port, priority: 10, weight: 3 },
        { target: 'a.internal', port: b1.port, priority: 10, weight: 1 },
        { target: 'b.internal', port: b2.port, priority: 20, weight: 1 },
      ],
    });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('b.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh({ refreshMs: 30_000 });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const name = await hit(mesh);
      counts[name] = (counts[name] ?? 0) + 1;
    }
    expect(counts).toEqual({ b0: 30, b1: 10 });
    expect(Object.fromEntries(stats(mesh).endpoints.map((e) => [e.url, e.weight]))).toEqual({ [b0.url]: 3, [b1.url]: 1, [b2.url]: 1 });
  });

  test('SRV priorities become groups 0, 1, 2 …; weight 0 counts as 1; one address under two records merges', async () => {
    dns.zone.set(SRV, {
      srv: [
        { target: 'a.internal', port: 8001, priority: 5, weight: 0 },
        { target: 'b.internal', port: 8002, priority: 5, weight: 60 },
        { target: 'a.internal', port: 8003, priority: 7, weight: 10 },
        { target: 'c.internal', port: 8004, priority: 65535, weight: 65535 },
        { target: 'b-alias.internal', port: 8002, priority: 5, weight: 40 }, // same address and port as b: weights add up
        { target: 'a-alias.internal', port: 8003, priority: 65535, weight: 10 }, // same as a:8003 at priority 7: the lower priority wins
      ],
    });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('a-alias.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('b.internal', { a: [{ address: '127.0.0.2' }], aaaa: [{ address: '::2' }] });
    dns.zone.set('b-alias.internal', { a: [{ address: '127.0.0.2' }] });
    dns.zone.set('c.internal', { aaaa: [{ address: '::3' }] });
    const run = capture({ refreshMs: 30_000 });
    try {
      await until(() => run.pushes.length === 1);
      expect(summary(run.pushes[0]!)).toEqual([
        'http://127.0.0.1:8001 w1 p0',
        'http://127.0.0.1:8003 w10 p1',
        'http://127.0.0.2:8002 w100 p0',
        'http://[::2]:8002 w60 p0',
        'http://[::3]:8004 w65535 p2',
      ]);
      expect(run.errors).toEqual([]);
    } finally {
      run.stop();
    }
  });

  test('more than 129 distinct priorities: the highest ones share group 128 (the answer comes over TCP)', async () => {
    const srv: SrvAnswer[] = Array.from({ length: 131 }, (_, i) => ({ target: 'a.internal', port: 9000 + i, priority: i * 3, weight: 1 }));
    dns.zone.set(SRV, { srv });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    const run = capture({ refreshMs: 30_000, family: 4 });
    try {
      await until(() => run.pushes.length === 1);
      const byPort = new Map(run.pushes[0]!.map((s) => [s.port, s.priority]));
      expect(byPort.size).toBe(131);
      expect([byPort.get(9000), byPort.get(9127), byPort.get(9128), byPort.get(9129), byPort.get(9130)]).toEqual([0, 127, 128, 128, 128]);
      expect(dns.queries.some((q) => q.type === 'SRV' && q.transport === 'tcp')).toBe(true);
    } finally {
      run.stop();
    }
  });

  test('a hundred targets (an SRV answer too big for UDP) give a hundred endpoints', async () => {
    const srv: SrvAnswer[] = Array.from({ length: 100 }, (_, i) => ({ target: `t${i}.internal`, port: 8080 }));
    dns.zone.set(SRV, { srv });
    for (let i = 0; i < 100; i++) dns.zone.set(`t${i}.internal`, { a: [{ address: `127.0.1.${i + 1}` }] });
    const run = capture({ refreshMs: 30_000, family: 4 });
    try {
      await until(() => run.pushes.length === 1);
      expect(run.pushes[0]!.map((s) => s.hostname).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `127.0.1.${i + 1}`).sort());
      expect(run.errors).toEqual([]);
      expect(dns.queries.filter((q) => q.type === 'A')).toHaveLength(100);
    } finally {
      run.stop();
    }
  });

  test('targets that do not resolve are skipped and reported; the others are published', async () => {
    backends = await startBackends(1);
    dns.zone.set(SRV, {
      srv: [
        { target: 'a.internal', port: backends[0]!.port, priority: 10 },
        { target: 'missing.internal', port: 1, priority: 10 },
        { target: 'empty.internal', port: 2, priority: 10 },
      ],
    });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('empty.internal', { srv: [] }); // exists, no A/AAAA: NODATA
    mesh = srvMesh({ refreshMs: 30_000 });
    for (let i = 0; i < 4; i++) expect(await hit(mesh)).toBe('b0');
    expect(stats(mesh).endpoints.map((e) => e.url)).toEqual([backends[0]!.url]);
    expect(stats(mesh).discoveryErrors).toBe(1);
    expect(stats(mesh).lastDiscoveryError).toBe(
      'dns-srv discovery: _http._tcp.web.test: 2 of 3 SRV targets do not resolve and were skipped: missing.internal (ENOTFOUND), empty.internal (ENODATA)',
    );
  });
});

describe('dns-srv: answers that would hurt', () => {
  test('a record with port 0 is skipped and reported; the others are published', async () => {
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: 8080 }, { target: 'b.internal', port: 0 }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('b.internal', { a: [{ address: '127.0.0.2' }] });
    const run = capture({ refreshMs: 30_000, family: 4 });
    try {
      await until(() => run.pushes.length === 1);
      expect(summary(run.pushes[0]!)).toEqual(['http://127.0.0.1:8080 w10 p0']);
      expect(run.errors).toEqual(['dns-srv discovery: _http._tcp.web.test: 1 SRV record(s) with port 0 skipped: b.internal:0']);
      expect(dns.queries.some((q) => q.name === 'b.internal')).toBe(false);
    } finally {
      run.stop();
    }
  });

  test('when every record has port 0 the last good set stays (never http://host:0)', async () => {
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: 8080 }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    const run = capture({ minRefreshMs: 20, refreshMs: 20, family: 4 });
    try {
      await until(() => run.pushes.length === 1);
      dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: 0 }] });
      await until(() => run.errors.length >= 1);
      expect(run.errors[0]).toBe('dns-srv discovery: _http._tcp.web.test failed (every SRV record has port 0 (1 SRV record(s) with port 0 skipped: a.internal:0)); keeping the last good endpoints');
      expect(run.pushes).toHaveLength(1);
    } finally {
      run.stop();
    }
  });

  test(`at most ${MAX_TARGETS_PER_REFRESH} targets are resolved per refresh: the lowest priorities and highest weights; the rest is reported`, async () => {
    const srv: SrvAnswer[] = Array.from({ length: 300 }, (_, i) => ({ target: `t${i}.internal`, port: 8080, priority: i < 200 ? 1 : 2, weight: 300 - i }));
    dns.zone.set(SRV, { srv });
    for (let i = 0; i < 300; i++) dns.zone.set(`t${i}.internal`, { a: [{ address: `127.${1 + (i >> 7)}.0.${1 + (i & 127)}` }] });
    const run = capture({ refreshMs: 30_000, family: 4 });
    try {
      await until(() => run.pushes.length === 1, 10_000);
      expect(run.pushes[0]).toHaveLength(MAX_TARGETS_PER_REFRESH);
      expect(dns.queries.filter((q) => q.type === 'A')).toHaveLength(MAX_TARGETS_PER_REFRESH);
      const asked = new Set(dns.queries.filter((q) => q.type === 'A').map((q) => Number(q.name.slice(1).split('.')[0])));
      expect([...asked].sort((a, b) => a - b)).toEqual(Array.from({ length: MAX_TARGETS_PER_REFRESH }, (_, i) => i));
      expect(run.errors).toEqual([
        `dns-srv discovery: _http._tcp.web.test: 300 SRV targets, more than the ${MAX_TARGETS_PER_REFRESH} resolved per refresh: the 44 of the highest priorities and lowest weights were not resolved and get no endpoints`,
      ]);
    } finally {
      run.stop();
    }
  });

  test('at most 32 target lookups are in flight at once', async () => {
    const srv: SrvAnswer[] = Array.from({ length: 40 }, (_, i) => ({ target: `t${i}.internal`, port: 8080 }));
    dns.zone.set(SRV, { srv });
    for (let i = 0; i < 40; i++) dns.zone.set(`t${i}.internal`, { a: [{ address: `127.0.0.${1 + i}` }] });
    dns.holdReplies = ['A']; // the SRV answer goes; every target's answer is held
    // A long per-try timeout and one try: a held reply is never asked for again.
    const run = capture({ refreshMs: 30_000, family: 4, timeoutMs: 60_000, tries: 1 });
    try {
      const targets = () => dns.queries.filter((q) => q.type === 'A');
      await until(() => dns.held >= 32);
      dns.holdReplies = []; // all go, and the rest of the lookups follow
      await until(() => run.pushes.length === 1);
      expect(run.pushes[0]).toHaveLength(40);
      expect(targets()).toHaveLength(40);
      // Each target's query arrived with at most 31 others unanswered: never more than 32 in flight.
      expect(Math.max(...targets().map((q) => q.heldBefore + 1))).toBe(32);
    } finally {
      dns.holdReplies = [];
      run.stop();
    }
  });

  test('an SRV name behind a CNAME loop: reported as an empty answer, never "(null)"', async () => {
    dns.zone.set(SRV, { cname: 'loop.internal' });
    dns.zone.set('loop.internal', { cname: SRV });
    const run = capture({ refreshMs: 30_000 });
    try {
      await until(() => run.pushes.length === 1);
      expect(run.pushes[0]).toEqual([]);
      dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: 8080 }] });
      dns.zone.set('a.internal', { cname: 'b.internal' });
      dns.zone.set('b.internal', { cname: 'a.internal' });
    } finally {
      run.stop();
    }
    const second = capture({ refreshMs: 30_000, family: 4 });
    try {
      await until(() => second.pushes.length === 1);
      expect(second.pushes[0]).toEqual([]);
      // Said why, naming the target (before any good answer too).
      expect(second.errors).toEqual([`dns-srv discovery: ${SRV} has no SRV target that resolves (a.internal (an empty answer: no record at the end of the CNAME chain, or a CNAME loop))`]);
    } finally {
      second.stop();
    }
  });
});

describe('dns-srv: priority failover', () => {
  test('the next priority group takes over when the SRV answer drops the lowest one, and gives it back', async () => {
    backends = await startBackends(2);
    const [b0, b1] = backends as [Backend, Backend];
    const both = { srv: [{ target: 'a.internal', port: b0.port, priority: 1 }, { target: 'a.internal', port: b1.port, priority: 2 }] };
    dns.zone.set(SRV, both);
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh();
    for (let i = 0; i < 3; i++) expect(await hit(mesh)).toBe('b0');
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: b1.port, priority: 2 }] });
    await until(() => stats(mesh!).endpoints.length === 1);
    for (let i = 0; i < 3; i++) expect(await hit(mesh)).toBe('b1');
    dns.zone.set(SRV, both);
    await until(() => stats(mesh!).endpoints.length === 2);
    for (let i = 0; i < 3; i++) expect(await hit(mesh)).toBe('b0');
  });

  test('the next priority group takes over when the lowest group has no available endpoint', async () => {
    backends = await startBackends(2);
    const [b0, b1] = backends as [Backend, Backend];
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: b0.port, priority: 1 }, { target: 'a.internal', port: b1.port, priority: 2 }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh({ refreshMs: 30_000 });
    expect(await hit(mesh)).toBe('b0');
    await b0.stop(); // connections refused: retried elsewhere, and b0 ejected by outlier detection
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push(await hit(mesh).catch((e: { code?: string }) => e.code ?? 'error'));
    expect(seen).toEqual(Array(10).fill('b1'));
    expect(stats(mesh).endpoints.find((e) => e.url === b0.url)!.state).toBe('unavailable');
  });
});

describe('dns-srv: failures', () => {
  test('a lone "." target means decidedly unavailable: empty at once, also after a good answer', async () => {
    dns.zone.set(SRV, { srv: [{ target: '.', port: 0, priority: 0, weight: 0 }] });
    mesh = srvMesh({}, { readyTimeoutMs: 10_000 });
    expect(await codeOf(hit(mesh))).toBe('NO_HEALTHY_ENDPOINT');
    await mesh.close();
    backends = await startBackends(1);
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: backends[0]!.port }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh({ keepForMs: 60_000 });
    expect(await hit(mesh)).toBe('b0');
    dns.zone.set(SRV, { srv: [{ target: '.', port: 0 }] });
    await until(() => stats(mesh!).endpoints.length === 0);
    expect(stats(mesh).discoveryErrors).toBe(0);
  });

  test('SERVFAIL on the SRV name keeps the last good set; a target SERVFAIL keeps that target\'s addresses', async () => {
    backends = await startBackends(2);
    const [b0, b1] = backends as [Backend, Backend];
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: b0.port }, { target: 'b.internal', port: b1.port }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    dns.zone.set('b.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh({ family: 4, timeoutMs: 50, tries: 1 });
    await until(() => stats(mesh!).endpoints.length === 2);
    dns.zone.set(SRV, { rcode: 'SERVFAIL' });
    await until(() => stats(mesh!).discoveryErrors >= 2);
    expect(stats(mesh).lastDiscoveryError).toBe('dns-srv discovery: _http._tcp.web.test failed (ESERVFAIL); keeping the last good endpoints');
    expect(new Set([await hit(mesh), await hit(mesh)])).toEqual(new Set(['b0', 'b1']));
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: b0.port }, { target: 'b.internal', port: b1.port }] });
    dns.zone.set('b.internal', { rcode: 'SERVFAIL' });
    await until(() => /resolving SRV targets failed/.test(stats(mesh!).lastDiscoveryError ?? ''));
    expect(stats(mesh).lastDiscoveryError).toBe(
      'dns-srv discovery: _http._tcp.web.test: resolving SRV targets failed, keeping their last good addresses: b.internal (ESERVFAIL)',
    );
    expect(stats(mesh).endpoints).toHaveLength(2);
  });

  test('NXDOMAIN on the SRV name after a good answer: kept for keepForMs, then dropped', async () => {
    backends = await startBackends(1);
    dns.zone.set(SRV, { srv: [{ target: 'a.internal', port: backends[0]!.port }] });
    dns.zone.set('a.internal', { a: [{ address: '127.0.0.1' }] });
    mesh = srvMesh({ keepForMs: 300 });
    expect(await hit(mesh)).toBe('b0');
    dns.zone.delete(SRV);
    await until(() => stats(mesh!).discoveryErrors >= 1);
    expect(stats(mesh).lastDiscoveryError).toMatch(/has no SRV records \(ENOTFOUND\); keeping the last good endpoints for up to 300 ms/);
    expect(await hit(mesh)).toBe('b0');
    await until(async () => (await codeOf(hit(mesh!))) === 'NO_HEALTHY_ENDPOINT', 2000);
  });

  test('stop while targets are being resolved: nothing is pushed or reported afterwards, no query follows', async () => {
    dns.zone.set(SRV, { srv: [{ target: 'slow.internal', port: 8080 }] });
    dns.zone.set('slow.internal', { noReply: true });
    // The source's timers run on the fake clock, so "nothing afterwards" is: no timer left, and none
    // fires when the clock runs out. Real I/O is awaited in setImmediate turns (the clock stays put).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const run = capture({ timeoutMs: 5000, minRefreshMs: 20, refreshMs: 20 });
    const end = performance.now() + 10_000; // a bound, not a pace: only a query that never comes fails
    while (!dns.queries.some((q) => q.name === 'slow.internal') && performance.now() < end) await new Promise((r) => setImmediate(r));
    expect(dns.queries.some((q) => q.name === 'slow.internal')).toBe(true); // a target query is in flight, unanswered
    run.stop();
    const n = dns.queries.length;
    await new Promise((r) => setImmediate(r)); // the cancelled query's callback
    expect(vi.getTimerCount()).toBe(0);
    await vi.runAllTimersAsync();
    expect(run.pushes).toEqual([]);
    expect(run.errors).toEqual([]);
    expect(dns.queries.length).toBe(n);
  });
});

describe('dns-srv: config', () => {
  test.each([
    [{ type: 'dns-srv' }, 'name', /required/],
    [{ type: 'dns-srv', name: '_http._tcp.web.test', refreshMs: 100 }, 'refreshMs', /≥ 1000/],
    [{ type: 'dns-srv', name: '_http._tcp.web.test', refreshMs: 400_000 }, 'refreshMs', /≤ 300000/],
    [{ type: 'dns-srv', name: '_http._tcp.web.test', servers: ['x'] }, 'servers[0]', /expected an IP address/],
    [{ type: 'dns-srv', name: '_http._tcp.web.test', host: 'web.test' }, 'host', /unknown field/],
    [{ type: 'dns-srv', name: '_http._tcp.web.test', port: 80 }, 'port', /unknown field/],
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

  test('refresh defaults to 30 s, kept within [minRefreshMs, maxRefreshMs]; parsed options round-trip', () => {
    const parse = (o: Record<string, unknown>) => dnsSrvDiscovery.parseOptions!({ name: SRV, ...o }, 'd');
    expect(parse({}).refreshMs).toBe(30_000);
    expect(parse({ minRefreshMs: 60_000 }).refreshMs).toBe(60_000);
    expect(parse({ maxRefreshMs: 5_000 }).refreshMs).toBe(5_000);
    const full = parse({ servers: ['127.0.0.1:53'], refreshMs: 10_000, family: 4, onNxdomain: 'drop' });
    expect(parse(JSON.parse(JSON.stringify(full)) as Record<string, unknown>)).toEqual(full);
  });
});
