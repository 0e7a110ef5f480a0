/**
 * `least-request`: Envoy's LEAST_REQUEST with N choices (default 2): of `choiceCount` endpoints
 * sampled by weight, the one with the fewest in-flight requests per unit of weight takes the
 * request. O(choiceCount) per pick, whatever the number of endpoints (an O(n) scan only when
 * draws keep landing on endpoints the request skips: sampling.ts).
 */
import type { BalancerDefinition } from './balancer.js';
import type { Endpoint } from '../core/endpoint.js';
import { TwoChoicesPicker, parseChoiceOptions, type ChoiceOptions } from './two-choices.js';

class LeastRequestPicker extends TwoChoicesPicker {
  protected load(e: Endpoint): number {
    return e.load.inFlight;
  }
  protected clock(): number {
    return 0;
  }
}

export const leastRequest: BalancerDefinition<ChoiceOptions> = {
  create: (endpoints, options, deps) => new LeastRequestPicker(endpoints, options, deps),
  parseOptions: parseChoiceOptions,
};
