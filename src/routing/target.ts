/**
 * A Target is where a request can be sent: the whole service, or one of its subsets. Each has its
 * own balancer and its own picker, rebuilt whenever the service's endpoints or their health
 * change. Policies that differ per subset (retry, timeout, limits) are kept by their layers.
 *
 * The picker is built in tiers: endpoints grouped by (priority, locality rank), each tier a picker
 * of the target's balancer, traffic spread over tiers Envoy's way (tiers.ts); or, with a
 * `distribute` rule, by fixed locality shares. In panic (too few endpoints available) one flat
 * picker over all of them (without a `distribute` rule; with one, its shares over all of them).
 */
import type { BalancerDeps, Picker } from '../balancers/balancer.js';
import type { ParsedBalancer } from '../balancers/config.js';
import type { Endpoint } from '../core/endpoint.js';
import { messageOf, NoHealthyEndpointError } from '../core/errors.js';
import { distributionFor, localityMatches, localityRank, type Locality, type ParsedLocalityLb } from './locality.js';
import { TieredPicker, type Tier } from './tiers.js';

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
   * @param eligible the health model's choice among candidates: the available ones, or all (panic).
   */
  rebuild(
    all: readonly Endpoint[],
    caller: Locality,
    eligible: (candidates: readonly Endpoint[]) => readonly Endpoint[],
    deps: BalancerDeps,
  ): void {
    const mine = this.labels === null ? all : all.filter((e) => this.includes(e));
    this.size = mine.length;
    this.buildError = null; // this rebuild's, or none: an error of an earlier one is not said again
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
    const chosen = eligible(mine);
    const panic = chosen.length === mine.length && mine.some((e) => !e.available);
    const usable = (group: readonly Endpoint[]): Endpoint[] => (panic ? [...group] : group.filter((e) => e.available));

    const lb = this.#localityLb;
    const rule = distributionFor(lb, caller);
    let tiers: Tier[];
    if (rule !== undefined) {
      tiers = rule.to.map(({ locality, weight }) => {
        const group = mine.filter((e) => localityMatches(locality, e.region, e.zone));
        const avail = usable(group);
        return { picker: create(avail), available: avail.length, total: group.length, weight };
      });
    } else {
      const groups = new Map<number, Endpoint[]>();
      for (const e of mine) {
        const key = e.priority * 64 + Math.min(63, localityRank(lb, caller, e.region, e.zone));
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push(e);
      }
      if (groups.size === 1 || panic) {
        this.picker = create(usable(mine));
        return;
      }
      tiers = [...groups.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([, group]) => {
          const avail = usable(group);
          return { picker: create(avail), available: avail.length, total: group.length };
        });
    }
    this.picker = tiers.length === 1 ? tiers[0]!.picker : new TieredPicker(tiers, deps.random, deps.noEndpoint);
  }
}
