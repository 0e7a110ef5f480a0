/**
 * Power of `choiceCount` choices (Mitzenmacher; Envoy's LEAST_REQUEST, tower's p2c): sample
 * `choiceCount` distinct endpoints by weight and keep the one whose load per unit of weight is
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

/** A picker that samples `choiceCount` endpoints and keeps the least `load(e) / e.weight`. */
export class TwoChoicesPicker implements Picker {
  readonly #endpoints: readonly Endpoint[];
  readonly #table: AliasTable;
  readonly #deps: BalancerDeps;
  readonly #choices: number;
  readonly #load: (e: Endpoint, now: number) => number;
  readonly #needsClock: boolean;

  constructor(endpoints: readonly Endpoint[], options: ChoiceOptions, deps: BalancerDeps, load: (e: Endpoint, now: number) => number, needsClock: boolean) {
    this.#endpoints = endpoints;
    this.#table = new AliasTable(endpoints.map((e) => e.weight));
    this.#deps = deps;
    this.#choices = options.choiceCount;
    this.#load = load;
    this.#needsClock = needsClock;
  }

  pick(ctx: PickContext): PickResult {
    const eps = this.#endpoints;
    const random = this.#deps.random;
    const first = sampleDistinct(eps, this.#table, random, ctx, null);
    if (first === undefined) return this.#deps.noEndpoint;
    if (eps.length === 1) return first.picked;
    const now = this.#needsClock ? this.#deps.now() : 0;
    let best = first;
    let bestScore = this.#load(first, now) / first.weight;
    for (let c = 1; c < this.#choices; c++) {
      const e = sampleDistinct(eps, this.#table, random, ctx, best);
      if (e === undefined) break;
      const score = this.#load(e, now) / e.weight;
      if (score < bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return best.picked;
  }
}
