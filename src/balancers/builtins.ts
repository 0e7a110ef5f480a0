/** Registers the built-in balancers; called once, lazily, for the module-level registry. */
import type { BalancerRegistry } from './balancer.js';
import { roundRobin } from './round-robin.js';
import { random } from './random.js';
import { leastRequest } from './least-request.js';
import { peakEwma } from './peak-ewma.js';
import { prequal } from './prequal.js';
import { ringHash } from './ring-hash.js';
import { maglev } from './maglev.js';
import { weightedRoundRobin } from './weighted-round-robin.js';

export function registerBuiltinBalancers(registry: BalancerRegistry): void {
  registry.register('round-robin', roundRobin);
  registry.register('random', random);
  registry.register('least-request', leastRequest);
  registry.register('peak-ewma', peakEwma);
  registry.register('prequal', prequal);
  registry.register('ring-hash', ringHash);
  registry.register('maglev', maglev);
  registry.register('weighted-round-robin', weightedRoundRobin);
}
