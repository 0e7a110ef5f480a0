/**
 * Weighted sampling that honours `ctx.skip`, shared by random and the two-choice balancers: draw
 * from the alias table a few times; if every draw lands on a skipped endpoint (or on `not`), fall
 * back to a linear scan for the first usable one from a random start. Bounded, never loops.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from './balancer.js';
import type { AliasTable } from './alias-table.js';

const DRAWS = 4;

export function sampleDistinct(
  endpoints: readonly Endpoint[],
  table: AliasTable,
  random: () => number,
  ctx: PickContext,
  not: Endpoint | null,
): Endpoint | undefined {
  for (let i = 0; i < DRAWS; i++) {
    const e = endpoints[table.sample(random())]!;
    if (e !== not && !ctx.skip(e)) return e;
  }
  const n = endpoints.length;
  const start = Math.floor(random() * n);
  for (let k = 0; k < n; k++) {
    const e = endpoints[(start + k) % n]!;
    if (e !== not && !ctx.skip(e)) return e;
  }
  return undefined;
}
