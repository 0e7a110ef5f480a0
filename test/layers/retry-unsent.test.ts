/**
 * A retry the pick cannot send — every endpoint's rate limit refuses it, or no endpoint is healthy
 * — is not a retry: as when `limits.maxRetries` refuses one, the caller gets the response (or
 * error) that would have been retried, and neither `retries` nor a `retry` event counts it.
 * The mesh's clock is injected and never moves: the per-endpoint bucket does not refill.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(1);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

function meshWith(service: Partial<ServiceConfig>): Mesh {
  mesh = createMesh({
    now: () => 0,
    services: { api: { endpoints: [backends[0]!.url], retry: { attempts: 1, retryOn: ['5xx', 'connect-failure'], backoff: { baseMs: 1, maxMs: 1 }, budget: false }, ...service } },
  });
  return mesh;
}

const get = (m: Mesh) =>
  request('http://api/x', { dispatcher: m.dispatcher }).then(
    async (r) => ({ status: r.statusCode, backend: r.headers['x-backend'], body: await r.body.text() }),
    (e: { code?: unknown; cause?: { code?: unknown } }) => ({ code: e.code, cause: e.cause?.code }),
  );

function watch(m: Mesh) {
  const seen: string[] = [];
  m.on('retry', () => seen.push('retry'));
  m.on('rate-limited', (e) => seen.push(`rate-limited ${e.scope}`));
  return seen;
}

describe('a retry no endpoint takes', () => {
  test("refused by every endpoint's rate limit: the caller gets the 503 it would have retried, and no retry counts", async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshWith({ outlierDetection: false, circuitBreaker: false, rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 1, burst: 1 } } });
    const seen = watch(m);
    const r = await get(m);
    expect(r).toMatchObject({ status: 503, backend: 'b0' });
    expect(JSON.parse((r as { body: string }).body)).toMatchObject({ backend: 'b0', url: '/x' });
    expect(backends[0]!.received).toHaveLength(1);
    // The rate limit's refusal is announced and counted, as a maxRetries refusal is; the retry is not.
    expect(seen).toEqual(['rate-limited every endpoint']);
    expect(m.stats().services.api).toMatchObject({ retries: 0, rateLimited: 1, requests: 1 });
  });

  test('after an error: the caller gets the error it would have retried, not RATE_LIMITED', async () => {
    const url = backends[0]!.url;
    await closeAll(backends); // nothing listens: the connection is refused
    backends = [];
    mesh = createMesh({
      now: () => 0,
      services: {
        api: {
          endpoints: [url],
          outlierDetection: false,
          circuitBreaker: false,
          retry: { attempts: 1, retryOn: ['connect-failure'], backoff: { baseMs: 1, maxMs: 1 }, budget: false },
          rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 1, burst: 1 } },
        },
      },
    });
    const m = mesh;
    const seen = watch(m);
    expect(await get(m)).toMatchObject({ code: 'UPSTREAM_FAILED' });
    expect(seen).toEqual(['rate-limited every endpoint']);
    expect(m.stats().services.api).toMatchObject({ retries: 0, rateLimited: 1 });
  });

  test('its only endpoint ejected by the response being retried: the caller gets that response, not CIRCUIT_OPEN', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshWith({ panicThreshold: 0, outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 } });
    const seen = watch(m);
    const ejections: string[] = [];
    m.on('ejection', (e) => ejections.push(e.endpoint));
    expect(await get(m)).toMatchObject({ status: 503, backend: 'b0' });
    expect(ejections).toHaveLength(1);
    expect(seen).toEqual([]);
    expect(backends[0]!.received).toHaveLength(1);
    expect(m.stats().services.api).toMatchObject({ retries: 0, rateLimited: 0 });
  });

  test('a retry that is sent still counts, once', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshWith({ outlierDetection: false, circuitBreaker: false, rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 1, burst: 2 } } });
    const seen = watch(m);
    expect(await get(m)).toMatchObject({ status: 503 });
    expect(backends[0]!.received).toHaveLength(2);
    expect(seen).toEqual(['retry']);
    expect(m.stats().services.api).toMatchObject({ retries: 1, rateLimited: 0 });
  });
});
