/**
 * `kubernetes` discovery against an API server that misbehaves on purpose (issue 11 §1):
 * watches that end at once, watches held 1.1 s and then ended by an ERROR event or a dropped
 * connection, 410 on every watch, bookmarks, malformed objects, error bodies that echo the
 * Authorization header, 200 answers that are not JSON, FQDN slices and slices without ports. The API server is the real
 * test server on 127.0.0.1 (test/support/kube-apiserver.ts). Counting tests run on fake timers
 * (the server's and the client's), so a count never depends on how fast the machine is: the
 * bounds come from the back-off (round n+1 starts 0.8 s × 2^(n−1) × [1, 2) after round n).
 */
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import type { DiscoveryContext } from '../../src/discovery/discovery.js';
import { kubernetesDiscovery } from '../../src/discovery/kubernetes.js';
import { startBackend, type Backend } from '../support/backend.js';
import { slice, startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';

let api: KubeApiServer;
let backend: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  api = await startKubeApi();
  backend = await startBackend('b0');
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close({ graceMs: 100 });
  mesh = null;
  await api.close();
  await backend.close();
});

/** Wait for real I/O (also while timers are fake): setImmediate turns, bounded by the real clock. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

const isWatch = (r: string): boolean => /[?&]watch=(1|true)/.test(r);
const lists = (): number => api.requests.filter((r) => r.includes('/endpointslices?') && !isWatch(r)).length;
const watches = (): number => api.requests.filter((r) => r.includes('/endpointslices?') && isWatch(r)).length;

/** Run the source directly with a context that records what it pushes and reports. */
function run(extra: Record<string, unknown> = {}) {
  const updates: string[][] = [];
  const errors: string[] = [];
  const debug: string[] = [];
  const abort = new AbortController();
  const ctx: DiscoveryContext = {
    service: 'web',
    update: (specs) => updates.push(specs.map((s) => s.origin).sort()),
    error: (err) => errors.push(err.message),
    signal: abort.signal,
    log: { debug: (m) => debug.push(m), warn: () => {} },
    now: () => Date.now(),
    random: () => 0.5,
  };
  const options = kubernetesDiscovery.parseOptions!({ service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: false, ...extra }, 'discovery');
  const source = kubernetesDiscovery.create(options, ctx);
  return { updates, errors, debug, reports: () => errors.length + debug.filter((m) => m.includes('relisting')).length, stop: () => source.stop() };
}

/**
 * Let fake time run for `ms`, 10 ms at a time; after each step wait until every watch request
 * sent so far has come back and been reported (one report per failed round).
 */
async function runFor(r: ReturnType<typeof run>, ms: number): Promise<void> {
  const t0 = Date.now();
  await until(() => watches() >= 1 && r.reports() >= watches());
  while (Date.now() - t0 < ms) {
    await vi.advanceTimersByTimeAsync(10);
    await until(() => r.reports() >= watches());
  }
}

describe('kubernetes: never a storm', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
  });

  test('a watch that answers 200 and ends at once: 1 list and 2 watches in 2 s (was 3,848 watches)', async () => {
    api.watchMode = 'end-at-once';
    const r = run();
    await runFor(r, 2000);
    console.log(`end-at-once: ${lists()} lists, ${watches()} watches in 2 s (fake time)`);
    expect([lists(), watches()]).toEqual([1, 2]);
    expect(r.updates).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^kubernetes discovery: \/apis\/discovery\.k8s\.io\/v1\/namespaces\/default\/endpointslices: the watch ended after 0 ms \(0 events\); next try in (0\.[89]|1\.[0-6]) s$/);
    await r.stop();
  });

  test.each(['event', 'http'] as const)('410 Gone (%s) on every watch: 2 lists and 2 watches in 2 s, one discovery update (was ~1,500–2,100 each)', async (mode) => {
    api.goneAlways = true;
    api.goneMode = mode;
    const r = run();
    await runFor(r, 2000);
    console.log(`410 every time (${mode}): ${lists()} lists, ${watches()} watches, ${r.updates.length} updates in 2 s (fake time)`);
    expect([lists(), watches()]).toEqual([2, 2]);
    expect(r.updates).toHaveLength(1); // the relist found nothing new: nothing pushed again
    expect(r.debug.some((m) => /410 Gone.*relisting/.test(m))).toBe(true); // the first 410 is routine
    expect(r.errors).toHaveLength(1); // the second in a row is reported
    await r.stop();
  });

  test('the back-off grows while watches keep ending at once, and a healthy watch resets it', async () => {
    api.watchMode = 'end-at-once';
    const r = run({ watchTimeoutMs: 2000 });
    const delays = (): number[] => r.errors.map((m) => Number(/next try in ([\d.]+) s/.exec(m)?.[1]) * 1000);
    await runFor(r, 6000); // rounds at 0, [0.8, 1.6), then ≥ 1.6 s and ≥ 3.2 s later
    expect(delays().length).toBeGreaterThanOrEqual(3);
    for (const [n, d] of delays().entries()) {
      expect(d).toBeGreaterThanOrEqual(Math.min(30_000, 800 * 2 ** n) - 50);
      expect(d).toBeLessThanOrEqual(Math.min(30_000, 1600 * 2 ** n) + 50);
    }
    // Healthy: the server keeps the next watch open until its 2 s timeout, then ends it cleanly.
    api.watchMode = 'normal';
    const before = watches();
    // Past the pending back-off, whatever it is. A healthy watch opened during this advance may
    // already have timed out and been renewed in it (how many depends on how fast the real I/O
    // is), so what follows counts from the state after it, not from `before`.
    await vi.advanceTimersByTimeAsync(30_000);
    await until(() => watches() > before && api.watchers === 1);
    const opened = watches();
    const errors = r.errors.length;
    await vi.advanceTimersByTimeAsync(2000); // the server's timeoutSeconds=2 ends the open watch
    await until(() => watches() > opened && api.watchers === 1); // re-watched at once
    expect(r.errors).toHaveLength(errors); // a clean end is no failure: no back-off
    api.watchMode = 'end-at-once';
    api.dropWatches();
    const n = r.errors.length;
    await until(() => r.errors.length > n);
    expect(delays().at(-1)).toBeLessThanOrEqual(1600); // the back-off started over at 0.8–1.6 s
    await r.stop();
  });

  /** The delays announced by failures ("; next try in 1.2 s"), in ms, in order. */
  const delays = (r: ReturnType<typeof run>): number[] => r.errors.flatMap((m) => (/next try in ([\d.]+) s$/.test(m) ? [Number(/next try in ([\d.]+) s$/.exec(m)![1]) * 1000] : []));
  /** Round n's delay (from 0) is 0.8 s × 2^n × [1, 2), capped at 30 s; ±50 ms for the one-decimal message. */
  const expectGrowing = (ds: number[]): void => {
    for (const [n, d] of ds.entries()) {
      expect(d).toBeGreaterThanOrEqual(Math.min(30_000, 800 * 2 ** n) - 50);
      expect(d).toBeLessThanOrEqual(Math.min(30_000, 1600 * 2 ** n) + 50);
    }
  };

  /**
   * Wait (real I/O) until the client is idle on the fake clock: every watch the server has ended
   * has been reported, and either a watch is open or the client waits out a back-off.
   */
  async function settled(r: ReturnType<typeof run>): Promise<void> {
    await until(() => {
      if (r.reports() < watches() - api.watchers) return false;
      return api.watchers === 1 || (r.reports() === watches() && /next try in/.test(r.errors.at(-1) ?? ''));
    });
  }

  /** Let fake time run for `ms`, 10 ms at a time, the client settled after each step (watches held open). */
  async function holdFor(r: ReturnType<typeof run>, ms: number): Promise<void> {
    const t0 = Date.now();
    await settled(r);
    while (Date.now() - t0 < ms) {
      await vi.advanceTimersByTimeAsync(10);
      await settled(r);
    }
  }

  test('an ERROR event (500) after 1.1 s backs off, the delays growing (was a new watch every 1.1 s, back-off reset)', async () => {
    api.watchCut = { afterMs: 1100, how: 'error' };
    const r = run();
    await holdFor(r, 60_000);
    console.log(`ERROR 500 after 1.1 s: ${watches()} watches in 60 s (fake time), delays ${delays(r).join(', ')} ms`);
    // Rounds start ≥ 1.1 s + 0.8 s × 2^n apart: at most 7 in 60 s (55 before, measured).
    expect(watches()).toBeLessThanOrEqual(7);
    expect(lists()).toBe(1); // an ERROR event keeps the resourceVersion: no relist
    expect(r.errors.length).toBeGreaterThanOrEqual(5);
    for (const m of r.errors) expect(m).toMatch(/: watch ERROR event 500: InternalError: an internal error occurred; next try in [\d.]+ s$/);
    expectGrowing(delays(r));
    await r.stop();
  });

  test('a connection dropped after 1.1 s, again and again: 3 quick re-watches, then the delays grow; a watch open 30 s starts over', async () => {
    api.watchCut = { afterMs: 1100, how: 'drop' };
    const r = run();
    await holdFor(r, 40_000);
    console.log(`dropped after 1.1 s: ${watches()} watches in 40 s (fake time), delays ${delays(r).join(', ')} ms`);
    const kinds = (from: number): string[] => r.errors.slice(from).map((m) => (/; re-watching$/.test(m) ? 'at once' : /next try in/.test(m) ? 'back-off' : m));
    expect(kinds(0).slice(0, 4)).toEqual(['at once', 'at once', 'at once', 'back-off']);
    expect(new Set(kinds(3))).toEqual(new Set(['back-off']));
    expect(r.errors[0]).toMatch(/: the watch broke after 11\d\d ms and \d+ events \(.+\); re-watching$/);
    expect(r.errors[3]).toMatch(/: the watch broke after 11\d\d ms and \d+ events \(.+\), the 4th watch in a row to end within 30 s; next try in [\d.]+ s$/);
    expectGrowing(delays(r));
    // 4 watches in the first 4.4 s, then ≥ 1.1 s + 0.8 s × 2^n apart: at most 10 in 40 s (37 before, measured).
    expect(watches()).toBeLessThanOrEqual(10);
    expect(lists()).toBe(1);

    // A watch that stays open 30 s has settled: dropped then, it is followed at once, and the count starts over.
    api.watchCut = null;
    await vi.advanceTimersByTimeAsync(30_000); // past the pending back-off (at most the 30 s cap)
    await until(() => api.watchers === 1);
    await vi.advanceTimersByTimeAsync(30_000);
    const n = r.errors.length;
    api.watchCut = { afterMs: 1100, how: 'drop' };
    api.dropWatches();
    await until(() => r.errors.length > n);
    expect(r.errors[n]).toMatch(/: the watch broke after [3-9]\d{4} ms and \d+ events \(.+\); re-watching$/);
    await holdFor(r, 5000);
    expect(kinds(n + 1).slice(0, 4)).toEqual(['at once', 'at once', 'at once', 'back-off']);
    expect(delays(r).at(-1)).toBeLessThanOrEqual(1600 + 50); // the back-off started over too
    await r.stop();
  });

  test('stop() ends every loop: no request and no timer afterwards', async () => {
    api.watchMode = 'end-at-once';
    const r = run();
    await runFor(r, 100);
    await r.stop();
    const n = api.requests.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(api.requests.length).toBe(n);
  });
});

describe('kubernetes: bookmarks, malformed objects, odd slices', () => {
  test('bookmarks (resourceVersion, no name) are no errors, and the next watch starts from theirs', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    const r = run();
    await until(() => api.watchers === 1 && r.updates.length === 1);
    const listRv = api.resourceVersion;
    api.apply('endpointslices', 'default', slice('other-a', 'payments', [{ ip: '127.0.0.9' }], 80)); // moves the RV; not our service
    const bookmarkRv = api.resourceVersion;
    expect(bookmarkRv).not.toBe(listRv);
    const sent = api.bookmarksSent;
    await until(() => api.bookmarksSent >= sent + 2);
    expect(r.errors).toEqual([]);
    api.dropWatches();
    const n = watches();
    await until(() => watches() > n);
    expect(api.requests.filter(isWatch).at(-1)).toContain(`resourceVersion=${bookmarkRv}`);
    await r.stop();
  });

  test('a malformed slice is skipped and reported; the other slices and later events still apply', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    api.apply('endpointslices', 'default', { ...slice('web-bad1', 'web', [{ ip: '127.0.0.2' }], 80), ports: 'http' });
    const r = run();
    await until(() => r.updates.length === 1);
    expect(r.updates[0]).toEqual([`http://127.0.0.1:${backend.port}`]);
    expect(r.errors).toEqual(['kubernetes discovery: slice web-bad1 is malformed (ports is "http", expected a list); skipped']);
    api.apply('endpointslices', 'default', { ...slice('web-bad2', 'web', [{ ip: '127.0.0.3' }], 80), ports: [null] });
    api.apply('endpointslices', 'default', { ...slice('web-c', 'web', [{ ip: '127.0.0.4' }], 80), endpoints: [null, { addresses: ['127.0.0.5'] }, { addresses: ['::1'] }], ports: [{ name: 'http', port: 8080 }] });
    await until(() => r.updates.length === 2);
    expect(r.updates[1]).toEqual([`http://127.0.0.1:${backend.port}`, 'http://127.0.0.5:8080']);
    // A later malformed version of a good slice: reported, and its previous version stays.
    api.apply('endpointslices', 'default', { ...slice('web-a', 'web', [], 0), addressType: 'IPv5' });
    api.apply('endpointslices', 'default', slice('web-d', 'web', [{ ip: '127.0.0.6' }], 8080));
    await until(() => r.updates.length === 3);
    expect(r.updates[2]).toEqual([`http://127.0.0.1:${backend.port}`, 'http://127.0.0.5:8080', 'http://127.0.0.6:8080']);
    expect(r.errors.slice(1)).toEqual([
      'kubernetes discovery: slice web-bad2 is malformed (ports[0] is null, expected an object); skipped',
      'kubernetes discovery: slice web-c skipped 2 endpoint(s): endpoints[0] is null; endpoints[2]: address "::1" is not IPv4',
      'kubernetes discovery: slice web-a is malformed (addressType is "IPv5", expected "IPv4", "IPv6" or "FQDN"); skipped, its previous version stays',
    ]);
    await r.stop();
  });

  test('a slice whose every endpoint is malformed is reported like a partly bad one (was skipped in silence, as if it had no pods)', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    api.apply('endpointslices', 'default', { ...slice('web-bad', 'web', [], 80), endpoints: [{ addresses: [] }, { addresses: ['not-an-ip'] }, { addresses: ['::1'] }, null] });
    api.apply('endpointslices', 'default', { ...slice('web-empty', 'web', [], 80), endpoints: [] }); // no pods: still nothing to say
    const r = run();
    await until(() => r.updates.length === 1);
    expect(r.updates[0]).toEqual([`http://127.0.0.1:${backend.port}`]);
    expect(r.errors).toEqual(['kubernetes discovery: slice web-bad skipped 4 endpoint(s): endpoints[0] has no address; endpoints[1]: address "not-an-ip" is not IPv4; endpoints[2]: address "::1" is not IPv4; …']);
    // A later version as bad: reported again (once per version), by a watch event this time.
    api.apply('endpointslices', 'default', { ...slice('web-bad', 'web', [], 80), endpoints: [null] });
    await until(() => r.errors.length === 2);
    expect(r.errors[1]).toBe('kubernetes discovery: slice web-bad skipped 1 endpoint(s): endpoints[0] is null');
    await r.stop();
  });

  test('FQDN slices are skipped and reported; a slice without ports uses a numeric port and is reported for a named one', async () => {
    api.apply('endpointslices', 'default', { ...slice('web-fqdn', 'web', [], 80), addressType: 'FQDN', endpoints: [{ addresses: ['pod-1.example.test'] }] });
    api.apply('endpointslices', 'default', { ...slice('web-noports', 'web', [{ ip: '127.0.0.1' }], 0), ports: null });
    api.apply('endpointslices', 'default', { ...slice('web-empty', 'web', [], 0), ports: null, endpoints: null }); // a Service with no pods: nothing to say
    const named = run();
    await until(() => named.updates.length === 1 && named.errors.length === 2);
    expect(named.updates[0]).toEqual([]);
    expect(named.errors.sort()).toEqual([
      'kubernetes discovery: slice web-fqdn has addressType FQDN (deprecated; not used by meshlet): its 1 endpoint(s) are skipped',
      'kubernetes discovery: slice web-noports has no ports, so no port named "http": its 1 endpoint(s) are skipped',
    ]);
    await named.stop();
    const numbered = run({ port: backend.port });
    await until(() => numbered.updates.length === 1 && numbered.errors.length === 1);
    expect(numbered.updates[0]).toEqual([`http://127.0.0.1:${backend.port}`]);
    await numbered.stop();
  });
});

describe('kubernetes: every request has a deadline', () => {
  test('a Service read (for pod labels) that never answers holds the endpoints back 30 s, then they go out without pod labels, reported (was minutes, unreported)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    api.apply('services', 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' } } });
    api.apply('pods', 'default', { metadata: { name: 'web-0', labels: { app: 'web', version: 'v1' } }, spec: {} });
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1', pod: 'web-0' }], backend.port));
    api.hang = /^GET \/api\/v1\/namespaces\/default\/services\/web$/;
    mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: true } } } });
    const updates: number[] = [];
    mesh.on('discovery-update', (e) => updates.push(e.endpoints));
    const web = () => mesh!.stats().services.web!;
    await until(() => api.requests.some((r) => r.endsWith('/services/web')) && api.watchers === 1); // slices listed and watched; the Service read hangs
    await vi.advanceTimersByTimeAsync(29_900);
    expect([updates.length, web().discoveryErrors]).toEqual([0, 0]); // still waiting for the pods, within the deadline
    await vi.advanceTimersByTimeAsync(100);
    await until(() => updates.length === 1);
    expect(web().lastDiscoveryError).toMatch(/^kubernetes discovery: pod labels unavailable for now \(reading service web timed out after 30 s\); next try in [\d.]+ s$/);
    expect(web().endpoints.map((e) => [e.url, e.labels.version])).toEqual([[`http://127.0.0.1:${backend.port}`, undefined]]);
    // The read is retried like any failure: once it answers, the pods are watched and their labels arrive.
    api.hang = null;
    await vi.advanceTimersByTimeAsync(1600); // past the first back-off (0.8–1.6 s)
    await until(() => web().endpoints[0]?.labels.version === 'v1');
    expect(api.requests.filter((r) => r.endsWith('/services/web'))).toHaveLength(2);
  });
});

describe('kubernetes: what a failure says', () => {
  test('a list (and a Service read) that gets no answer says which request failed, never the token (was the bare "connect ECONNREFUSED …")', async () => {
    const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl';
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r)); // nothing listens there now: connection refused
    const seen: string[] = [];
    mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: `http://127.0.0.1:${port}`, token: TOKEN, podLabels: true } } } });
    mesh.on('discovery-error', (e) => seen.push(e.message));
    await until(() => seen.some((m) => m.includes('/endpointslices')) && seen.some((m) => m.includes('reading service web')));
    const refused = `connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`;
    expect(seen.find((m) => m.includes('/endpointslices'))).toMatch(new RegExp(`^kubernetes discovery: /apis/discovery\\.k8s\\.io/v1/namespaces/default/endpointslices: the list request failed \\(${refused}\\); next try in [\\d.]+ s$`));
    expect(seen.find((m) => m.includes('reading service web'))).toMatch(new RegExp(`^kubernetes discovery: pod labels unavailable for now \\(reading service web failed \\(${refused}\\)\\); next try in [\\d.]+ s$`));
    expect([...seen, JSON.stringify(mesh.stats())].join('\n')).not.toContain(TOKEN.split('.')[0]);
  });

  test('watch lines that are a list, have no type, or name no object are reported as such (was "skipped a undefined event")', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    const r = run();
    await until(() => api.watchers === 1 && r.updates.length === 1);
    api.sendRaw('[1,2]');
    api.sendRaw('{"object":{"metadata":{"name":"web-b"}}}');
    api.sendRaw('{"type":"ADDED","object":{}}');
    api.sendRaw('{"type":"MODIFIED","object":{}}');
    await until(() => r.errors.length === 4);
    const where = 'kubernetes discovery: /apis/discovery.k8s.io/v1/namespaces/default/endpointslices';
    expect(r.errors).toEqual([
      `${where}: skipped a watch event that is not an object (a list)`,
      `${where}: skipped a watch event without a type`,
      `${where}: skipped an "ADDED" event without an object name`,
      `${where}: skipped a "MODIFIED" event without an object name`,
    ]);
    await r.stop();
  });
});

describe('kubernetes: watch lines', () => {
  const where = 'kubernetes discovery: /apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

  test('a line past 8 MiB ends the watch as failed, reported; it backs off and relists (was buffered without bound)', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    const r = run();
    await until(() => api.watchers === 1 && r.updates.length === 1);
    api.writeRaw('{"type":"ADDED","object":{"metadata":{"name":"web-huge"},"pad":"');
    const MiB = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 9; i++) api.writeRaw(MiB); // 9 MiB and no newline
    await until(() => r.errors.length === 1);
    expect(r.errors[0]).toMatch(new RegExp(`^${where}: a watch event over 8 MiB \\(no newline within 8388608 bytes\\); ended the watch, relisting; next try in (0\\.[89]|1\\.[0-6]) s$`));
    await until(() => lists() === 2 && api.watchers === 1); // after the back-off: a new list, then a new watch
    // The watch after the relist works: an event is applied.
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.2' }], backend.port));
    await until(() => r.updates.length === 2);
    expect(r.updates[1]).toEqual([`http://127.0.0.2:${backend.port}`]);
    expect(r.errors).toHaveLength(1);
    await r.stop();
  });

  test('a stream that ends inside an event is reported; the cut event is not applied (was dropped in silence)', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    const r = run();
    await until(() => api.watchers === 1 && r.updates.length === 1);
    const cut = '{"type":"DELETED","object":{"metadata":{"name":"web-a"';
    api.writeRaw(cut);
    api.endWatches();
    await until(() => r.errors.length >= 1);
    expect(r.errors[0]).toBe(`${where}: the watch stream ended inside an event (${Buffer.byteLength(cut)} bytes after its last newline); skipped`);
    expect(r.updates).toHaveLength(1); // web-a was not deleted
    await r.stop();
  });

  test('an event split across many small writes, a UTF-8 character cut in two among them, is read whole', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: false } } } });
    const web = () => mesh!.stats().services.web!;
    await until(() => api.watchers === 1 && web().endpoints.length === 1);
    const event = Buffer.from(JSON.stringify({ type: 'MODIFIED', object: slice('web-a', 'web', [{ ip: '127.0.0.1', zone: 'zürich-1' }], backend.port) }) + '\n');
    const u = event.indexOf(Buffer.from('ü'));
    // Cut inside the ü (2 bytes), then the rest in 7-byte writes.
    // I/O turns between the writes, so the client is likely to read them apart (nothing asserted
    // depends on it: read together, the event must come out whole all the same).
    const turns = async (): Promise<void> => {
      for (let n = 0; n < 5; n++) await new Promise((r) => setImmediate(r));
    };
    api.writeRaw(event.subarray(0, u + 1));
    await turns();
    for (let i = u + 1; i < event.length; i += 7) {
      api.writeRaw(event.subarray(i, i + 7));
      await turns();
    }
    await until(() => web().endpoints[0]?.zone !== undefined);
    expect(web().endpoints[0]!.zone).toBe('zürich-1');
    expect(web().discoveryErrors).toBe(0);
  });
});

describe('kubernetes: a burst of events', () => {
  test('the events of one chunk are applied in order and published once (was one full re-merge and discovery-update per event)', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    api.apply('endpointslices', 'default', slice('web-b', 'web', [{ ip: '127.0.0.200' }], 8080));
    mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: false } } } });
    const updates: number[] = [];
    mesh.on('discovery-update', (e) => updates.push(e.endpoints));
    const urls = () => mesh!.stats().services.web!.endpoints.filter((e) => e.state !== 'draining').map((e) => e.url).sort();
    await until(() => api.watchers === 1 && updates.length === 1);
    // 60 MODIFIED events of web-a, each moving its endpoint (each a different set), then web-b
    // DELETED and ADDED again with another endpoint, and web-c ADDED and DELETED: one write, one chunk.
    let rv = 5000;
    const event = (type: string, obj: ReturnType<typeof slice>): string => JSON.stringify({ type, object: { ...obj, metadata: { ...obj.metadata, namespace: 'default', resourceVersion: String(++rv) } } });
    const burst: string[] = [];
    for (let n = 1; n <= 60; n++) burst.push(event('MODIFIED', slice('web-a', 'web', [{ ip: `127.0.1.${n}` }], 8080)));
    burst.push(event('DELETED', slice('web-b', 'web', [{ ip: '127.0.0.200' }], 8080)));
    burst.push(event('ADDED', slice('web-b', 'web', [{ ip: '127.0.0.201' }], 8080)));
    burst.push(event('ADDED', slice('web-c', 'web', [{ ip: '127.0.0.202' }], 8080)));
    burst.push(event('DELETED', slice('web-c', 'web', [{ ip: '127.0.0.202' }], 8080)));
    api.sendRaw(burst.join('\n'));
    await until(() => urls().includes('http://127.0.1.60:8080'));
    await until(() => api.bookmarksSent > 0 && mesh!.stats().services.web!.discoveryErrors === 0); // the stream went on
    console.log(`a burst of ${burst.length} events in one write: ${updates.length - 1} discovery-update(s)`);
    // One chunk as written; a reader may still get it in a few pieces, never one per event.
    expect(updates.length - 1).toBeGreaterThanOrEqual(1);
    expect(updates.length - 1).toBeLessThanOrEqual(3);
    expect(updates.at(-1)).toBe(2);
    expect(urls()).toEqual(['http://127.0.0.201:8080', 'http://127.0.1.60:8080']);
  });
  test('nodes relabelled in one chunk are published once, not once per node', async () => {
    const nodes = 30;
    const node = (n: number, region: string) => ({ metadata: { name: `node-${n}`, labels: { 'topology.kubernetes.io/region': region } } });
    for (let n = 1; n <= nodes; n++) api.apply('nodes', '', node(n, 'eu-west'));
    const eps = Array.from({ length: nodes }, (_, i) => ({ ip: `127.0.2.${i + 1}`, node: `node-${i + 1}` }));
    api.apply('endpointslices', 'default', slice('web-a', 'web', eps, 8080));
    mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: false, nodeLabels: true } } } });
    const updates: number[] = [];
    mesh.on('discovery-update', (e) => updates.push(e.endpoints));
    const regions = () => new Set(mesh!.stats().services.web!.endpoints.map((e) => e.region));
    await until(() => api.watchers === 2 && updates.length === 1);
    expect([...regions()]).toEqual(['eu-west']);
    let rv = 9000;
    const burst = Array.from({ length: nodes }, (_, i) => {
      const o = node(i + 1, 'eu-central');
      return JSON.stringify({ type: 'MODIFIED', object: { kind: 'Node', apiVersion: 'v1', ...o, metadata: { ...o.metadata, resourceVersion: String(++rv) } } });
    });
    api.sendRaw(burst.join('\n'), 'nodes');
    await until(() => regions().size === 1 && regions().has('eu-central'));
    // One chunk as written; a reader may still get it in a few pieces, never one per node.
    expect(updates.length - 1).toBeGreaterThanOrEqual(1);
    expect(updates.length - 1).toBeLessThanOrEqual(3);
    expect(mesh.stats().services.web!.discoveryErrors).toBe(0);
  });
});

describe('kubernetes: credentials never leak', () => {
  const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl';

  test.each(['status', 'text'] as const)('an error body echoing the Authorization header (%s) reaches no event, log, channel or stats', async (as) => {
    api.token = TOKEN;
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backend.port));
    const seen: string[] = [];
    const onChannel = (m: unknown): void => void seen.push(JSON.stringify(m));
    diagnostics.subscribe('meshlet:discovery-error', onChannel);
    try {
      mesh = createMesh({
        logger: { warn: (m: string) => seen.push(m), debug: (m: string) => seen.push(m) },
        services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, token: TOKEN, podLabels: false } } },
      });
      mesh.on('discovery-error', (e) => seen.push(e.message));
      await request('http://web/', { dispatcher: mesh.dispatcher }).then((res) => res.body.dump());
      api.echoHeaders = { status: 500, as };
      api.dropWatches();
      await until(() => mesh!.stats().services.web!.discoveryErrors >= 1);
      await until(() => seen.some((m) => m.includes('answered 500')), 5000);
      const all = [...seen, JSON.stringify(mesh.stats())].join('\n');
      expect(all).not.toContain(TOKEN);
      expect(all).not.toContain(TOKEN.split('.')[0]);
      expect(mesh.stats().services.web!.lastDiscoveryError).toMatch(
        as === 'status' ? /answered 500: InternalError: proxy error; request headers were: .*authorization: \[redacted\]/ : /answered 500: a \d+-byte text\/plain body, not shown/,
      );
    } finally {
      diagnostics.unsubscribe('meshlet:discovery-error', onChannel);
      api.echoHeaders = null;
    }
  });
});

describe('kubernetes: answers that are not JSON', () => {
  const PAGE = '<html><head><title>502 upstream unavailable</title></head><body>upstream connect error or disconnect/reset before headers</body></html>';

  test('a 200 list (and Service) answer that is not JSON is reported by size and type, never quoted; discovery recovers when the answers are JSON again', async () => {
    api.apply('services', 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' } } });
    api.apply('pods', 'default', { metadata: { name: 'web-0', labels: { app: 'web', version: 'v1' } }, spec: {} });
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1', pod: 'web-0' }], backend.port));
    api.answer200 = { contentType: 'text/html; charset=utf-8', body: PAGE };
    const seen: string[] = [];
    mesh = createMesh({
      logger: { warn: (m: string) => seen.push(m), debug: (m: string) => seen.push(m) },
      services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, podLabels: true } } },
    });
    mesh.on('discovery-error', (e) => seen.push(e.message));
    const bytes = Buffer.byteLength(PAGE);
    // Both answers fail (the slices' list and the Service read for pod labels), each reported once before its back-off.
    await until(() => seen.some((m) => m.includes('the list answer is not JSON')) && seen.some((m) => m.includes('reading service web: the answer is not JSON')));
    const listError = seen.find((m) => m.includes('the list answer is not JSON'))!;
    expect(listError).toMatch(
      new RegExp(`^kubernetes discovery: /apis/discovery\\.k8s\\.io/v1/namespaces/default/endpointslices: the list answer is not JSON \\(${bytes} bytes of text/html, not shown\\); next try in [\\d.]+ s$`),
    );
    expect(seen.find((m) => m.includes('reading service web')) ?? '').toMatch(new RegExp(`reading service web: the answer is not JSON \\(${bytes} bytes of text/html, not shown\\)`));
    expect(mesh.stats().services.web!.lastDiscoveryError).toMatch(/is not JSON \(\d+ bytes of text\/html, not shown\)/);
    const all = [...seen, JSON.stringify(mesh.stats())].join('\n');
    for (const quoted of ['<html', 'upstream', 'Unexpected token', 'valid JSON']) expect(all).not.toContain(quoted);

    // Recovery: the next tries (within their 0.8–1.6 s back-off) get JSON and the endpoint is used, pod labels included.
    api.answer200 = null;
    const res = await request('http://web/', { dispatcher: mesh.dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await until(() => mesh!.stats().services.web!.endpoints[0]?.labels.version === 'v1');
  });
});
