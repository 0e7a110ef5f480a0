/**
 * The targets of a service: the whole service and each subset, every one with the picker its
 * balancer built over the endpoints that may take traffic (routing/target.ts: tiers, panic, which
 * each target decides on its own).
 * Pickers are rebuilt here when endpoints or their health change, never per request. Across a
 * reconfigure a target whose identity (reconfigure.ts `targetKey`) is unchanged is kept, with its
 * picker and balancer state.
 */
import type { Endpoint } from '../core/endpoint.js';
import { NoHealthyEndpointError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { MeshEvents } from '../core/events.js';
import type { BalancerDeps } from '../balancers/balancer.js';
import type { Locality } from '../routing/locality.js';
import { Target } from '../routing/target.js';
import type { ParsedService } from './config.js';
import { targetKey } from './reconfigure.js';

export class ServiceTargets {
  readonly whole: Target;
  readonly subsets: ReadonlyMap<string, Target>;
  /** Every target by its identity (reconfigure.ts `targetKey`), the whole service first. */
  readonly #byKey = new Map<string, Target>();

  /** `keep`: the targets in force, whose unchanged ones carry over. */
  constructor(config: ParsedService, keep?: ServiceTargets) {
    const kept = keep === undefined ? null : keep.#byKey;
    const target = (s: ParsedService['subsets'][number] | null, b: ParsedService['balancer']): Target => {
      const key = targetKey(s, b, config.localityLb);
      const t = kept?.get(key) ?? new Target(s, b, config.localityLb);
      this.#byKey.set(key, t);
      return t;
    };
    this.whole = target(null, config.balancer);
    this.subsets = new Map(config.subsets.map((s) => [s.name, target(s, s.balancer ?? config.balancer)]));
  }

  /** The subset named `subset` (one the config defines), or the whole service for null. */
  get(subset: string | null): Target {
    return subset === null ? this.whole : this.subsets.get(subset)!;
  }

  /**
   * Rebuild every target's picker over `all` endpoints. Each target decides its own panic
   * (routing/target.ts); a `panic` event says when one enters or leaves it.
   */
  rebuild(all: readonly Endpoint[], deps: { service: string; locality: Locality; panicThresholdPercent: number; balancer: BalancerDeps; log: Logger; events: MeshEvents }): void {
    for (const t of this.#byKey.values()) {
      const was = t.panic.active;
      t.rebuild(all, deps.locality, deps.panicThresholdPercent, deps.balancer);
      if (t.buildError !== null) deps.log.warn(`service ${deps.service}${t.subset === null ? '' : `, subset ${t.subset}`}: ${t.buildError}`);
      const p = t.panic;
      if (p.active !== was) deps.events.emit('panic', { service: deps.service, subset: t.subset ?? undefined, active: p.active, available: p.available, total: p.total });
    }
  }
}

/** What a service's balancers are built with: its random source and clock, and the answer when every endpoint was excluded. */
export function balancerDeps(service: string, random: () => number, now: () => number): BalancerDeps {
  const noEndpoint = { type: 'fail' as const, error: new NoHealthyEndpointError(service, 'every endpoint was excluded') };
  return Object.freeze({ service, random, now, noEndpoint });
}
