// The Host header an endpoint receives is the mesh's — the host the caller addressed
// (hostHeader: 'service') or the endpoint's address ('endpoint') — never one the caller set, in
// any of the shapes undici takes headers in. Checked on real backends that record what they get.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let shadow: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  backend = await startBackend('b');
  shadow = await startBackend('shadow');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await Promise.all([backend.close(), shadow.close()]);
});

function meshWith(hostHeader: 'service' | 'endpoint'): Mesh {
  mesh = createMesh({ services: { orders: { endpoints: [backend.url], hostHeader, retry: false } } });
  return mesh;
}

const evil = 'admin.internal.example';
/** One set of headers — a spoofed Host among others — in each shape undici accepts (and an array of pairs). */
const shapes: [string, () => Dispatcher.DispatchOptions['headers']][] = [
  ['object, "Host"', () => ({ Host: evil, 'x-a': '1' })],
  ['object, "host"', () => ({ 'x-a': '1', host: evil })],
  ['object, "host" undefined beside "HOST"', () => ({ host: undefined, HOST: evil, 'x-a': '1' })],
  ['flat array', () => ['x-a', '1', 'HoSt', evil]],
  ['array of pairs', () => [['Host', evil], ['x-a', '1']] as unknown as string[]],
  ['Map', () => new Map([['host', evil], ['x-a', '1']])],
  [
    'generator (read once)',
    () =>
      (function* () {
        yield ['x-a', '1'] as [string, string];
        yield ['Host', evil] as [string, string];
      })(),
  ],
];

describe("a caller's Host header never reaches the endpoint", () => {
  test.each(shapes)("hostHeader 'service': %s → the host the caller addressed", async (_name, headers) => {
    const m = meshWith('service');
    const res = await request('http://orders:8080/x', { dispatcher: m.dispatcher, headers: headers() as never });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: 'orders:8080', 'x-a': '1' });
  });

  test.each(shapes)("hostHeader 'endpoint': %s → the endpoint's address", async (_name, headers) => {
    const m = meshWith('endpoint');
    const res = await request('http://orders/x', { dispatcher: m.dispatcher, headers: headers() as never });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: `127.0.0.1:${backend.port}`, 'x-a': '1' });
  });

  test('without a Host header of the caller, the headers are sent as given', async () => {
    const m = meshWith('endpoint');
    const res = await request('http://orders/x', { dispatcher: m.dispatcher, headers: ['x-a', '1', 'x-b', '2'] });
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: `127.0.0.1:${backend.port}`, 'x-a': '1', 'x-b': '2' });
  });

  test('an iterable entry that is not a [name, value] pair fails with INVALID_REQUEST, as undici would, and nothing is sent', async () => {
    const m = meshWith('service');
    const headers = (function* () {
      yield ['x-a'];
    })();
    const err = await request('http://orders/x', { dispatcher: m.dispatcher, headers: headers as never }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders', cause: { code: 'UND_ERR_INVALID_ARG' } });
    expect(backend.received).toHaveLength(0);
  });

  test("a mirrored copy carries '<host>-shadow', whatever Host the caller set", async () => {
    const mirrored = new Promise<string | undefined>((resolve) => {
      shadow.handler = (req, res) => {
        resolve(req.headers.host);
        res.end();
      };
    });
    mesh = createMesh({
      services: {
        orders: {
          endpoints: [{ url: backend.url, labels: { v: '1' } }, { url: shadow.url, labels: { v: '2' } }],
          subsets: { v1: { labels: { v: '1' } }, v2: { labels: { v: '2' } } },
          routes: [{ subset: 'v1', mirror: { subset: 'v2' } }],
        },
      },
    });
    const res = await request('http://orders/m', { dispatcher: mesh.dispatcher, headers: ['Host', evil] });
    await res.body.dump();
    expect(await mirrored).toBe('orders-shadow');
    expect(backend.received[0]!.headers.host).toBe('orders');
  });
});
