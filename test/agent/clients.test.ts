// Real axios and got through the mesh's http.Agent (and axios through its fetch adapter):
// balancing over endpoints, a retry after a reset, OVERLOADED and RATE_LIMITED as their errors'
// codes and causes, streaming both ways, and timeouts — the mesh's and the client's own. Each
// client's own retries are off where the mesh's are under test, so what is seen is the mesh's.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import axios, { type AxiosError } from 'axios';
import got, { type RequestError } from 'got';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createMesh, OverloadedError, RateLimitedError, TimeoutError, type Mesh, type MeshAgent, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh;
let agent: MeshAgent;

function meshWith(service: Partial<ServiceConfig> = {}): void {
  mesh = createMesh({
    services: { orders: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', ...service } },
    now: () => 0, // a clock that stands still: a rate limit's bucket never refills during a test
  });
  agent = mesh.agent();
}

/** Hold every request to `backend` until the returned release() (resolves `arrived` on the first). */
function holdRequests(backend: Backend): { arrived: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const arrived = new Promise<void>((r) => {
    backend.handler = (_req, res) => {
      r();
      void held.then(() => res.end('{"held":true}'));
    };
  });
  return { arrived, release };
}

/** Make `backend` destroy the socket of its first request, then answer normally. */
function resetOnce(backend: Backend): void {
  let n = 0;
  backend.handler = (req, res) => {
    if (n++ === 0) return void req.socket.destroy();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ backend: backend.name, attempt: n }));
  };
}

beforeEach(async () => {
  backends = await startBackends(3);
});

afterEach(async () => {
  agent?.destroy();
  await mesh?.close();
  await closeAll(backends);
});

describe('axios', () => {
  test('through the agent: requests are balanced over the endpoints', async () => {
    meshWith();
    const client = axios.create({ httpAgent: agent, proxy: false });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(((await client.get<{ backend: string }>(`http://orders/a${i}`)).data).backend);
    expect(seen.sort()).toEqual(['b0', 'b0', 'b1', 'b1', 'b2', 'b2']);
  });

  test('through its fetch adapter with the mesh as dispatcher', async () => {
    meshWith();
    // axios passes `fetchOptions` on to Node's fetch; its types know no `dispatcher`.
    const client = axios.create({ adapter: 'fetch', fetchOptions: { dispatcher: mesh.dispatcher } as RequestInit });
    const res = await client.get<{ host: string }>('http://orders/f');
    expect(res.status).toBe(200);
    expect(res.data.host).toBe('orders');
  });

  test('a reset is retried by the mesh', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    resetOnce(backends[0]!);
    const res = await axios.get<{ attempt: number }>('http://orders/r', { httpAgent: agent, proxy: false });
    expect(res.data.attempt).toBe(2);
    expect(mesh.stats().services.orders!.retries).toBe(1);
  });

  test('OVERLOADED and RATE_LIMITED are the AxiosError code, the mesh error its cause', async () => {
    meshWith({ endpoints: [backends[0]!.url], limits: { maxRequests: 1, maxPendingRequests: 0 } });
    const { arrived, release } = holdRequests(backends[0]!);
    const first = axios.get('http://orders/held', { httpAgent: agent, proxy: false });
    await arrived;
    const err = (await axios.get('http://orders/refused', { httpAgent: agent, proxy: false }).catch((e: unknown) => e)) as AxiosError;
    expect(err.code).toBe('OVERLOADED');
    expect(err.cause).toBeInstanceOf(OverloadedError);
    release();
    await first;

    await mesh.close();
    agent.destroy();
    meshWith({ rateLimit: { requestsPerSecond: 1, burst: 1 } });
    await axios.get('http://orders/one', { httpAgent: agent, proxy: false });
    const limited = (await axios.get('http://orders/two', { httpAgent: agent, proxy: false }).catch((e: unknown) => e)) as AxiosError;
    expect(limited.code).toBe('RATE_LIMITED');
    expect(limited.cause).toBeInstanceOf(RateLimitedError);
  });

  test('streams a download and an upload', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    const size = 4 * 1024 * 1024;
    backends[0]!.handler = (req, res) => {
      if (req.method === 'GET') return void res.end(Buffer.alloc(size, 1));
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => ((n += c.length), h.update(c)));
      req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex') })));
    };
    const down = await axios.get<Readable>('http://orders/big', { httpAgent: agent, proxy: false, responseType: 'stream' });
    let total = 0;
    for await (const c of down.data) total += (c as Buffer).length;
    expect(total).toBe(size);
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i));
    const up = await axios.post<{ n: number; sha: string }>('http://orders/up', Readable.from(chunks), { httpAgent: agent, proxy: false });
    const sha = createHash('sha256');
    for (const c of chunks) sha.update(c);
    expect(up.data).toEqual({ n: 64 * 16 * 1024, sha: sha.digest('hex') });
  });

  test("the mesh's timeout is the error code TIMEOUT", async () => {
    meshWith({ endpoints: [backends[0]!.url], timeoutMs: 50 });
    backends[0]!.fault = { kind: 'hang' };
    const err = (await axios.get('http://orders/hang', { httpAgent: agent, proxy: false }).catch((e: unknown) => e)) as AxiosError;
    expect(err.code).toBe('TIMEOUT');
    expect(err.cause).toBeInstanceOf(TimeoutError);
  });

  test("axios's own timeout aborts the mesh's request: the endpoint sees its connection close", async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    let closed!: Promise<unknown>;
    const arrived = new Promise<void>((r) => {
      backends[0]!.handler = (req) => {
        closed = once(req.socket, 'close');
        r();
      };
    });
    const err = axios.get('http://orders/slow', { httpAgent: agent, proxy: false, timeout: 50 }).catch((e: unknown) => e);
    await arrived;
    expect(((await err) as AxiosError).code).toBe('ECONNABORTED');
    await closed;
    expect(mesh.stats().services.orders!).toMatchObject({ inFlight: 0, failures: 0 });
  });
});

describe('got', () => {
  const noRetry = { retry: { limit: 0 } };

  test('through the agent: requests are balanced over the endpoints', async () => {
    meshWith();
    const client = got.extend({ agent: { http: agent } });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await client.get(`http://orders/g${i}`).json<{ backend: string }>()).backend);
    expect(seen.sort()).toEqual(['b0', 'b0', 'b1', 'b1', 'b2', 'b2']);
  });

  test('a reset is retried by the mesh (got retries off)', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    resetOnce(backends[0]!);
    const body = await got.get('http://orders/r', { agent: { http: agent }, ...noRetry }).json<{ attempt: number }>();
    expect(body.attempt).toBe(2);
  });

  test('OVERLOADED and RATE_LIMITED are the RequestError code, the mesh error its cause', async () => {
    meshWith({ endpoints: [backends[0]!.url], limits: { maxRequests: 1, maxPendingRequests: 0 } });
    const { arrived, release } = holdRequests(backends[0]!);
    const first = got.get('http://orders/held', { agent: { http: agent }, ...noRetry }).text();
    await arrived;
    const err = (await got.get('http://orders/refused', { agent: { http: agent }, ...noRetry }).catch((e: unknown) => e)) as RequestError;
    expect(err.code).toBe('OVERLOADED');
    expect(err.cause).toBeInstanceOf(OverloadedError);
    release();
    await first;

    await mesh.close();
    agent.destroy();
    meshWith({ rateLimit: { requestsPerSecond: 1, burst: 1 } });
    await got.get('http://orders/one', { agent: { http: agent }, ...noRetry }).text();
    const limited = (await got.get('http://orders/two', { agent: { http: agent }, ...noRetry }).catch((e: unknown) => e)) as RequestError;
    expect(limited.code).toBe('RATE_LIMITED');
    expect(limited.cause).toBeInstanceOf(RateLimitedError);
  });

  test('streams a download and an upload (got.stream)', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    const size = 4 * 1024 * 1024;
    backends[0]!.handler = (req, res) => {
      if (req.method === 'GET') return void res.end(Buffer.alloc(size, 2));
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
    };
    let total = 0;
    for await (const c of got.stream('http://orders/big', { agent: { http: agent } })) total += (c as Buffer).length;
    expect(total).toBe(size);
    const up = got.stream.post('http://orders/up', { agent: { http: agent } });
    const reply = (async () => {
      let text = '';
      for await (const c of up) text += String(c);
      return text;
    })();
    for (let i = 0; i < 64; i++) if (!up.write(Buffer.alloc(16 * 1024, i))) await once(up, 'drain');
    up.end();
    expect(await reply).toBe(String(64 * 16 * 1024));
  });

  test("the mesh's timeout is the error code TIMEOUT", async () => {
    meshWith({ endpoints: [backends[0]!.url], timeoutMs: 50 });
    backends[0]!.fault = { kind: 'hang' };
    const err = (await got.get('http://orders/hang', { agent: { http: agent }, ...noRetry }).catch((e: unknown) => e)) as RequestError;
    expect(err.code).toBe('TIMEOUT');
    expect(err.cause).toBeInstanceOf(TimeoutError);
  });

  test("got's own timeout aborts the mesh's request: the endpoint sees its connection close", async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    let closed!: Promise<unknown>;
    const arrived = new Promise<void>((r) => {
      backends[0]!.handler = (req) => {
        closed = once(req.socket, 'close');
        r();
      };
    });
    const err = got.get('http://orders/slow', { agent: { http: agent }, timeout: { request: 50 }, ...noRetry }).catch((e: unknown) => e);
    await arrived;
    expect(((await err) as RequestError).code).toBe('ETIMEDOUT');
    await closed;
    expect(mesh.stats().services.orders!).toMatchObject({ inFlight: 0, failures: 0 });
  });
});
