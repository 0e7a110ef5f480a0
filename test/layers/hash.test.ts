// The hash layer through a real mesh and real backends: the request's 64-bit hash is Envoy's
// (XXH64 of the header value, policies combined by rotate-and-XOR, `terminal`), and maglev sends it
// to the endpoint Envoy's table gives for the endpoints' addresses `127.0.0.1:<port>`.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type HashOn, type Mesh } from '../../src/index.js';
import { buildMaglevTable } from '../../src/balancers/maglev.js';
import { xxh64Latin1 } from '../../src/balancers/xxhash64.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

const M = (1n << 64n) - 1n;
const SIZE = 65_537;
let backends: Backend[];
let mesh: Mesh | null = null;

beforeAll(async () => {
  backends = [await startBackend('a'), await startBackend('b'), await startBackend('c'), await startBackend('d')];
});
afterEach(async () => {
  await mesh?.close();
  mesh = null;
});
afterAll(() => closeAll(backends));

/** XXH64(text, seed), by the implementation xxhash64.test.ts checks against Envoy's values. */
function xxh(text: string, seed = 0n): bigint {
  const out = new Uint32Array(2);
  xxh64Latin1(text, Number(seed >> 32n), Number(seed & 0xffffffffn), out);
  return (BigInt(out[0]!) << 32n) | BigInt(out[1]!);
}
const rotl1 = (h: bigint): bigint => ((h << 1n) | (h >> 63n)) & M;

/** The backend Envoy's Maglev table (default size) gives a 64-bit hash, for these backends' addresses. */
function expectedBackend(hash: bigint): string {
  const keys = backends.map((b) => `127.0.0.1:${b.port}`).sort();
  const table = buildMaglevTable(keys, keys.map(() => 1), SIZE);
  const key = keys[table[Number(hash % BigInt(SIZE))]!]!;
  return backends.find((b) => `127.0.0.1:${b.port}` === key)!.name;
}

function meshOn(hashOn: HashOn, logger?: { warn: (m: string) => void }): Mesh {
  mesh = createMesh({
    ...(logger ? { logger: { debug() {}, ...logger } } : {}),
    services: { api: { endpoints: backends.map((b) => b.url), balancer: { type: 'maglev', hashOn } } },
  });
  return mesh;
}

async function backendFor(m: Mesh, headers: Record<string, string> | string[], path = '/'): Promise<string> {
  const res = await request(`http://api${path}`, { dispatcher: m.dispatcher, headers });
  return ((await res.body.json()) as { backend: string }).backend;
}

describe('the request hash agrees with Envoy', () => {
  test('a header value hashes to XXH64(value, 0) and lands where Envoy’s table puts that hash', async () => {
    const m = meshOn({ header: 'x-user' });
    const seen = new Set<string>();
    for (let u = 0; u < 24; u++) {
      const user = `user-${u}`;
      const got = await backendFor(m, { 'x-user': user });
      expect(got, user).toBe(expectedBackend(xxh(user)));
      seen.add(got);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  test('a repeated header hashes its values sorted, each seeded with the previous hash', async () => {
    const m = meshOn({ header: 'x-user' });
    const expected = expectedBackend(xxh('zed', xxh('amy')));
    expect(await backendFor(m, ['x-user', 'zed', 'x-user', 'amy'])).toBe(expected);
    expect(await backendFor(m, ['x-user', 'amy', 'x-user', 'zed'])).toBe(expected);
  });

  test('two policies combine as rotl(first, 1) XOR second; terminal stops at the first with a value', async () => {
    const combined = meshOn([{ header: 'x-a' }, { query: 'b' }]);
    for (let u = 0; u < 12; u++) {
      expect(await backendFor(combined, { 'x-a': `a${u}` }, `/?b=b${u}`)).toBe(expectedBackend(rotl1(xxh(`a${u}`)) ^ xxh(`b${u}`)));
    }
    await combined.close();
    const terminal = meshOn([{ header: 'x-a', terminal: true }, { query: 'b' }]);
    for (let u = 0; u < 12; u++) {
      expect(await backendFor(terminal, { 'x-a': `a${u}` }, `/?b=b${u}`)).toBe(expectedBackend(xxh(`a${u}`)));
      expect(await backendFor(terminal, {}, `/?b=b${u}`)).toBe(expectedBackend(xxh(`b${u}`)));
    }
  });

  test('a key function that throws is logged once (until it returns again) and its value ignored; the other policies still count', async () => {
    const warnings: string[] = [];
    let throws = true;
    const m = meshOn(
      [
        () => {
          if (throws) throw new Error('no session store');
          return undefined;
        },
        { header: 'x-user' },
      ],
      { warn: (msg) => warnings.push(msg) },
    );
    expect(await backendFor(m, { 'x-user': 'amy' })).toBe(expectedBackend(xxh('amy')));
    expect(await backendFor(m, { 'x-user': 'amy' })).toBe(expectedBackend(xxh('amy'))); // throws again: not warned again
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/service api: hashOn function threw, ignoring its value \(warned once until it returns again\): no session store$/);
    throws = false;
    await backendFor(m, { 'x-user': 'amy' });
    throws = true;
    await backendFor(m, { 'x-user': 'amy' }); // a new spell of throwing: warned of
    expect(warnings).toHaveLength(2);
  });
});

test('a cookie policy with ttlMs 0 generates a session cookie (no Max-Age), as Envoy does for a zero TTL', async () => {
  mesh = createMesh({ services: { api: { endpoints: backends.map((b) => b.url), balancer: { type: 'ring-hash', hashOn: { cookie: 'sid', ttlMs: 0 } } } } });
  const first = await request('http://api/', { dispatcher: mesh.dispatcher });
  await first.body.dump();
  expect(String(first.headers['set-cookie'])).toMatch(/^sid=[0-9a-f-]{36}; Path=\/; HttpOnly$/);
});

describe('hashOn config', () => {
  test.each([
    [[], 'services.api.balancer.hashOn', /expected at least one hash policy/],
    // eslint-disable-next-line no-sparse-arrays
    [[, { header: 'x' }], 'services.api.balancer.hashOn[0]', /a hole in the list/],
    [[{ header: 'x' }, { header: '' }], 'services.api.balancer.hashOn[1].header', /expected a non-empty name/],
    [{ header: 'x', terminal: 'yes' }, 'services.api.balancer.hashOn.terminal', /expected a boolean/],
    [{ header: 'x', query: 'y' }, 'services.api.balancer.hashOn', /exactly one of/],
    [{ query: 'y', ttlMs: 5000 }, 'services.api.balancer.hashOn.ttlMs', /unknown field/],
    [[{ cookie: 'a', ttlMs: 5000 }, { cookie: 'b', ttlMs: 5000 }], 'services.api.balancer.hashOn', /at most one cookie policy with ttlMs/],
  ])('%j is refused at %s', (hashOn, path, message) => {
    expect(() => createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], balancer: { type: 'ring-hash', hashOn: hashOn as HashOn } } } })).toThrowError(
      expect.objectContaining({ path, message: expect.stringMatching(message) }),
    );
  });

  test('a list of policies round-trips through toJSON (key functions have no JSON form and are left out)', () => {
    const m = meshOn([{ header: 'X-A', terminal: true }, { cookie: 'sid', ttlMs: '1h' }, () => 'k']);
    expect((JSON.parse(JSON.stringify(m)) as { services: { api: { balancer: unknown } } }).services.api.balancer).toMatchObject({
      type: 'maglev',
      hashOn: [{ header: 'x-a', terminal: true }, { cookie: 'sid', ttlMs: 3_600_000 }],
    });
  });
});
