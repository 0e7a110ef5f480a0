// Deadlines that flow (issue 14 §2): the caller's remaining time, read from grpc-timeout, Envoy's
// header or meshlet's own, bounds the mesh calls made while serving, is sent on, and a call with
// nothing left fails fast without being sent. The server's mesh runs on a test clock, so every
// number is exact.
import http from 'node:http';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, DeadlineExceededError, isMeshError, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';
import { httpRequest } from '../support/http-client.js';
import { serve, type Served } from '../support/inbound.js';

let t = 1_000;
let leaf: Backend;
let mesh: Mesh;
let front: Served;
/** What the handler does; its result (or error code) is the response body. */
let handler: () => Promise<unknown>;

beforeEach(async () => {
  t = 1_000;
  leaf = await startBackend('leaf');
  mesh = createMesh({
    now: () => t,
    services: {
      leaf: { endpoints: [leaf.url] },
      quick: { endpoints: [leaf.url], timeoutMs: 50 },
      // No undici timeouts: only the caller's deadline ends a call to a leaf that never answers.
      patient: { endpoints: [leaf.url], pool: { headersTimeoutMs: 0, bodyTimeoutMs: 0 } },
    },
  });
  front = await serve(
    mesh.inbound((_req: http.IncomingMessage, res: http.ServerResponse) => {
      handler().then(
        (out) => res.end(JSON.stringify(out ?? null)),
        (err: Error) => res.writeHead(504).end(JSON.stringify({ code: (err as { code?: string }).code, sent: (err as { sent?: boolean }).sent, name: err.name })),
      );
    }),
  );
});

afterEach(async () => {
  vi.useRealTimers();
  await front.close();
  await mesh.close();
  await leaf.close();
});

async function call(service = 'leaf', path = '/x'): Promise<void> {
  const r = await request(`http://${service}${path}`, { dispatcher: mesh.dispatcher });
  await r.body.dump();
}

const sentDeadlines = () => leaf.received.map((r) => [r.headers['x-meshlet-deadline-ms'], r.headers['x-envoy-expected-rq-timeout-ms']]);

test.each([
  [{ 'x-meshlet-deadline-ms': '5000' }, '5000'],
  [{ 'grpc-timeout': '2S' }, '2000'],
  [{ 'grpc-timeout': '250m' }, '250'],
  [{ 'x-envoy-expected-rq-timeout-ms': '1500' }, '1500'],
  [{ 'x-envoy-expected-rq-timeout-ms': '1500', 'x-meshlet-deadline-ms': '900', 'grpc-timeout': '3S' }, '900'],
])('a request with %j: the calls made while serving send %s ms on, in meshlet\'s and Envoy\'s headers', async (headers, sent) => {
  handler = () => call();
  expect((await httpRequest(`${front.url}/`, { headers })).status).toBe(200);
  expect(sentDeadlines()).toEqual([[sent, sent]]);
  expect(mesh.stats().inbound!.entries.http!.withDeadline).toBe(1);
});

test("a call's time limit is min(its own, what the caller left): both shrink as the request is served", async () => {
  handler = async () => {
    await call('leaf', '/a');
    t += 1_200;
    await call('leaf', '/b');
    await call('quick', '/c'); // its own 50 ms is less than the 3 800 left
  };
  expect((await httpRequest(`${front.url}/`, { headers: { 'x-meshlet-deadline-ms': '5000' } })).status).toBe(200);
  expect(sentDeadlines()).toEqual([
    ['5000', '5000'],
    ['3800', '3800'],
    ['50', '50'],
  ]);
});

test('with nothing left the call fails with DEADLINE_EXCEEDED at once, and is not sent', async () => {
  handler = () => call();
  const now = await httpRequest(`${front.url}/`, { headers: { 'x-meshlet-deadline-ms': '0' } });
  expect(now.status).toBe(504);
  expect(JSON.parse(now.body)).toEqual({ code: 'DEADLINE_EXCEEDED', sent: false, name: 'DeadlineExceededError' });
  handler = async () => {
    t += 100; // the request's 100 ms pass before the call is made
    await call();
  };
  const later = await httpRequest(`${front.url}/`, { headers: { 'grpc-timeout': '100m' } });
  expect(JSON.parse(later.body)).toMatchObject({ code: 'DEADLINE_EXCEEDED', sent: false });
  expect(leaf.received).toHaveLength(0);
  const leafStats = mesh.stats().services.leaf!;
  expect(leafStats.endpoints.reduce((n, e) => n + e.requests, 0)).toBe(0); // no attempt
  expect(leafStats.requests).toBe(2); // two calls, each failed at once
});

test('a call still in flight when the caller\'s deadline runs out is cut with DEADLINE_EXCEEDED', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  leaf.handler = () => {}; // never answers
  let failure: unknown;
  handler = () => call().catch((err: unknown) => {
    failure = err;
    throw err;
  });
  const answered = httpRequest(`${front.url}/`, { headers: { 'x-meshlet-deadline-ms': '300' } });
  await until(() => leaf.received.length === 1);
  await vi.advanceTimersByTimeAsync(299);
  expect(failure).toBeUndefined();
  await vi.advanceTimersByTimeAsync(1);
  expect(JSON.parse((await answered).body)).toEqual({ code: 'DEADLINE_EXCEEDED', sent: true, name: 'DeadlineExceededError' });
  expect(failure).toBeInstanceOf(DeadlineExceededError);
  expect(isMeshError(failure) && failure.endpoint).toBe(leaf.url);
});

test('under 1 ms left goes on as 1 ms, never 0 (which Envoy reads as no timeout at all)', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }); // the 0.5 ms do not run out while the leaf answers
  handler = () => call();
  expect((await httpRequest(`${front.url}/`, { headers: { 'grpc-timeout': '500u' } })).status).toBe(200);
  expect(sentDeadlines()).toEqual([['1', '1']]);
});

test.each([
  [{ 'grpc-timeout': '700H' }, 2_520_000_000],
  [{ 'x-envoy-expected-rq-timeout-ms': '3000000000' }, 3_000_000_000],
  [{ 'x-meshlet-deadline-ms': '2147483648' }, 2_147_483_648],
])('a deadline past what a Node timer holds (%j) is kept to the end, not cut at once', async (headers, ms) => {
  // A setTimeout past 2^31 − 1 ms fires after 1 ms (TimeoutOverflowWarning); the fake timers do the same.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    leaf.handler = () => {};
    let failure: unknown;
    handler = () => call('patient').catch((err: unknown) => {
      failure = err;
      throw err;
    });
    const answered = httpRequest(`${front.url}/`, { headers });
    await until(() => leaf.received.length === 1);
    expect(sentDeadlines()).toEqual([[String(ms), String(ms)]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(failure).toBeUndefined();
    // Past the longest Node timer (2^31 − 1 ms) and up to 1 ms before the deadline: still waiting.
    await vi.advanceTimersByTimeAsync(ms - 2);
    expect(failure).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(JSON.parse((await answered).body)).toEqual({ code: 'DEADLINE_EXCEEDED', sent: true, name: 'DeadlineExceededError' });
    expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
  } finally {
    process.off('warning', onWarning);
  }
});

test("the call's own timeout still ends it with TIMEOUT when it is the shorter", async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  leaf.handler = () => {};
  handler = () => call('quick');
  const answered = httpRequest(`${front.url}/`, { headers: { 'x-meshlet-deadline-ms': '300' } });
  await until(() => leaf.received.length === 1);
  await vi.advanceTimersByTimeAsync(50);
  expect(JSON.parse((await answered).body)).toMatchObject({ code: 'TIMEOUT', name: 'TimeoutError' });
});

test('a request with no deadline gives its calls none: no deadline header goes out', async () => {
  handler = () => call();
  await httpRequest(`${front.url}/`);
  expect(sentDeadlines()).toEqual([[undefined, undefined]]);
  expect(mesh.stats().inbound!.entries.http!.withDeadline).toBe(0);
});

test("a meshlet client's timeout reaches the server: what it sent bounds the server's own calls", async () => {
  let got: string | undefined;
  const middle = await serve(
    mesh.inbound((req: http.IncomingMessage, res: http.ServerResponse) => {
      got = req.headers['x-meshlet-deadline-ms'] as string;
      void call().then(() => res.end('ok'));
    }),
  );
  const client = createMesh({ services: { middle: { endpoints: [middle.url], timeoutMs: 800 } } });
  try {
    const r = await request('http://middle/', { dispatcher: client.dispatcher });
    await r.body.dump();
    expect(Number(got)).toBeGreaterThan(0);
    expect(Number(got)).toBeLessThanOrEqual(800);
    expect(sentDeadlines()).toEqual([[got, got]]); // the server's clock stood still: all of it went on
  } finally {
    await middle.close();
    await client.close();
  }
});
