/**
 * XXH64 (Yann Collet's xxHash, 64-bit variant; spec: github.com/Cyan4973/xxHash doc/xxhash_spec.md),
 * the hash Envoy uses for its ring, its Maglev table and its hash policies (`HashUtil::xxHash64`).
 * Agreeing with Envoy's choices needs the same 64-bit values, so this is XXH64 itself, checked
 * against the reference sanity vectors and the values Envoy's own tests print.
 *
 * Written in plain JavaScript on pairs of 32-bit words rather than BigInt (which allocates on
 * every operation) or WebAssembly (`xxhash-wasm` must be initialised asynchronously, and
 * `createMesh` is synchronous). A 64-bit value travels as two local words, and `xxh64` writes the
 * result to the caller's `out[0]` (high) and `out[1]` (low), so hashing allocates nothing. Each
 * step is written out around one small helper for a product's high word: general add, multiply and
 * rotate helpers returning both words took three times the CPU (measured: V8 does not inline that
 * many calls into one large function, and boxed the words they returned).
 */

// The five 64-bit primes as (high, low) words, and 2^64 − P1. Words are kept as signed 32-bit
// integers, which V8 holds unboxed; `>>> 0` turns one into its unsigned value where that matters.
const P1H = 0x9e3779b1 | 0, P1L = 0x85ebca87 | 0;
const P2H = 0xc2b2ae3d | 0, P2L = 0x27d4eb4f | 0;
const P3H = 0x165667b1 | 0, P3L = 0x9e3779f9 | 0;
const P4H = 0x85ebca77 | 0, P4L = 0xc2b2ae63 | 0;
const P5H = 0x27d4eb2f | 0, P5L = 0x165667c5 | 0;
const NP1H = ~P1H, NP1L = (~P1L + 1) | 0;

/**
 * The high word of (ah:al) × (bh:bl) mod 2^64; the low word is `Math.imul(al, bl)`. The 64-bit
 * product of the low words is assembled from 16-bit pieces (every partial sum stays below 2^33,
 * exact in a double), then the cross terms that land in the high word are added.
 */
function mulHigh(ah: number, al: number, bh: number, bl: number): number {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const t = a0 * b0;
  const t1 = a1 * b0 + (t >>> 16);
  const w = (t1 & 0xffff) + a0 * b1;
  return (a1 * b1 + (t1 >>> 16) + (w >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh)) | 0;
}

/** Carry out of adding two low words. */
function carry(al: number, bl: number): number {
  return (al >>> 0) + (bl >>> 0) > 0xffffffff ? 1 : 0;
}

// The low word of `round`'s result (a second return value, so no object is made per call).
let roundLow = 0;

/** The spec's round: rotl(acc + lane × P2, 31) × P1. Returns the high word; the low is in roundLow. */
function round(ah: number, al: number, lh: number, ll: number): number {
  const ml = Math.imul(ll, P2L);
  const mh = mulHigh(lh, ll, P2H, P2L);
  const sh = (ah + mh + carry(al, ml)) | 0;
  const sl = (al + ml) | 0;
  const rh = (sh << 31) | (sl >>> 1);
  const rl = (sl << 31) | (sh >>> 1);
  roundLow = Math.imul(rl, P1L);
  return mulHigh(rh, rl, P1H, P1L);
}

function u32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

/**
 * XXH64 of `bytes[0..len)` with the 64-bit seed (`seedHigh`, `seedLow`): `out[0]` gets the upper
 * and `out[1]` the lower 32 bits of the hash.
 */
export function xxh64(bytes: Uint8Array, len: number, seedHigh: number, seedLow: number, out: Uint32Array): void {
  const sh = seedHigh | 0, sl = seedLow | 0;
  let p = 0;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    // Four accumulators: seed + P1 + P2, seed + P2, seed, seed − P1.
    let v1l = (sl + P1L) | 0;
    let v1h = (sh + P1H + carry(sl, P1L)) | 0;
    v1h = (v1h + P2H + carry(v1l, P2L)) | 0;
    v1l = (v1l + P2L) | 0;
    let v2h = (sh + P2H + carry(sl, P2L)) | 0, v2l = (sl + P2L) | 0;
    let v3h = sh, v3l = sl;
    let v4h = (sh + NP1H + carry(sl, NP1L)) | 0, v4l = (sl + NP1L) | 0;
    for (; p + 32 <= len; p += 32) {
      v1h = round(v1h, v1l, u32(bytes, p + 4), u32(bytes, p));
      v1l = roundLow;
      v2h = round(v2h, v2l, u32(bytes, p + 12), u32(bytes, p + 8));
      v2l = roundLow;
      v3h = round(v3h, v3l, u32(bytes, p + 20), u32(bytes, p + 16));
      v3l = roundLow;
      v4h = round(v4h, v4l, u32(bytes, p + 28), u32(bytes, p + 24));
      v4l = roundLow;
    }
    // h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18), a term at a time.
    hh = (v1h << 1) | (v1l >>> 31);
    hl = (v1l << 1) | (v1h >>> 31);
    for (let k = 1; k < 4; k++) {
      const vh = k === 1 ? v2h : k === 2 ? v3h : v4h;
      const vl = k === 1 ? v2l : k === 2 ? v3l : v4l;
      const r = k === 1 ? 7 : k === 2 ? 12 : 18;
      const th = (vh << r) | (vl >>> (32 - r));
      const tl = (vl << r) | (vh >>> (32 - r));
      hh = (hh + th + carry(hl, tl)) | 0;
      hl = (hl + tl) | 0;
    }
    // Merge each accumulator: h = (h XOR round(0, v)) × P1 + P4.
    for (let k = 0; k < 4; k++) {
      const vh = k === 0 ? v1h : k === 1 ? v2h : k === 2 ? v3h : v4h;
      const vl = k === 0 ? v1l : k === 1 ? v2l : k === 2 ? v3l : v4l;
      const xh = hh ^ round(0, 0, vh, vl);
      const xl = hl ^ roundLow;
      const ml = Math.imul(xl, P1L);
      hh = (mulHigh(xh, xl, P1H, P1L) + P4H + carry(ml, P4L)) | 0;
      hl = (ml + P4L) | 0;
    }
  } else {
    hh = (sh + P5H + carry(sl, P5L)) | 0;
    hl = (sl + P5L) | 0;
  }
  hh = (hh + carry(hl, len)) | 0;
  hl = (hl + len) | 0;
  // Eight bytes at a time: h = rotl(h XOR round(0, lane), 27) × P1 + P4.
  for (; p + 8 <= len; p += 8) {
    const xh = hh ^ round(0, 0, u32(bytes, p + 4), u32(bytes, p));
    const xl = hl ^ roundLow;
    const rh = (xh << 27) | (xl >>> 5);
    const rl = (xl << 27) | (xh >>> 5);
    const ml = Math.imul(rl, P1L);
    hh = (mulHigh(rh, rl, P1H, P1L) + P4H + carry(ml, P4L)) | 0;
    hl = (ml + P4L) | 0;
  }
  // Four bytes: h = rotl(h XOR (word × P1), 23) × P2 + P3.
  if (p + 4 <= len) {
    const w = u32(bytes, p);
    const xh = hh ^ mulHigh(0, w, P1H, P1L);
    const xl = hl ^ Math.imul(w, P1L);
    const rh = (xh << 23) | (xl >>> 9);
    const rl = (xl << 23) | (xh >>> 9);
    const ml = Math.imul(rl, P2L);
    hh = (mulHigh(rh, rl, P2H, P2L) + P3H + carry(ml, P3L)) | 0;
    hl = (ml + P3L) | 0;
    p += 4;
  }
  // Each remaining byte: h = rotl(h XOR (byte × P5), 11) × P1.
  for (; p < len; p++) {
    const c = bytes[p]!;
    const xh = hh ^ mulHigh(0, c, P5H, P5L);
    const xl = hl ^ Math.imul(c, P5L);
    const rh = (xh << 11) | (xl >>> 21);
    const rl = (xl << 11) | (xh >>> 21);
    hh = mulHigh(rh, rl, P1H, P1L);
    hl = Math.imul(rl, P1L);
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl ^= hh >>> 1;
  let th = mulHigh(hh, hl, P2H, P2L);
  let tl = Math.imul(hl, P2L);
  tl ^= (tl >>> 29) | (th << 3);
  th ^= th >>> 29;
  hh = mulHigh(th, tl, P3H, P3L);
  hl = Math.imul(tl, P3L);
  out[0] = hh;
  out[1] = hl ^ hh;
}

// One growing buffer for encoding strings before hashing (hashing is synchronous, never re-entered).
let scratch = new Uint8Array(256);

function room(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  return scratch;
}

/** Write `text` as UTF-8 into `buf` from `at` (lone surrogates as U+FFFD, as TextEncoder does); returns the end. */
export function writeUtf8(text: string, buf: Uint8Array, at: number): number {
  let p = at;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
      continue;
    }
    if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 63);
        buf[p++] = 0x80 | ((c >> 6) & 63);
        buf[p++] = 0x80 | (c & 63);
        continue;
      }
      c = 0xfffd;
    }
    buf[p++] = 0xe0 | (c >> 12);
    buf[p++] = 0x80 | ((c >> 6) & 63);
    buf[p++] = 0x80 | (c & 63);
  }
  return p;
}

/** XXH64 of `text` encoded as UTF-8 (endpoint keys, a key function's result), with a 32-bit seed. */
export function xxh64Utf8(text: string, seed: number, out: Uint32Array): void {
  const buf = room(text.length * 3);
  xxh64(buf, writeUtf8(text, buf, 0), 0, seed, out);
}

/**
 * XXH64 of `text` as the bytes undici puts on the wire for header and path text: Latin-1, one
 * byte per UTF-16 code unit (its low 8 bits). A proxy sees these bytes, so a sidecar hashing the
 * same header gets the same value.
 */
export function xxh64Latin1(text: string, seedHigh: number, seedLow: number, out: Uint32Array): void {
  const n = text.length;
  const buf = room(n);
  for (let i = 0; i < n; i++) buf[i] = text.charCodeAt(i) & 0xff;
  xxh64(buf, n, seedHigh, seedLow, out);
}

/**
 * (high × 2^32 + low) mod m, exactly, for 1 ≤ m ≤ 2^26 (Maglev's largest table is 5,000,011);
 * `two32` is 2^32 mod m, which a caller with a fixed m computes once. Remainders by floor
 * division, three times faster than `%` on numbers past 2^31 (measured): every value stays under
 * 2^53 (under 2^45 for Maglev's table sizes), where a double quotient is never rounded across an
 * integer.
 */
export function mod64(high: number, low: number, m: number, two32: number = 4294967296 % m): number {
  const h = high >>> 0;
  const x = (h - Math.floor(h / m) * m) * two32 + (low >>> 0);
  return x - Math.floor(x / m) * m;
}
