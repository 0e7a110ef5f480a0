import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';

const SIZE = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 7);

let server: http.Server;
let mesh: Mesh;
let downloadWritten = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/upload') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        h.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
      return;
    }
    // /download: 50 MB written with back-pressure honoured, so `downloadWritten` shows how far the
    // server got while the client was not reading.
    downloadWritten = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const write = (): void => {
      while (downloadWritten < SIZE) {
        downloadWritten += CHUNK.length;
        if (!res.write(CHUNK)) {
          res.once('drain', write);
          return;
        }
      }
      res.end();
    };
    write();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mesh = createMesh({
    services: { files: { endpoints: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] } },
  });
});

afterAll(async () => {
  await mesh.close();
  await new Promise<void>((r) => server.close(() => r()));
});

test('a 50 MB streamed upload arrives byte for byte', async () => {
  const expected = createHash('sha256');
  let produced = 0;
  const body = Readable.from(
    (function* () {
      while (produced < SIZE) {
        produced += CHUNK.length;
        expected.update(CHUNK);
        yield CHUNK;
      }
    })(),
  );
  const res = await request('http://files/upload', { dispatcher: mesh.dispatcher, method: 'POST', body });
  const got = (await res.body.json()) as { bytes: number; sha256: string };
  expect(got.bytes).toBe(SIZE);
  expect(got.sha256).toBe(expected.digest('hex'));
});

test('a 50 MB download streams with back-pressure (never buffered whole)', async () => {
  const res = await request('http://files/download', { dispatcher: mesh.dispatcher });
  const iter = res.body[Symbol.asyncIterator]();
  const first = await iter.next();
  expect(first.done).toBe(false);
  // Stop reading for a while: if anything buffered the whole body, the server would finish.
  // "A while" is event-loop turns, not ms: server and client share this loop and loopback hands
  // data over at once, so a reader that does not honour back-pressure pulls half the body in
  // ~15 turns and all of it in ~25, on a fast machine or a slow one. 1000 turns leave no doubt.
  for (let i = 0; i < 1000; i++) await new Promise((r) => setImmediate(r));
  expect(downloadWritten).toBeLessThan(SIZE / 2);
  let total = (first.value as Buffer).length;
  for (let r = await iter.next(); !r.done; r = await iter.next()) total += (r.value as Buffer).length;
  expect(total).toBe(SIZE);
  expect(downloadWritten).toBe(SIZE);
});

test('mesh.fetch streams a download as a web ReadableStream', async () => {
  const res = await mesh.fetch('http://files/download');
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) total += chunk.length;
  expect(total).toBe(SIZE);
});
