import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { mod64, writeUtf8, xxh64, xxh64Latin1, xxh64Utf8 } from '../../src/balancers/xxhash64.js';

const M = (1n << 64n) - 1n;
const out = new Uint32Array(2);
const value = (): bigint => (BigInt(out[0]!) << 32n) | BigInt(out[1]!);

/** XXH64 written a second time, straight from the spec in BigInt: slow, but independent of the halves. */
function reference(bytes: Uint8Array, seed: bigint): bigint {
  const P1 = 0x9e3779b185ebca87n, P2 = 0xc2b2ae3d27d4eb4fn, P3 = 0x165667b19e3779f9n, P4 = 0x85ebca77c2b2ae63n, P5 = 0x27d4eb2f165667c5n;
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
  const lane = (p: number, n: number): bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]!);
    return v;
  };
  const round = (acc: bigint, input: bigint): bigint => (rotl((acc + input * P2) & M, 31n) * P1) & M;
  let p = 0;
  let h: bigint;
  if (bytes.length >= 32) {
    const v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M];
    for (; p + 32 <= bytes.length; p += 32) for (let k = 0; k < 4; k++) v[k] = round(v[k]!, lane(p + 8 * k, 8));
    h = (rotl(v[0]!, 1n) + rotl(v[1]!, 7n) + rotl(v[2]!, 12n) + rotl(v[3]!, 18n)) & M;
    for (const x of v) h = (((h ^ round(0n, x)) * P1) & M) + P4 & M;
  } else h = (seed + P5) & M;
  h = (h + BigInt(bytes.length)) & M;
  for (; p + 8 <= bytes.length; p += 8) h = ((rotl(h ^ round(0n, lane(p, 8)), 27n) * P1) & M) + P4 & M;
  if (p + 4 <= bytes.length) {
    h = ((rotl(h ^ ((lane(p, 4) * P1) & M), 23n) * P2) & M) + P3 & M;
    p += 4;
  }
  for (; p < bytes.length; p++) h = (rotl(h ^ ((BigInt(bytes[p]!) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  return h ^ (h >> 32n);
}

describe('XXH64', () => {
  test('matches the reference sanity vectors of the xxHash repository (cli/xsum_sanity_check.c)', () => {
    const buf = new Uint8Array(222);
    let gen = 2654435761n;
    for (let k = 0; k < buf.length; k++) {
      buf[k] = Number(gen >> 56n);
      gen = (gen * 11400714785074694797n) & M;
    }
    const prime = 2654435761;
    const vectors: [number, number, bigint][] = [
      [0, 0, 0xef46db3751d8e999n],
      [0, prime, 0xac75fda2929b17efn],
      [1, 0, 0xe934a84adb052768n],
      [1, prime, 0x5014607643a9b4c3n],
      [4, 0, 0x9136a0dca57457een],
      [14, 0, 0x8282dcc4994e35c8n],
      [14, prime, 0xc3bd6bf63deb6df0n],
      [222, 0, 0xb641ae8cb691c174n],
      [222, prime, 0x20cb8ab7ae10c14an],
    ];
    for (const [len, seed, expected] of vectors) {
      xxh64(buf, len, 0, seed, out);
      expect(value(), `len ${len}, seed ${seed}`).toBe(expected);
      expect(reference(buf.subarray(0, len), BigInt(seed))).toBe(expected); // the reference is right too

    }
  });

  test("gives the values Envoy's hash test prints (test/common/common/hash_test.cc)", () => {
    const envoy: [string, bigint][] = [
      ['foo', 3728699739546630719n],
      ['bar', 5234164152756840025n],
      ['foo\nbar', 8917841378505826757n],
      ['lyft', 4400747396090729504n],
      ['', 17241709254077376921n],
    ];
    for (const [text, expected] of envoy) {
      xxh64Utf8(text, 0, out);
      expect(value(), text).toBe(expected);
      xxh64Latin1(text, 0, 0, out);
      expect(value(), text).toBe(expected);
    }
    // xxHash64 over the span {"foo", "bar"}: each piece seeded with the previous result (64-bit seed).
    xxh64Latin1('foo', 0, 0, out);
    xxh64Latin1('bar', out[0]!, out[1]!, out);
    expect(value()).toBe(17745830980996999794n);
  });

  test('agrees with a BigInt implementation for any bytes and any 64-bit seed, every length branch included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.bigInt({ min: 0n, max: M }), (bytes, seed) => {
        xxh64(bytes, bytes.length, Number(seed >> 32n), Number(seed & 0xffffffffn), out);
        expect(value()).toBe(reference(bytes, seed));
      }),
      { seed: 13, numRuns: 400 },
    );
  });

  test('hashes text as UTF-8 (as Buffer encodes it, lone surrogates as U+FFFD) or as Latin-1 wire bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        const utf8 = Buffer.from(text, 'utf8');
        const buf = new Uint8Array(text.length * 3);
        expect(Buffer.from(buf.subarray(0, writeUtf8(text, buf, 0)))).toEqual(utf8);
        xxh64Utf8(text, 0, out);
        expect(value()).toBe(reference(utf8, 0n));
        xxh64Latin1(text, 0, 0, out);
        expect(value()).toBe(reference(Buffer.from(text, 'latin1'), 0n));
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  test('mod64 is the exact remainder of the 64-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: M }), fc.integer({ min: 1, max: 5_000_011 }), (v, m) => {
        expect(mod64(Number(v >> 32n), Number(v & 0xffffffffn), m)).toBe(Number(v % BigInt(m)));
      }),
      { seed: 3, numRuns: 500 },
    );
  });
});
