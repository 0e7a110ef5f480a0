/**
 * Power of `choiceCount` choices (Mitzenmacher; Envoy's LEAST_REQUEST, tower's p2c): sample
 * `choiceCount` endpoints by weight (each draw other than the best so far) and keep the one whose load per unit of weight is
 * lowest — ties keep the first sampled. Selection is apart from load (tower `load/`): the load
 * function is what makes `least-request` (in-flight) and `peak-ewma` (latency × in-flight) differ.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { BalancerDeps, PickContext, Picker, PickResult } from './balancer.js';
import { AliasTable } from './alias-table.js';
import { sampleDistinct } from './sampling.js';
import { checkNumber, rejectUnknown, type Raw } from '../config/check.js';

export interface ChoiceOptions {
  /** Endpoints sampled per pick, at least 2. @default 2 */
  choiceCount: number;
}

export function parseChoiceOptions(raw: Raw, path: string): ChoiceOptions {
  rejectUnknown(raw, ['choiceCount'], path);
  const choiceCount = raw.choiceCount === undefined ? 2 : checkNumber(raw.choiceCount, `${path}.choiceCount`, { integer: true, min: 2, max: 100 });
  return { choiceCount };
}

/**
 * A picker that samples `choiceCount` endpoints and keeps the least `load(e) / e.weight`.
 * Subclasses supply `load`; the common two-choice path is inlined (one alias draw each, a
 * fallback sampler only when a draw is skipped or repeats).
 */
export abstract class TwoChoicesPicker implements Picker {
  readonly #endpoints: readonly Endpoint[];
  readonly #table: AliasTable;
  readonly #deps: BalancerDeps;
  readonly #choices: number;

  constructor(endpoints: readonly Endpoint[], options: ChoiceOptions, deps: BalancerDeps) {
    this.#endpoints = endpoints;
    this.#table = new AliasTable(endpoints.map((e) => e.weight));
    this.#deps = deps;
    this.#choices = options.choiceCount;
  }

  /** Load of `e` at `now` (lower is better). */
  protected abstract load(e: Endpoint, now: number): number;
  /** Clock reading for `load`, once per pick (`ctx.nowMs` when the context has it). */
  protected abstract clock(ctx: PickContext): number;

  pick(ctx: PickContext): PickResult {
    const eps = this.#endpoints;
    const table = this.#table;
    const random = this.#deps.random;
    let best = eps[table.sample(random())]!;
    if (ctx.skip(best)) {
      const e = sampleDistinct(eps, table, random, ctx, null);
      if (e === undefined) return this.#deps.noEndpoint;
      best = e;
    }
    if (eps.length === 1) return best.picked;
    const now = this.clock(ctx);
    let bestScore = this.load(best, now) / best.weight;
    for (let c = 1; c < this.#choices; c++) {
      let e: Endpoint | undefined = eps[table.sample(random())]!;
      if (e === best || ctx.skip(e)) {
        e = sampleDistinct(eps, table, random, ctx, best);
        if (e === undefined) break;
      }
      const score = this.load(e, now) / e.weight;
      if (score < bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return best.picked;
  }
}
