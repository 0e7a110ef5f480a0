/**
 * Tiers: endpoints grouped by preference (priority, then locality rank), each group with its own
 * picker, and a share of traffic per group computed Envoy's way (priority levels with an
 * overprovisioning factor of 1.4, `priority.rst`): a tier's health is
 * min(100, 1.4 × 100 × available / total); tiers take load in order up to their health, and the
 * shares are normalised when total health is below 100. So the local tier keeps all traffic until
 * fewer than ~72 % of it is available, then sheds gradually — never all-or-nothing.
 *
 * With fixed shares (`distribute`), tiers get their configured weight instead, and a tier with no
 * available endpoint gives its share to the others.
 *
 * A request with a hash (hash balancers) chooses its tier by `hash mod 100` against the
 * cumulative shares, as Envoy's hash balancers choose a priority, so a key keeps its tier (and a
 * sidecar's choice) while the shares stand; other requests draw at random.
 */
import type { Picker, PickContext, PickResult, PickFailed } from '../balancers/balancer.js';
import { mod64 } from '../balancers/xxhash64.js';

export const OVERPROVISIONING = 1.4;

/** One tier as built: its picker (null when none of it is available), and its counts. */
export interface Tier {
  readonly picker: Picker | null;
  readonly available: number;
  readonly total: number;
  /** Fixed share (distribute), or undefined for health-based spill-over. */
  readonly weight?: number;
}

/** Percent of traffic per tier (sums to 100 unless no tier has an available endpoint). */
export function tierLoads(tiers: readonly Tier[]): number[] {
  if (tiers.length > 0 && tiers[0]!.weight !== undefined) {
    const live = tiers.map((t) => (t.available > 0 ? t.weight! : 0));
    const sum = live.reduce((a, b) => a + b, 0);
    return sum === 0 ? live : live.map((w) => (w * 100) / sum);
  }
  const health = tiers.map((t) => (t.total === 0 ? 0 : Math.min(100, (OVERPROVISIONING * 100 * t.available) / t.total)));
  const sum = health.reduce((a, b) => a + b, 0);
  if (sum === 0) return health;
  const norm = Math.min(100, sum);
  let remaining = 100;
  return health.map((h) => {
    const load = Math.min(remaining, (h * 100) / norm);
    remaining -= load;
    return load;
  });
}

/** Picks a tier by its share, then asks its picker; falls through to the next tiers if that fails. */
export class TieredPicker implements Picker {
  readonly #pickers: (Picker | null)[];
  readonly #cumulative: Float64Array;
  readonly #random: () => number;
  readonly #fail: PickFailed;

  constructor(tiers: readonly Tier[], random: () => number, fail: PickFailed) {
    const loads = tierLoads(tiers);
    this.#pickers = tiers.map((t) => t.picker);
    this.#cumulative = new Float64Array(loads.length);
    let acc = 0;
    loads.forEach((l, i) => (this.#cumulative[i] = acc += l));
    this.#random = random;
    this.#fail = fail;
  }

  pick(ctx: PickContext): PickResult {
    const n = this.#pickers.length;
    const r = ctx.hash === undefined ? this.#random() * this.#cumulative[n - 1]! : mod64(ctx.hash, ctx.hashLow ?? 0, 100);
    let start = 0;
    while (start < n - 1 && r >= this.#cumulative[start]!) start++;
    for (let k = 0; k < n; k++) {
      const p = this.#pickers[(start + k) % n];
      if (p == null) continue;
      const result = p.pick(ctx);
      if (result.type === 'pick') return result;
    }
    return this.#fail;
  }
}
