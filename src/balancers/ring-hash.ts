/**
 * `ring-hash`: Ketama consistent hashing, as Envoy's RING_HASH. Each endpoint is placed on a
 * 32-bit ring 160 times per unit of weight — the ring has between `minimumRingSize` (1024) and
 * `maximumRingSize` (8,388,608) entries — and a request goes to the first entry clockwise from its
 * hash. Removing one of n endpoints moves about 1/n of the keys.
 * Optional bounded loads (`balanceFactor`). The ring lives in two typed arrays, searched by bisection.
 */
import type { BalancerDefinition, PickResult } from './balancer.js';
import { hash32 } from './hash.js';
import { checkNumber, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import { BoundedLoad, chooseBounded, parseBalanceFactor } from './bounded-load.js';

export interface RingHashOptions {
  minimumRingSize: number;
  maximumRingSize: number;
  balanceFactor: number | undefined;
}

const MAX_RING = 8_388_608;

/** Entries per unit of weight (ketama's 160): fixed, so adding an endpoint leaves the others' entries alone. */
const PER_WEIGHT = 160;

/**
 * Build the ring: sorted positions and, for each, the index of the endpoint that owns it. Each
 * endpoint gets `weight × 160` entries — a number that depends only on its own weight, so going
 * from n to n+1 endpoints moves only the keys the new one takes (≈ 1/(n+1)). When 160 per unit
 * would make a ring smaller than `minSize`, each unit gets `minSize` entries instead; a ring over
 * `maxSize` is scaled down. Only crossing those thresholds makes counts depend on the others.
 */
export function buildRing(keys: readonly string[], weights: readonly number[], minSize: number, maxSize: number): { hashes: Uint32Array; owners: Uint32Array } {
  const total = weights.reduce((a, b) => a + b, 0);
  // A ring under minSize gives every unit of weight minSize entries (not minSize / total), so that
  // small clusters keep their counts stable too; only crossing that threshold reshuffles.
  let perWeight = PER_WEIGHT;
  if (perWeight * total < minSize) perWeight = minSize;
  if (perWeight * total > maxSize) perWeight = maxSize / total;
  const counts = weights.map((w) => Math.max(1, Math.floor(w * perWeight)));
  const size = counts.reduce((a, b) => a + b, 0);
  // Pack (hash, owner) into one exactly-representable double (hash × 2^21 + owner < 2^53) so a
  // native typed-array sort orders the ring: ties on hash break by owner, deterministically.
  const packed = new Float64Array(size);
  let k = 0;
  counts.forEach((n, owner) => {
    for (let r = 0; r < n; r++) packed[k++] = hash32(`${keys[owner]}_${r}`) * 2_097_152 + owner;
  });
  packed.sort();
  const hashes = new Uint32Array(size);
  const owners = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    const v = packed[i]!;
    const h = Math.floor(v / 2_097_152);
    hashes[i] = h;
    owners[i] = v - h * 2_097_152;
  }
  return { hashes, owners };
}

export const ringHash: BalancerDefinition<RingHashOptions> = {
  usesHash: true,
  create(endpoints, options, deps) {
    const { hashes, owners } = buildRing(
      endpoints.map((e) => e.hashKey),
      endpoints.map((e) => e.weight),
      options.minimumRingSize,
      options.maximumRingSize,
    );
    const bound = new BoundedLoad(options.balanceFactor, endpoints.map((e) => e.weight));
    const size = hashes.length;
    const limit = Math.min(size, bound.bounded ? 64 : 16);
    return {
      pick(ctx): PickResult {
        const h = ctx.hash ?? (deps.random() * 0x1_0000_0000) >>> 0;
        let lo = 0;
        let hi = size;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (hashes[mid]! < h) lo = mid + 1;
          else hi = mid;
        }
        const start = lo === size ? 0 : lo;
        const i = chooseBounded(endpoints, bound, ctx, owners[start]!, (step) => owners[(start + step) % size]!, limit);
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
