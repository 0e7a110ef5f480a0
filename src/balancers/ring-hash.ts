/**
 * `ring-hash`: Ketama consistent hashing exactly as Envoy's RING_HASH builds and searches it
 * (`source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc`), so that a meshlet
 * client and an Envoy sidecar send the same request hash to the same endpoint:
 *
 * 1. Weights are normalised to sum to 1; the scale is `ceil(min × minimumRingSize) / min`, capped
 *    at `maximumRingSize` (min = the smallest normalised weight), so the lightest endpoint gets a
 *    whole number of points.
 * 2. Walking the endpoints with running sums (target += scale × weight), each adds points until
 *    the count reaches the target: point i of an endpoint is XXH64(`<hash key>_<i>`, seed 0).
 * 3. Points are sorted by their 64-bit hash; a request goes to the first point at or after its
 *    hash, wrapping to the first. A retry (or a point over its bounded load) takes the next point.
 *
 * Endpoints are walked in hash-key order (endpoint-keys.ts). Ring defaults are Envoy's: 1024 and
 * 8,388,608. Adding one endpoint to n equal ones moves about 1/(n+1) of the keys, plus those of
 * the points the others give up when the ring is rescaled (measured in test/balancers/).
 * Optional bounded loads (`balanceFactor`). The ring is three typed arrays, searched by bisection.
 */
import type { BalancerDefinition, PickResult } from './balancer.js';
import { xxh64 } from './xxhash64.js';
import { checkNumber, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import { BoundedLoad, firstNotSkipped, parseBalanceFactor } from './bounded-load.js';
import { keyBytes, keyOrder } from './endpoint-keys.js';

export interface RingHashOptions {
  minimumRingSize: number;
  maximumRingSize: number;
  balanceFactor: number | undefined;
}

/** Envoy's `DefaultMaxRingSize`, also the largest ring it accepts. */
export const MAX_RING = 8_388_608;

/** A ring: points sorted by hash (upper and lower 32 bits), and the endpoint each belongs to. */
export interface Ring {
  readonly high: Uint32Array;
  readonly low: Uint32Array;
  /** Index, into the keys the ring was built from, of each point's endpoint. */
  readonly owners: Uint32Array;
}

/** Points per endpoint, by Envoy's scale and running sums (steps 1 and 2), in the order given. */
export function ringCounts(weights: readonly number[], minSize: number, maxSize: number): number[] {
  let sum = 0;
  for (const w of weights) sum += w;
  const normalized = weights.map((w) => w / sum);
  let min = 1;
  for (const w of normalized) min = Math.min(min, w);
  const scale = Math.min(Math.ceil(min * minSize) / min, maxSize);
  let current = 0;
  let target = 0;
  return normalized.map((w) => {
    target += scale * w;
    let n = 0;
    while (current < target) {
      n++;
      current++;
    }
    return n;
  });
}

/** Build Envoy's ring over `keys` (hash keys as given, UTF-8) with their weights, in that order. */
export function buildRing(keys: readonly (string | Uint8Array)[], weights: readonly number[], minSize: number, maxSize: number): Ring {
  const counts = ringCounts(weights, minSize, maxSize);
  let size = 0;
  for (const n of counts) size += n;
  const high = new Uint32Array(size);
  const low = new Uint32Array(size);
  const owner = new Uint32Array(size);
  const out = new Uint32Array(2);
  let k = 0;
  counts.forEach((n, e) => {
    const key = keys[e]!;
    const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    // `<key>_<i>`: the prefix once, then the decimal digits of i after it.
    const buf = new Uint8Array(bytes.length + 12);
    buf.set(bytes);
    buf[bytes.length] = 0x5f;
    for (let i = 0; i < n; i++) {
      xxh64(buf, writeDecimal(buf, bytes.length + 1, i), 0, 0, out);
      high[k] = out[0]!;
      low[k] = out[1]!;
      owner[k++] = e;
    }
  });
  const order = sortByHash(high, low);
  return { high: high.map((_, i) => high[order[i]!]!), low: low.map((_, i) => low[order[i]!]!), owners: owner.map((_, i) => owner[order[i]!]!) };
}

/**
 * Index of the first point whose hash is ≥ (`hashHigh`, `hashLow`), or 0 past the last: where
 * Envoy's ketama search (`Ring::chooseHost`) lands.
 */
export function firstPoint(high: Uint32Array, low: Uint32Array, hashHigh: number, hashLow: number): number {
  let lo = 0;
  let hi = high.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = high[mid]!;
    if (m < hashHigh || (m === hashHigh && low[mid]! < hashLow)) lo = mid + 1;
    else hi = mid;
  }
  return lo === high.length ? 0 : lo;
}

function writeDecimal(buf: Uint8Array, at: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let p = at + digits - 1, x = n; p >= at; p--, x = Math.floor(x / 10)) buf[p] = 0x30 + (x % 10);
  return at + digits;
}

/**
 * Indices of the points in ascending 64-bit order: an LSD radix sort over eight bytes (linear,
 * so an 8M-point ring sorts in a fraction of a second); equal hashes keep their build order.
 */
function sortByHash(high: Uint32Array, low: Uint32Array): Uint32Array {
  const n = high.length;
  let from = new Uint32Array(n).map((_, i) => i);
  let to = new Uint32Array(n);
  const count = new Uint32Array(256);
  for (let pass = 0; pass < 8; pass++) {
    const words = pass < 4 ? low : high;
    const shift = (pass % 4) * 8;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(words[i]! >>> shift) & 255]!++;
    let acc = 0;
    for (let d = 0; d < 256; d++) {
      const c = count[d]!;
      count[d] = acc;
      acc += c;
    }
    for (let i = 0; i < n; i++) {
      const idx = from[i]!;
      to[count[(words[idx]! >>> shift) & 255]!++] = idx;
    }
    [from, to] = [to, from];
  }
  return from;
}

export const ringHash: BalancerDefinition<RingHashOptions> = {
  usesHash: true,
  create(endpoints, options, deps) {
    const bytes = keyBytes(endpoints);
    const order = keyOrder(endpoints, bytes);
    const ring = buildRing(
      order.map((i) => bytes[i]!),
      order.map((i) => endpoints[i]!.weight),
      options.minimumRingSize,
      options.maximumRingSize,
    );
    const owners = ring.owners.map((o) => order[o]!);
    const bound = new BoundedLoad(options.balanceFactor, endpoints.map((e) => e.weight));
    const { high, low } = ring;
    const size = high.length;
    const limit = Math.min(size, bound.bounded ? 64 : 16);
    return {
      pick(ctx): PickResult {
        let hh: number;
        let hl: number;
        if (ctx.hash === undefined) {
          hh = (deps.random() * 0x1_0000_0000) >>> 0;
          hl = (deps.random() * 0x1_0000_0000) >>> 0;
        } else {
          hh = ctx.hash;
          hl = ctx.hashLow ?? 0;
        }
        const start = firstPoint(high, low, hh, hl);
        // Then on round the ring, as Envoy's retries do: past skipped endpoints and, with bounded
        // loads, past those over capacity (the first one not skipped is the fallback).
        let fallback = -1;
        for (let step = 0; step < limit; step++) {
          const i = owners[(start + step) % size]!;
          const e = endpoints[i]!;
          if (ctx.skip(e)) continue;
          if (bound.fits(e, i)) return e.picked;
          if (fallback < 0) fallback = i;
        }
        const i = fallback >= 0 ? fallback : firstNotSkipped(endpoints, ctx);
        return i < 0 ? deps.noEndpoint : endpoints[i]!.picked;
      },
    };
  },
  parseOptions(raw, path) {
    rejectUnknown(raw, ['minimumRingSize', 'maximumRingSize', 'balanceFactor'], path);
    const min = raw.minimumRingSize === undefined ? 1024 : checkNumber(raw.minimumRingSize, `${path}.minimumRingSize`, { integer: true, min: 1, max: MAX_RING });
    const max = raw.maximumRingSize === undefined ? MAX_RING : checkNumber(raw.maximumRingSize, `${path}.maximumRingSize`, { integer: true, min: 1, max: MAX_RING });
    if (max < min) throw new InvalidConfigError(`${path}.maximumRingSize`, `expected ≥ minimumRingSize (${min}), got ${max}`);
    return { minimumRingSize: min, maximumRingSize: max, balanceFactor: parseBalanceFactor(raw, path) };
  },
};
