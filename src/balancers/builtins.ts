/** Registers the built-in balancers; called once, lazily, for the module-level registry. */
import type { BalancerRegistry } from './balancer.js';
import { roundRobin } from './round-robin.js';

export function registerBuiltinBalancers(registry: BalancerRegistry): void {
  registry.register('round-robin', roundRobin);
}
