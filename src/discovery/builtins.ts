/** Registers the built-in discovery types; called once, lazily, for the module-level registry. */
import type { DiscoveryRegistry } from './discovery.js';
import { staticDiscovery } from './static.js';

export function registerBuiltinDiscovery(registry: DiscoveryRegistry): void {
  registry.register('static', staticDiscovery);
}
