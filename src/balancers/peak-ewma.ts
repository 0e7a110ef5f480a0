/**
 * `peak-ewma`: two choices scored by peak-EWMA cost, as Finagle's and Linkerd's balancers do
 * (tower `load/peak_ewma.rs`): cost = latency estimate × (in-flight + 1). The estimate jumps up at
 * once on a slow response and decays back with time constant `decayMs`, so a slow endpoint is
 * avoided at once, and one that recovers is tried again as its estimate decays even without
 * traffic. An endpoint with requests in flight but no sample yet scores a large penalty: fresh
 * endpoints are tried, not flooded. The estimator lives on each Endpoint; this file only selects.
 *
 * `decayMs` defaults to 300 ms, not Finagle's 10 s: measured here (bench/tail-latency.mjs), a 10 s
 * memory keeps every fast endpoint at its worst recent spike (a GC pause, a slow request) for
 * seconds, so they look no better than a truly slow one and it keeps a 2 % share — which sets the
 * p99. 300 ms forgets spikes within a second; a truly slow endpoint still re-measures slow at once.
 */
import type { BalancerDefinition, BalancerDeps, PickContext } from './balancer.js';
import type { Endpoint } from '../core/endpoint.js';
import { TwoChoicesPicker, parseChoiceOptions, type ChoiceOptions } from './two-choices.js';
import { checkDuration } from '../config/duration.js';

/** The default time constant of the latency EWMA is the load's own (load/endpoint-load.ts). */
import { DEFAULT_DECAY_MS } from '../load/endpoint-load.js';

export interface PeakEwmaOptions extends ChoiceOptions {
  /** Time constant of the latency estimate's decay, ms. @default 300 */
  decayMs: number;
}

class PeakEwmaPicker extends TwoChoicesPicker {
  readonly #now: () => number;
  constructor(endpoints: readonly Endpoint[], options: ChoiceOptions, deps: BalancerDeps) {
    super(endpoints, options, deps);
    this.#now = deps.now;
  }
  protected load(e: Endpoint, now: number): number {
    return e.load.peakEwma(now);
  }
  protected clock(ctx: PickContext): number {
    const t = ctx.nowMs;
    return t === undefined ? this.#now() : t;
  }
}

export const peakEwma: BalancerDefinition<PeakEwmaOptions> = {
  create: (endpoints, options, deps) => new PeakEwmaPicker(endpoints, options, deps),
  parseOptions(raw, path) {
    const { decayMs, ...rest } = raw;
    const decay = decayMs === undefined ? DEFAULT_DECAY_MS : checkDuration(decayMs, `${path}.decayMs`, { min: 1, max: 600_000 });
    return { ...parseChoiceOptions(rest, path), decayMs: decay };
  },
};
