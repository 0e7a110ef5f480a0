/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, arXiv 1608.01350;
 * Envoy's `hash_balance_factor`), shared by ring-hash and maglev: an endpoint is over capacity when
 * its in-flight requests reach `balanceFactor/100 × (total in flight + 1) × its weight share`. Hash
 * pickers walk on from the hashed position to the next endpoint that is neither skipped nor over
 * capacity; if every candidate is over capacity, the first one not skipped takes the request.
 * (Envoy probes a hash-seeded shuffle of the hosts instead; in-flight counts differ between
 * processes anyway, so bounded picks cannot agree across clients.)
 */
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from './balancer.js';
import { checkNumber, type Raw } from '../config/check.js';

/** Parse `balanceFactor` (integer ≥ 100; unset = unbounded). */
export function parseBalanceFactor(raw: Raw, path: string): number | undefined {
  return raw.balanceFactor === undefined ? undefined : checkNumber(raw.balanceFactor, `${path}.balanceFactor`, { integer: true, min: 100, max: 100_000 });
}

export class BoundedLoad {
  readonly #factor: number | undefined;
  readonly #share: Float64Array;

  /** `weights[i]` belongs to endpoint index i of the picker. */
  constructor(factor: number | undefined, weights: readonly number[]) {
    this.#factor = factor;
    const total = weights.reduce((a, b) => a + b, 0);
    this.#share = Float64Array.from(weights, (w) => w / total);
  }

  get bounded(): boolean {
    return this.#factor !== undefined;
  }

  /** True when endpoint `i` may take one more request. */
  fits(e: Endpoint, i: number): boolean {
    if (this.#factor === undefined) return true;
    const cap = Math.ceil((this.#factor / 100) * (e.load.service.inFlight + 1) * this.#share[i]!);
    return e.load.inFlight < cap;
  }
}

/** Index of the first endpoint not skipped, or -1: the last resort when every probed point was skipped. */
export function firstNotSkipped(endpoints: readonly Endpoint[], ctx: PickContext): number {
  for (let k = 0; k < endpoints.length; k++) if (!ctx.skip(endpoints[k]!)) return k;
  return -1;
}
