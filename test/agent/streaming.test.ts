// Streaming through the mesh's http.Agent: bodies both ways with back-pressure, abort,
// `Expect: 100-continue`, upgrades and CONNECT. Back-pressure is shown without timing: the
// reading side stops, and the writer must get stuck (see `stuck`) with most of the body unsent —
// if anything between them buffered without bound, the writer would finish instead.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createMesh, InvalidRequestError, RateLimitedError, type Mesh, type MeshAgent } from '../../src/index.js';

const SIZE = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 7);
// What the whole chain may hold (kernel socket buffers, undici's, the in-process connection's,
// the client's): well under half the body.
const MAX_AHEAD = SIZE / 2;

let server: http.Server;
let mesh: Mesh;
let agent: MeshAgent;
/** The download's writer: bytes written, whether it waits for 'drain', whether it finished. */
const download = { written: 0, blocked: false, done: false };
/** The upload's reader: bytes read so far; it reads nothing while `uploadPaused`. */
let uploadRead = 0;
let uploadPaused = false;
let resumeUpload: () => void = () => {};
/** Upgraded and CONNECT sockets, which server.close() does not end. */
const tunnels = new Set<Duplex>();

beforeEach(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/upload') {
      // Reads nothing while `uploadPaused`, then everything.
      const h = createHash('sha256');
      uploadRead = 0;
      const pull = (): void => {
        if (uploadPaused) return;
        for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) {
          uploadRead += c.length;
          h.update(c);
        }
      };
      resumeUpload = pull;
      req.on('readable', pull);
      req.on('end', () => res.end(JSON.stringify({ bytes: uploadRead, sha256: h.digest('hex') })));
      return;
    }
    if (req.url === '/download') {
      Object.assign(download, { written: 0, blocked: false, done: false });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
      const write = (): void => {
        download.blocked = false;
        while (download.written < SIZE) {
          download.written += CHUNK.length;
          if (!res.write(CHUNK)) {
            download.blocked = true;
            return void res.once('drain', write);
          }
        }
        download.done = true;
        res.end();
      };
      write();
      return;
    }
    if (req.url === '/hang') return; // never answers
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(JSON.stringify({ bytes: Buffer.concat(chunks).length, expect: req.headers.expect ?? null })));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    tunnels.add(socket);
    if (req.headers.upgrade !== 'echo') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\nnot upgrade');
      return;
    }
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\nx-backend: up\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
  });
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    tunnels.add(socket);
    socket.write(`HTTP/1.1 200 Connection Established\r\nx-target: ${req.url}\r\n\r\n`);
    socket.on('data', (d: Buffer) => socket.write(`tunnel:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mesh = createMesh({
    services: {
      files: { endpoints: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] },
      limited: { endpoints: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], rateLimit: { requestsPerSecond: 1, burst: 1 } },
    },
    now: () => 0, // the clock stands still: the rate limit's bucket never refills
  });
  agent = mesh.agent();
});

afterEach(async () => {
  agent.destroy();
  await mesh.close();
  server.closeAllConnections();
  for (const s of tunnels) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/**
 * Resolves true once `blocked()` holds and `progress()` has not moved for 200 turns of the event
 * loop (the writer is stuck: everything between it and the reader is full), false if `done()`
 * comes first. Counted in loop turns, not time: a chain that buffers without bound keeps
 * draining the writer turn after turn, one that holds back stops for good.
 */
async function stuck(blocked: () => boolean, progress: () => number, done: () => boolean): Promise<boolean> {
  let quiet = 0;
  let last = progress();
  for (let turn = 0; turn < 1_000_000; turn++) {
    if (done()) return false;
    await new Promise((r) => setImmediate(r));
    if (blocked() && progress() === last) {
      if (++quiet >= 200) return true;
    } else {
      quiet = 0;
      last = progress();
    }
  }
  throw new Error('neither stuck nor done after 1,000,000 turns');
}

describe('bodies both ways', () => {
  test('a 64 MB download streams with back-pressure: a reader that stops holds the endpoint back', async () => {
    const req = http.get('http://files/download', { agent });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    const it = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const body = createHash('sha256');
    const first = await it.next();
    let read = (first.value as Buffer).length;
    body.update(first.value as Buffer);
    // The reader stops: the endpoint must get stuck with most of the body unsent.
    expect(await stuck(() => download.blocked, () => download.written, () => download.done)).toBe(true);
    expect(download.written).toBeLessThan(MAX_AHEAD);
    for (let r = await it.next(); !r.done; r = await it.next()) {
      read += r.value.length;
      body.update(r.value);
    }
    expect(read).toBe(SIZE);
    expect(body.digest('hex')).toBe(createHash('sha256').update(Buffer.alloc(SIZE, 7)).digest('hex'));
  });

  test('a 64 MB upload streams with back-pressure: an endpoint that stops reading holds the client back', async () => {
    uploadPaused = true;
    const expected = createHash('sha256');
    const req = http.request('http://files/upload', { agent, method: 'POST' });
    const response = once(req, 'response') as Promise<[http.IncomingMessage]>;
    let written = 0;
    let blocked = false;
    let finished = false;
    const writer = (async () => {
      for (let i = 0; written < SIZE && i < SIZE; i++) {
        written += CHUNK.length;
        expected.update(CHUNK);
        if (!req.write(CHUNK)) {
          blocked = true;
          await once(req, 'drain');
          blocked = false;
        }
      }
      req.end();
      finished = true;
    })();
    // The endpoint reads nothing yet: the client must get stuck with most of its body unwritten.
    expect(await stuck(() => blocked, () => written, () => finished)).toBe(true);
    expect(written).toBeLessThan(MAX_AHEAD);
    expect(uploadRead).toBe(0);
    uploadPaused = false;
    resumeUpload();
    await writer;
    const [res] = await response;
    let text = '';
    for await (const c of res) text += String(c);
    expect(JSON.parse(text)).toEqual({ bytes: SIZE, sha256: expected.digest('hex') });
  });
});

describe('abort', () => {
  test('req.destroy() before the response aborts the mesh request and the endpoint sees its connection close', async () => {
    const arrived = once(server, 'request') as Promise<[http.IncomingMessage, http.ServerResponse]>;
    const req = http.get('http://files/hang', { agent });
    req.on('error', () => {});
    const [upstreamReq] = await arrived;
    upstreamReq.on('error', () => {}); // 'aborted', when its connection drops
    const closed = new Promise((r) => upstreamReq.on('close', r)); // not once(): it rejects on that 'error'
    req.destroy();
    await closed;
    expect(upstreamReq.complete).toBe(true); // it had arrived whole; the connection was then dropped
    expect(mesh.stats().services.files!).toMatchObject({ inFlight: 0, failures: 0 });
  });

  test('req.destroy() during a download stops the endpoint', async () => {
    const req = http.get('http://files/download', { agent });
    req.on('error', () => {});
    const [upstream] = (await once(server, 'request')) as [http.IncomingMessage, http.ServerResponse];
    upstream.on('error', () => {});
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.on('error', () => {});
    await once(res, 'data');
    const closed = new Promise((r) => upstream.on('close', r));
    req.destroy();
    await closed;
    expect(download.done).toBe(false);
    expect(mesh.stats().services.files!.inFlight).toBe(0);
  });
});

describe('Expect: 100-continue', () => {
  test('the client gets 100 Continue, then sends its body; the endpoint sees no Expect header', async () => {
    const req = http.request('http://files/echo', { agent, method: 'PUT', headers: { expect: '100-continue', 'content-length': '5' } });
    const [, [res]] = await Promise.all([once(req, 'continue').then(() => req.end('hello')), once(req, 'response') as Promise<[http.IncomingMessage]>]);
    let text = '';
    for await (const c of res) text += String(c);
    expect(JSON.parse(text)).toEqual({ bytes: 5, expect: null });
  });

  test('a request the mesh refuses fails before the client sends its body (no 100 Continue)', async () => {
    await new Promise<void>((resolve, reject) => http.get('http://limited/first', { agent }, (r) => r.resume().on('end', resolve)).on('error', reject));
    let continued = false;
    const req = http.request('http://limited/second', { agent, method: 'PUT', headers: { expect: '100-continue', 'content-length': '5' } });
    req.on('continue', () => {
      continued = true;
      req.end('hello');
    });
    req.on('response', () => {});
    const [err] = (await once(req, 'error')) as [Error];
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(continued).toBe(false);
  });
});

describe('upgrades and CONNECT', () => {
  test('an upgrade is relayed through the mesh: 101, then bytes both ways', async () => {
    const req = http.request('http://files/ws', { agent, headers: { connection: 'upgrade', upgrade: 'echo' } });
    req.end();
    const [res, socket, head] = (await once(req, 'upgrade')) as [http.IncomingMessage, Duplex, Buffer];
    expect(res.statusCode).toBe(101);
    expect(res.headers['x-backend']).toBe('up');
    expect(head.length).toBe(0);
    socket.write('hello');
    const [data] = (await once(socket, 'data')) as [Buffer];
    expect(data.toString()).toBe('HELLO');
    socket.destroy();
  });

  /** An upgraded connection through the agent: the client's socket and the endpoint's. */
  async function tunnel(): Promise<{ client: Duplex; endpoint: Duplex }> {
    const arrived = once(server, 'upgrade') as Promise<[http.IncomingMessage, Duplex]>;
    const req = http.request('http://files/ws', { agent, headers: { connection: 'upgrade', upgrade: 'echo' } });
    req.end();
    const [, client] = (await once(req, 'upgrade')) as [http.IncomingMessage, Duplex];
    const [, endpoint] = await arrived;
    client.write('ping');
    expect(String((await once(client, 'data'))[0])).toBe('PING');
    return { client, endpoint };
  }

  test('agent.destroy() ends an upgraded connection: the client’s socket closes, the endpoint’s connection ends', async () => {
    const { client, endpoint } = await tunnel();
    const closed = Promise.all([once(client, 'close'), once(endpoint, 'end')]);
    agent.destroy();
    await closed;
    expect(client.destroyed).toBe(true);
  });

  test('mesh.close() holds for an open upgraded connection within its grace, then ends it', async () => {
    const { client, endpoint } = await tunnel();
    let done = false;
    const closing = mesh.close({ graceMs: 600_000 }).then(() => (done = true));
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    client.write('still');
    expect(String((await once(client, 'data'))[0])).toBe('STILL'); // the tunnel still relays in the grace
    const closed = Promise.all([once(client, 'close'), once(endpoint, 'end')]);
    await mesh.dispatcher.destroy(); // the grace ends now
    await closed;
    await closing;
    expect(done).toBe(true);
  });

  test('an upgraded connection the client closes during the grace lets mesh.close() resolve', async () => {
    const { client, endpoint } = await tunnel();
    const closing = mesh.close({ graceMs: 600_000 });
    client.destroy();
    await once(endpoint, 'end');
    await closing; // now, not after ten minutes
  });

  test('an endpoint that answers an upgrade with a plain response: the client gets that response', async () => {
    const req = http.request('http://files/ws', { agent, headers: { connection: 'upgrade', upgrade: 'other' } });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let text = '';
    for await (const c of res) text += String(c);
    expect(res.statusCode).toBe(400);
    expect(text).toBe('not upgrade');
  });

  test('an upgrade the endpoint resets is not retried: one request reached it, the client gets the error, retries stays 0', async () => {
    // The service has the default retry policy, which retries a reset (attempts 2): an ordinary
    // GET the endpoint resets would be sent again. An upgrade goes to one endpoint, once.
    let upgrades = 0;
    server.removeAllListeners('upgrade');
    server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
      upgrades++;
      socket.destroy(); // reset: no response at all
    });
    const req = http.request('http://files/ws', { agent, headers: { connection: 'upgrade', upgrade: 'echo' } });
    let upgraded = false;
    req.on('upgrade', (_res, socket: Duplex) => ((upgraded = true), socket.destroy()));
    req.end();
    const [err] = (await once(req, 'error')) as [Error & { code?: string }];
    expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', service: 'files' });
    expect(upgraded).toBe(false);
    expect(upgrades).toBe(1);
    const stats = mesh.stats().services.files!;
    expect(stats.retries).toBe(0);
    expect(stats.endpoints.map((e) => e.requests)).toEqual([1]);
  });

  test('CONNECT to a service is refused with INVALID_REQUEST before any endpoint is contacted', async () => {
    let reached = false;
    server.once('connect', () => (reached = true));
    const req = http.request({ host: 'files', method: 'CONNECT', path: 'example.test:443', agent });
    req.end();
    const [err] = (await once(req, 'error')) as [Error];
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', service: 'files' });
    expect(reached).toBe(false);
  });
});
