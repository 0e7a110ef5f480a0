/**
 * `maglev`: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4, pseudocode
 * listing 1) exactly as Envoy's MAGLEV builds it (`maglev/maglev_lb.cc`), so that a meshlet client
 * and an Envoy sidecar send the same request hash to the same endpoint:
 *
 * 1. Endpoints are taken in hash-key order; each gets offset = XXH64(key, seed 0) mod size and
 *    skip = XXH64(key, seed 1) mod (size − 1) + 1, and claims slots offset + j × skip (mod size).
 * 2. Weights are normalised to sum to 1. In round r = 1, 2, … an endpoint claims its next free
 *    slot unless r × weight < its target; each claim adds the largest weight to its target, so
 *    the heaviest endpoint claims every round and one of a third its weight every third.
 * 3. A pick is table[hash mod size]. A retry (or a slot over its bounded load) looks at
 *    table[(hash XOR (2^64 − k)) mod size] for k = 1, 2, …, as Envoy's retry host predicate does.
 *
 * The table size must be prime (`tableSize`, default 65537, Envoy's and the paper's §5.3). Against
 * a ring it builds and picks faster and balances more evenly, but moves somewhat more keys when
 * endpoints change.
 */
import type { BalancerDefinition, PickResult } from './balancer.js';
import { mod64, xxh64 } from './xxhash64.js';
import { checkNumber, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import { BoundedLoad, firstNotSkipped, parseBalanceFactor } from './bounded-load.js';
import { keyBytes, keyOrder } from './endpoint-keys.js';

export interface MaglevOptions {
  tableSize: number;
  balanceFactor: number | undefined;
}

/** Envoy's largest table size (its config's `lte`). */
const MAX_TABLE = 5_000_011;

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Build the lookup table (slot → index into `keys`), with endpoints in the order given (steps 1 and 2). */
export function buildMaglevTable(keys: readonly (string | Uint8Array)[], weights: readonly number[], size: number): Uint32Array {
  const n = keys.length;
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const out = new Uint32Array(2);
  keys.forEach((key, i) => {
    const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    xxh64(bytes, bytes.length, 0, 0, out);
    offset[i] = mod64(out[0]!, out[1]!, size);
    xxh64(bytes, bytes.length, 0, 1, out);
    skip[i] = mod64(out[0]!, out[1]!, size - 1) + 1;
  });
  let sum = 0;
  for (const w of weights) sum += w;
  const weight = weights.map((w) => w / sum);
  let maxWeight = 0;
  for (const w of weight) maxWeight = Math.max(maxWeight, w);
  const target = new Float64Array(n);
  const next = new Float64Array(n);
  const table = new Uint32Array(size);
  const taken = new Uint8Array(size);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      if (round * weight[i]! < target[i]!) continue;
      target[i]! += maxWeight;
      let c = (offset[i]! + skip[i]! * next[i]!) % size;
      while (taken[c]) {
        next[i]!++;
        c = (offset[i]! + skip[i]! * next[i]!) % size;
      }
      table[c] = i;
      taken[c] = 1;
      next[i]!++;
      filled++;
    }
  }
  return table;
}

export const maglev: BalancerDefinition<MaglevOptions> = {
  usesHash: true,
  create(endpoints, options, deps) {
    const size = options.tableSize;
    const bytes = keyBytes(endpoints);
    const order = keyOrder(endpoints, bytes);
    const sorted = buildMaglevTable(
      order.map((i) => bytes[i]!),
      order.map((i) => endpoints[i]!.weight),
      size,
    );
    const table = sorted.map((k) => order[k]!);
    const bound = new BoundedLoad(options.balanceFactor, endpoints.map((e) => e.weight));
    const limit = Math.min(size, bound.bounded ? 64 : 16);
    const two32 = 4294967296 % size;
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
        let fallback = -1;
        for (let k = 0; k < limit; k++) {
          // Envoy's k-th alternative: hash XOR (2^64 − k), whose halves are (~high, low XOR (2^32 − k)).
          const i = k === 0 ? table[mod64(hh, hl, size, two32)]! : table[mod64(~hh, hl ^ (0x1_0000_0000 - k), size, two32)]!;
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
    rejectUnknown(raw, ['tableSize', 'balanceFactor'], path);
    const tableSize = raw.tableSize === undefined ? 65_537 : checkNumber(raw.tableSize, `${path}.tableSize`, { integer: true, min: 7, max: MAX_TABLE });
    if (!isPrime(tableSize)) throw new InvalidConfigError(`${path}.tableSize`, `expected a prime number, got ${tableSize}`);
    return { tableSize, balanceFactor: parseBalanceFactor(raw, path) };
  },
};
