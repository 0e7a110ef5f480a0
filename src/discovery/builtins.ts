/** Registers the built-in discovery types; called once, lazily, for the module-level registry. */
import type { DiscoveryRegistry } from './discovery.js';
import { staticDiscovery } from './static.js';
import { dnsDiscovery } from './dns.js';
import { dnsSrvDiscovery } from './dns-srv.js';
import { kubernetesDiscovery } from './kubernetes.js';

export function registerBuiltinDiscovery(registry: DiscoveryRegistry): void {
  registry.register('static', staticDiscovery);
  registry.register('dns', dnsDiscovery);
  registry.register('dns-srv', dnsSrvDiscovery);
  registry.register('kubernetes', kubernetesDiscovery);
}
