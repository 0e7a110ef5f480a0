/**
 * `random`: weighted random (Envoy's RANDOM, with weights). An alias table makes each pick O(1)
 * (an O(n) scan only when draws keep landing on endpoints the request skips: sampling.ts).
 * Envoy's docs note it does better than round robin without active health checks: there is no bias
 * toward the endpoint after a failing one.
 */
import type { BalancerDefinition, PickResult } from './balancer.js';
import { rejectUnknown } from '../config/check.js';
import { AliasTable } from './alias-table.js';
import { sampleDistinct } from './sampling.js';

export const random: BalancerDefinition<Record<string, never>> = {
  create(endpoints, _options, deps) {
    const table = new AliasTable(endpoints.map((e) => e.weight));
    const rnd = deps.random;
    const fail = deps.noEndpoint;
    return {
      pick(ctx): PickResult {
        const e = sampleDistinct(endpoints, table, rnd, ctx, null);
        return e === undefined ? fail : e.picked;
      },
    };
  },
  parseOptions(raw, path) {
    rejectUnknown(raw, [], path);
    return {};
  },
};
