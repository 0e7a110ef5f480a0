/**
 * `peak-ewma`: two choices scored by peak-EWMA cost, as Finagle's and Linkerd's balancers do
 * (tower `load/peak_ewma.rs`): cost = latency estimate × (in-flight + 1). The estimate jumps up at
 * once on a slow response and decays back with a 10 s time constant, so a slow endpoint is avoided
 * at once, and one that recovers is tried again as its estimate decays even without traffic. An
 * endpoint with requests in flight but no sample yet scores a large penalty: fresh endpoints are
 * tried, not flooded. The estimator lives on each Endpoint; this file only selects.
 */
import type { BalancerDefinition, BalancerDeps } from './balancer.js';
import type { Endpoint } from '../core/endpoint.js';
import { TwoChoicesPicker, parseChoiceOptions, type ChoiceOptions } from './two-choices.js';

class PeakEwmaPicker extends TwoChoicesPicker {
  readonly #now: () => number;
  constructor(endpoints: readonly Endpoint[], options: ChoiceOptions, deps: BalancerDeps) {
    super(endpoints, options, deps);
    this.#now = deps.now;
  }
  protected load(e: Endpoint, now: number): number {
    return e.peakEwmaLoad(now);
  }
  protected clock(): number {
    return this.#now();
  }
}

export const peakEwma: BalancerDefinition<ChoiceOptions> = {
  create: (endpoints, options, deps) => new PeakEwmaPicker(endpoints, options, deps),
  parseOptions: parseChoiceOptions,
};
