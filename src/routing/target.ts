/**
 * A Target is where a request can be sent: the whole service, or one of its subsets. Each has its
 * own balancer and its own picker, rebuilt whenever the service's endpoints or their health
 * change. Policies that differ per subset (retry, timeout, limits) are kept by their layers.
 *
 * The picker is built in tiers: endpoints grouped by (priority, locality rank) — Envoy's priority
 * levels — each tier a picker of the target's balancer, traffic spread over tiers Envoy's way
 * (tiers.ts); or, with a `distribute` rule, by fixed locality shares. Each target decides its own
 * panic, per level as Envoy: a level in panic is balanced over all its endpoints, available or
 * not (with a `distribute` rule, the rule's localities are one level, flat in panic), and the
 * endpoints it takes that way are listed in `panicking` for the health filter.
 */
import type { BalancerDeps, Picker } from '../balancers/balancer.js';
import type { ParsedBalancer } from '../balancers/config.js';
import type { Endpoint } from '../core/endpoint.js';
import { messageOf, NoHealthyEndpointError } from '../core/errors.js';
import { distributionFor, localityMatches, localityRank, type Locality, type ParsedLocalityLb } from './locality.js';
import { localityLoads, priorityLoads, TieredPicker, type LevelCounts } from './tiers.js';

export class Target {
  /** Subset name, or null for the whole service. */
  readonly subset: string | null;
  readonly labels: Readonly<Record<string, string>> | null;
  readonly balancer: ParsedBalancer;
  readonly #localityLb: ParsedLocalityLb;
  /** Current picker; null when no endpoint of the target may take traffic. */
  picker: Picker | null = null;
  /** Endpoints in the target at the last rebuild. */
  size = 0;
  /** What was wrong with the balancer's factory at the last rebuild (it threw, or returned no picker; the service logs it), else null. */
  buildError: string | null = null;
  /**
   * The unavailable endpoints the picker balances over because their level is in panic (the health
   * filter admits them despite an open circuit), or null when no level of this target is in panic.
   */
  panicking: ReadonlySet<Endpoint> | null = null;
  /** This target's panic state at the last rebuild: in panic (some level is), and its endpoints available and in all. */
  panic: { readonly active: boolean; readonly available: number; readonly total: number } = { active: false, available: 0, total: 0 };

  /**
   * @param subset the subset's name and labels, or null for the whole service
   * @param balancer the target's balancer
   */
  constructor(subset: { readonly name: string; readonly labels: Readonly<Record<string, string>> } | null, balancer: ParsedBalancer, localityLb: ParsedLocalityLb) {
    this.subset = subset?.name ?? null;
    this.labels = subset?.labels ?? null;
    this.balancer = balancer;
    this.#localityLb = localityLb;
  }

  /** True when `e` belongs to this target. */
  includes(e: Endpoint): boolean {
    const labels = this.labels;
    if (labels === null) return true;
    for (const k in labels) if (e.labels[k] !== labels[k]) return false;
    return true;
  }

  /**
   * Rebuild the picker from the service's endpoints.
   * @param panicThresholdPercent the service's panic threshold (0: no panic)
   */
  rebuild(all: readonly Endpoint[], caller: Locality, panicThresholdPercent: number, deps: BalancerDeps): void {
    const mine = this.labels === null ? all : all.filter((e) => this.includes(e));
    this.size = mine.length;
    this.buildError = null; // this rebuild's, or none: an error of an earlier one is not said again
    let available = 0;
    for (const e of mine) if (e.available) available++;
    let panicking: Endpoint[] | null = null;
    /** The endpoints a level balances over: all of them in panic (the unavailable ones noted for admit), else the available ones. */
    const usable = (group: readonly Endpoint[], panic: boolean): Endpoint[] => {
      if (!panic) return group.filter((e) => e.available);
      for (const e of group) if (!e.available) (panicking ??= []).push(e);
      return [...group];
    };
    this.#build(mine, caller, panicThresholdPercent, deps, usable);
    this.panicking = panicking === null ? null : new Set(panicking);
    this.panic = { active: panicking !== null, available, total: mine.length };
  }

  #build(
    mine: readonly Endpoint[],
    caller: Locality,
    threshold: number,
    deps: BalancerDeps,
    usable: (group: readonly Endpoint[], panic: boolean) => Endpoint[],
  ): void {
    if (mine.length === 0) {
      this.picker = null;
      return;
    }
    const create = (endpoints: readonly Endpoint[]): Picker | null => {
      if (endpoints.length === 0) return null;
      // A broken (user) balancer must not break discovery: its requests fail, typed, until it builds.
      const broken = (why: string): Picker => {
        this.buildError = `balancer "${this.balancer.name}" ${why}`;
        const failed = { type: 'fail' as const, error: new NoHealthyEndpointError(deps.service, this.buildError) };
        return { pick: () => failed };
      };
      let picker: unknown;
      try {
        picker = this.balancer.def.create(endpoints, this.balancer.options, deps);
      } catch (err) {
        return broken(`threw while building its picker: ${messageOf(err)}`);
      }
      if (typeof picker === 'object' && picker !== null && typeof (picker as Picker).pick === 'function') return picker as Picker;
      const what = picker instanceof Promise ? 'a Promise (create must build its picker synchronously)' : picker === null ? 'null' : typeof picker === 'object' ? 'an object without a pick method' : typeof picker;
      return broken(`returned ${what} instead of a picker (an object with a pick method)`);
    };
    const counts = (group: readonly Endpoint[]): LevelCounts => {
      let available = 0;
      for (const e of group) if (e.available) available++;
      return { available, total: group.length };
    };

    const lb = this.#localityLb;
    const rule = distributionFor(lb, caller);
    if (rule !== undefined) {
      // Envoy's locality-weighted balancing: the rule's localities (one priority level) by weight.
      const to = rule.to.filter((l) => l.weight > 0);
      const groups = to.map(({ locality }) => mine.filter((e) => localityMatches(locality, e.region, e.zone)));
      const covered = mine.filter((e) => to.some(({ locality }) => localityMatches(locality, e.region, e.zone)));
      if (priorityLoads([counts(covered)], threshold).panic[0]) {
        this.picker = create(usable(covered, true)); // in panic, Envoy balances over all the level's hosts, localities aside
        return;
      }
      const loads = localityLoads(groups.map((g, i) => ({ ...counts(g), weight: to[i]!.weight })));
      const pickers = groups.map((g) => create(usable(g, false)));
      this.picker = pickers.length === 1 ? pickers[0]! : new TieredPicker(pickers, loads, deps.random, deps.noEndpoint);
      return;
    }
    const byKey = new Map<number, Endpoint[]>();
    for (const e of mine) {
      const key = e.priority * 64 + Math.min(63, localityRank(lb, caller, e.region, e.zone));
      let g = byKey.get(key);
      if (!g) byKey.set(key, (g = []));
      g.push(e);
    }
    const levels = [...byKey.entries()].sort((a, b) => a[0] - b[0]).map(([, group]) => group);
    const { loads, panic } = priorityLoads(levels.map(counts), threshold);
    const pickers = levels.map((group, i) => create(usable(group, panic[i]!)));
    this.picker = pickers.length === 1 ? pickers[0]! : new TieredPicker(pickers, loads, deps.random, deps.noEndpoint);
  }
}
