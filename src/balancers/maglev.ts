/**
 * `maglev`: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4), as Envoy's
 * MAGLEV. Each endpoint has a permutation of the table's slots (offset and skip from two hashes of
 * its key); endpoints take turns claiming their next free slot until the prime-sized table
 * (`tableSize`, default 65537) is full — weighted, as Envoy does, by letting an endpoint claim in
 * proportion to its weight. A pick is one table read. Against a ring it builds and picks faster
 * and balances more evenly, but moves somewhat more keys when endpoints change.
 */
import type { BalancerDefinition, PickResult } from './balancer.js';
import { hash32 } from './hash.js';
import { checkNumber, rejectUnknown } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import { BoundedLoad, chooseBounded, parseBalanceFactor } from './bounded-load.js';

export interface MaglevOptions {
  tableSize: number;
  balanceFactor: number | undefined;
}

const MAX_TABLE = 5_000_011;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Build the lookup table: slot → endpoint index. */
export function buildMaglevTable(keys: readonly string[], weights: readonly number[], size: number): Uint32Array {
  const n = keys.length;
  const offset = keys.map((k) => hash32(k, 0x9e3779b9) % size);
  const skip = keys.map((k) => (hash32(k, 0x85ebca6b) % (size - 1)) + 1);
  const next = new Float64Array(n);
  const maxW = Math.max(...weights);
  const share = weights.map((w) => w / maxW);
  const credit = new Float64Array(n);
  const table = new Int32Array(size).fill(-1);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i]! += share[i]!;
      while (credit[i]! >= 1 && filled < size) {
        credit[i]! -= 1;
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (table[c]! >= 0) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        table[c] = i;
        next[i]!++;
        filled++;
      }
    }
  }
  return Uint32Array.from(table);
}

export const maglev: BalancerDefinition<MaglevOptions> = {
  usesHash: true,
  create(endpoints, options, deps) {
    const size = options.tableSize;
    // Fill in hash-key order, so the table does not depend on the order discovery listed endpoints in
    // (endpoints take turns, and the earlier one wins a contested slot).
    const order = endpoints.map((_, i) => i).sort((a, b) => (endpoints[a]!.hashKey < endpoints[b]!.hashKey ? -1 : endpoints[a]!.hashKey > endpoints[b]!.hashKey ? 1 : 0));
    const sorted = buildMaglevTable(
      order.map((i) => endpoints[i]!.hashKey),
      order.map((i) => endpoints[i]!.weight),
      size,
    );
    const table = sorted.map((k) => order[k]!);
    const bound = new BoundedLoad(options.balanceFactor, endpoints.map((e) => e.weight));
    const limit = Math.min(size, bound.bounded ? 64 : 16);
    return {
      pick(ctx): PickResult {
        const h = ctx.hash ?? (deps.random() * 0x1_0000_0000) >>> 0;
        const slot = h % size;
        // Neighbouring slots belong to effectively random endpoints (the fill interleaves them).
        const i = chooseBounded(endpoints, bound, ctx, table[slot]!, (step) => table[(slot + step * 7919) % size]!, limit);
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
