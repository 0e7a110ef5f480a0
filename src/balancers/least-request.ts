/**
 * `least-request`: Envoy's LEAST_REQUEST with N choices (default 2): of `choiceCount` endpoints
 * sampled by weight, the one with the fewest in-flight requests per unit of weight takes the
 * request. O(choiceCount) per pick, whatever the number of endpoints.
 */
import type { BalancerDefinition } from './balancer.js';
import { TwoChoicesPicker, parseChoiceOptions, type ChoiceOptions } from './two-choices.js';

export const leastRequest: BalancerDefinition<ChoiceOptions> = {
  create: (endpoints, options, deps) => new TwoChoicesPicker(endpoints, options, deps, (e) => e.inFlight, false),
  parseOptions: parseChoiceOptions,
};
