// Replayable bodies: `fetch` (Node's global one, undici's, and mesh.fetch) turns every body, even a
// Buffer, into a stream. The bytes of a streamed body are kept as they are sent, up to
// perRequestBufferLimitBytes, so an idempotent request can be retried after the stream was read;
// past the limit, or for a POST that reached the server, nothing is sent twice. Real servers.
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { fetch as undiciFetch, request } from 'undici';
import { createMesh, type Mesh, type MeshCall, type ServiceConfig } from '../../src/index.js';
import { guardBody } from '../../src/request/body.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(3);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

function meshOver(service: Partial<ServiceConfig> = {}): Mesh {
  mesh = createMesh({
    services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', outlierDetection: false, ...service } },
    random: () => 0, // round robin starts at the first backend; back-off delays are 0
    logger: { debug: () => {}, warn: () => {} },
  });
  return mesh;
}

/** Bytes that show any reordering or truncation. */
const payload = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) % 256));

type Fetch = (m: Mesh, url: string, init: { method: string; body: Buffer }) => Promise<Response>;
const fetches: [string, Fetch][] = [
  ['mesh.fetch', (m, url, init) => m.fetch(url, init)],
  ['undici fetch with dispatcher: mesh.dispatcher', (m, url, init) => undiciFetch(url, { ...init, dispatcher: m.dispatcher }) as unknown as Promise<Response>],
  ["Node's global fetch with dispatcher: mesh.dispatcher", (m, url, init) => globalThis.fetch(url, { ...init, dispatcher: m.dispatcher } as RequestInit)],
];

describe('an idempotent request with a fetch body is retried after a replica read it and reset', () => {
  for (const [name, send] of fetches) {
    for (const method of ['PUT', 'DELETE']) {
      test(`${method} through ${name}: the replica that answers receives the exact bytes`, async () => {
        backends[0]!.fault = { kind: 'reset-after-body' };
        const m = meshOver();
        const body = payload(20_000);
        const res = await send(m, 'http://api/doc', { method, body });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { backend: string }).backend).toBe('b1');
        expect(backends[0]!.received[0]!.body.equals(body)).toBe(true); // it did read the body before resetting
        expect(backends[1]!.received).toHaveLength(1);
        expect(backends[1]!.received[0]!.body.equals(body)).toBe(true);
        expect(m.stats().services.api!.retries).toBe(1);
      });
    }
  }

  test('a streamed body of many chunks is replayed whole, in order', async () => {
    backends[0]!.fault = { kind: 'reset-after-body' };
    const m = meshOver();
    const chunks = Array.from({ length: 50 }, (_, i) => payload(1_000 + i));
    const res = await request('http://api/doc', { method: 'PUT', body: Readable.from(chunks), dispatcher: m.dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backends[1]!.received[0]!.body.equals(Buffer.concat(chunks))).toBe(true);
  });
});

describe('what is never sent twice', () => {
  test('a body larger than perRequestBufferLimitBytes is not retried: the reset reaches the caller, typed', async () => {
    backends[0]!.fault = { kind: 'reset-after-body' };
    const m = meshOver({ perRequestBufferLimitBytes: 4_096 });
    const err = await m.fetch('http://api/doc', { method: 'PUT', body: payload(4_097) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TypeError); // fetch's own wrapper
    expect((err as Error).cause).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'reset', service: 'api' });
    expect(backends[1]!.received).toHaveLength(0);
    expect(m.stats().services.api!.retries).toBe(0);
  });

  test('a body of exactly the limit is kept and replayed', async () => {
    backends[0]!.fault = { kind: 'reset-after-body' };
    const m = meshOver({ perRequestBufferLimitBytes: 4_096 });
    const res = await m.fetch('http://api/doc', { method: 'PUT', body: payload(4_096) });
    expect(res.status).toBe(200);
    expect(backends[1]!.received[0]!.body.equals(payload(4_096))).toBe(true);
  });

  test('a POST whose body reached the server is not retried: received exactly once', async () => {
    backends[0]!.fault = { kind: 'reset-after-body' };
    const m = meshOver();
    const err = await m.fetch('http://api/orders', { method: 'POST', body: payload(1_000) }).catch((e: Error) => e);
    expect((err as Error).cause).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'reset' });
    expect(backends.reduce((n, b) => n + b.received.length, 0)).toBe(1);
  });

  test('a POST that provably never reached the server (connection refused) is retried and received once', async () => {
    await backends[0]!.stop();
    const m = meshOver();
    const res = await m.fetch('http://api/orders', { method: 'POST', body: payload(1_000) });
    expect(res.status).toBe(200);
    expect(backends[1]!.received).toHaveLength(1);
    expect(backends[1]!.received[0]!.body.equals(payload(1_000))).toBe(true);
  });
});

test('the kept bytes are dropped when the request ends', async () => {
  let seen: MeshCall | null = null;
  let during: boolean | undefined;
  backends[0]!.fault = { kind: 'reset-after-body' };
  const m = meshOver({
    interceptors: [
      {
        name: 'spy',
        handle: (call, next) => {
          seen = call;
          call.onEnd((c) => (during = c.replayable));
          next(call);
        },
      },
    ],
  });
  const res = await m.fetch('http://api/doc', { method: 'PUT', body: payload(10_000) });
  expect(res.status).toBe(200); // it was retried: the body was replayable while the request ran
  expect(seen!.replayable).toBe(false);
  expect(during).toBe(false); // released before the end listeners run
});

describe('a one-shot sync iterable body (a generator, which undici takes)', () => {
  test('a PUT that met a 503 is retried with the whole body, never an exhausted (empty) one', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshOver();
    function* chunks() {
      yield 'hello ';
      yield Buffer.from('world');
    }
    // undici's types for request() list no iterable; its runtime takes one (and dispatch's types do).
    const res = await request('http://api/doc', { method: 'PUT', body: chunks() as unknown as Readable, dispatcher: m.dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backends[0]!.received[0]!.body.toString()).toBe('hello world');
    expect(backends[1]!.received[0]!.body.toString()).toBe('hello world');
  });

  test('past the buffer limit it is not replayed: the 503 comes back', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshOver({ perRequestBufferLimitBytes: 4 });
    function* chunks() {
      yield 'hello world';
    }
    const res = await request('http://api/doc', { method: 'PUT', body: chunks() as unknown as Readable, dispatcher: m.dispatcher });
    expect(res.statusCode).toBe(503);
    await res.body.dump();
    expect(backends[1]!.received).toHaveLength(0);
  });

  test('arrays, typed arrays and other bytes go as they are (no guard): they can be sent again', () => {
    expect(guardBody([Buffer.from('a'), 'b'], 10)).toBeNull();
    expect(guardBody(new Uint16Array([1, 2]), 10)).toBeNull();
    expect(guardBody(new ArrayBuffer(2), 10)).toBeNull();
    expect(guardBody(new Blob(['x']), 10)).toBeNull();
    expect(guardBody((function* () {})(), 10)).not.toBeNull();
  });
});

test("a Readable body that errors while its request waits for a connection fails that request, typed — no unhandled 'error' event", async () => {
  // One connection, held by a first request the backend answers only when told: the second waits for it.
  let arrived!: (answer: () => void) => void;
  const slowArrived = new Promise<() => void>((resolve) => (arrived = resolve));
  backends[0]!.handler = (req, res) => {
    if (req.url === '/slow') arrived(() => res.end('ok'));
    else req.resume().on('end', () => res.end('ok'));
  };
  const m = meshOver({ endpoints: [backends[0]!.url], pool: { connections: 1 } });
  const first = request('http://api/slow', { dispatcher: m.dispatcher });
  const answer = await slowArrived;
  const body = new Readable({ read() {} });
  const second = request('http://api/x', { method: 'PUT', body, dispatcher: m.dispatcher }).catch((e: { code?: string; cause?: Error }) => e);
  body.destroy(new Error('upload source failed')); // e.g. the file it reads failed; nobody reads the stream yet
  answer();
  await (await first).body.text();
  const err = (await second) as { code?: string; cause?: Error };
  expect(err.code).toBe('REQUEST_BODY_FAILED');
  expect(err.cause?.message).toBe('upload source failed');
  expect(backends[0]!.received.filter((r) => r.url === '/x')).toHaveLength(0);
});

describe('guardBody (unit)', () => {
  const read = async (body: AsyncIterable<unknown> | Buffer): Promise<Buffer> => {
    if (Buffer.isBuffer(body)) return body;
    const out: Buffer[] = [];
    for await (const c of body) out.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(out);
  };

  test('bytes and strings are kept as copies; the replay is the same bytes even if the caller reuses its buffer', async () => {
    const reused = Buffer.from('abcd');
    async function* source() {
      yield reused;
      reused.fill(0x7a); // the caller reuses its buffer after the chunk was written
      yield 'é!';
    }
    const g = guardBody(source(), 100)!;
    expect(g.replayable).toBe(false);
    expect((await read(g.body)).toString()).toBe('abcdé!'); // the first reader copies as it goes
    expect(g.replayable).toBe(true);
    expect(reused.toString()).toBe('zzzz');
    expect(Buffer.isBuffer(g.body)).toBe(true);
    expect((g.body as Buffer).toString()).toBe('abcdé!'); // the replay: what was sent
    g.release();
    expect(g.replayable).toBe(false);
  });

  test('a body read only in part is not replayable', async () => {
    const g = guardBody(Readable.from([Buffer.from('a'), Buffer.from('b')]), 100)!;
    const it = (g.body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await it.next();
    expect(g.started).toBe(true);
    expect(g.replayable).toBe(false);
  });

  test('limit 0 keeps nothing', async () => {
    const g = guardBody(Readable.from([Buffer.from('a')]), 0)!;
    await read(g.body);
    expect(g.replayable).toBe(false);
  });

  test('strings, bytes and no body need no guard', () => {
    expect(guardBody('x', 10)).toBeNull();
    expect(guardBody(Buffer.from('x'), 10)).toBeNull();
    expect(guardBody(undefined, 10)).toBeNull();
  });
});
