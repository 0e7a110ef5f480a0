/**
 * Tiers: endpoints grouped by preference (priority, then locality rank), each group with its own
 * picker, and a share of traffic per group computed as Envoy computes priority loads and panic
 * (`load_balancer_impl.cc`, `priority.rst`, `panic_threshold.rst`; reference §1.5), in Envoy's
 * integer percentages:
 *  - a level's health is min(100, ⌊140 × available / total⌋) (overprovisioning factor 1.4);
 *  - the normalized total health is min(100, Σ health); levels take load in order, each
 *    ⌊health × 100 / normalized total⌋ of what is left, the rounding remainder to the first level
 *    with any health. So the first level keeps all traffic until fewer than ~72 % of it is
 *    available, then sheds gradually — never all-or-nothing;
 *  - a level is in panic when the normalized total health is below 100 and its own available
 *    share is below the panic threshold: it is then balanced over all its endpoints, healthy or
 *    not. A level's panic leaves the other levels alone; while the healthy levels can take
 *    everything (total health 100) no level panics;
 *  - when every level is in panic, the load follows the levels' sizes (Envoy's total panic); with
 *    the panic threshold 0 and nothing available, the first level gets it all (and fails it).
 *
 * With fixed locality shares (`distribute`, Envoy's locality-weighted balancing), the localities
 * are one level, whose panic is decided as above; out of panic a locality's share is its weight ×
 * min(1, 1.4 × available / total) (Envoy's effective locality weight), normalised.
 *
 * A request with a hash (hash balancers) chooses its tier by `hash mod 100` against the
 * cumulative shares, as Envoy's hash balancers choose a priority, so a key keeps its tier (and a
 * sidecar's choice) while the shares stand; other requests draw at random.
 *
 * All of this is computed when the pickers are rebuilt (endpoints or health changed), never per request.
 */
import type { Picker, PickContext, PickResult, PickFailed } from '../balancers/balancer.js';
import { mod64 } from '../balancers/xxhash64.js';

/** Envoy's default overprovisioning factor, in percent. */
export const OVERPROVISIONING_PERCENT = 140;

/** One level's counts: endpoints available, and in all. */
export interface LevelCounts {
  readonly available: number;
  readonly total: number;
}

/** What {@link priorityLoads} decides: the percent of traffic per level (sums to 100), and which levels are in panic. */
export interface PriorityLoads {
  readonly loads: number[];
  readonly panic: boolean[];
}

/** Health of a level, Envoy's: min(100, ⌊140 × available / total⌋), 0 for an empty level. */
function health(l: LevelCounts): number {
  return l.total === 0 ? 0 : Math.min(100, Math.floor((OVERPROVISIONING_PERCENT * l.available) / l.total));
}

/** True when `l`'s available share is below the panic threshold (0: never). */
function belowThreshold(l: LevelCounts, thresholdPercent: number): boolean {
  return (l.total === 0 ? 0 : (100 * l.available) / l.total) < thresholdPercent;
}

/** Envoy's per-priority loads and panic flags for `levels` in order of preference, given the panic threshold (percent). */
export function priorityLoads(levels: readonly LevelCounts[], thresholdPercent: number): PriorityLoads {
  const n = levels.length;
  const loads = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  if (n === 0) return { loads, panic };
  const healths = levels.map(health);
  const normalized = Math.min(100, healths.reduce((a, b) => a + b, 0));
  const threshold = Math.min(100, thresholdPercent);
  if (normalized === 0 && threshold <= 0) {
    loads[0] = 100; // nothing available and panic off: the first level, which will fail it
    return { loads, panic };
  }
  if (normalized > 0) {
    let remaining = 100;
    let first = -1;
    for (let i = 0; i < n; i++) {
      if (first < 0 && healths[i]! > 0) first = i;
      loads[i] = Math.min(remaining, Math.floor((healths[i]! * 100) / normalized));
      remaining -= loads[i]!;
    }
    if (remaining > 0) loads[first]! += remaining;
  }
  if (normalized < 100) for (let i = 0; i < n; i++) panic[i] = belowThreshold(levels[i]!, threshold);
  if (panic.every(Boolean)) {
    // Total panic: load by the levels' sizes, the remainder to the first non-empty one.
    const hosts = levels.reduce((a, l) => a + l.total, 0);
    if (hosts === 0) {
      loads.fill(0);
      loads[0] = 100;
      return { loads, panic };
    }
    let remaining = 100;
    let first = -1;
    for (let i = 0; i < n; i++) {
      if (first < 0 && levels[i]!.total > 0) first = i;
      loads[i] = Math.floor((100 * levels[i]!.total) / hosts);
      remaining -= loads[i]!;
    }
    loads[first]! += remaining;
  }
  return { loads, panic };
}

/**
 * Shares of fixed-weight localities (`distribute`) out of panic: weight × min(1, 1.4 × available /
 * total) each (Envoy's effective locality weight), as percents; all 0 when none is available.
 */
export function localityLoads(localities: readonly (LevelCounts & { readonly weight: number })[]): number[] {
  const effective = localities.map((l) => (l.total === 0 ? 0 : l.weight * Math.min(1, (OVERPROVISIONING_PERCENT * l.available) / (100 * l.total))));
  const sum = effective.reduce((a, b) => a + b, 0);
  return sum === 0 ? effective : effective.map((w) => (w * 100) / sum);
}

/** Picks a tier by its share, then asks its picker; falls through to the next tiers if that fails. */
export class TieredPicker implements Picker {
  readonly #pickers: (Picker | null)[];
  readonly #cumulative: Float64Array;
  readonly #random: () => number;
  readonly #fail: PickFailed;

  /** `pickers[i]` (null: nothing to pick in that tier) takes `loads[i]` percent of the requests. */
  constructor(pickers: readonly (Picker | null)[], loads: readonly number[], random: () => number, fail: PickFailed) {
    this.#pickers = [...pickers];
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
