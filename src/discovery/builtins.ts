/** Registers the built-in discovery types; called once, lazily, for the module-level registry. */
import type { CustomDiscoveryConfig, DiscoveryRegistry } from './discovery.js';
import { staticDiscovery, type StaticDiscoveryConfig } from './static.js';
import { dnsDiscovery, type DnsDiscoveryConfig } from './dns.js';
import { dnsSrvDiscovery, type DnsSrvDiscoveryConfig } from './dns-srv.js';
import { kubernetesDiscovery, type KubernetesDiscoveryConfig } from './kubernetes.js';

export type { StaticDiscoveryConfig, DnsDiscoveryConfig, DnsSrvDiscoveryConfig, KubernetesDiscoveryConfig };
export type { DnsCommonConfig } from './dns-common.js';
export type { Duration } from '../config/duration.js';

/**
 * The config of a built-in discovery source, discriminated by `type`: a misspelled option or a
 * wrong type fails `tsc` where the mesh config uses this union.
 */
export type BuiltinDiscoveryConfig = StaticDiscoveryConfig | DnsDiscoveryConfig | DnsSrvDiscoveryConfig | KubernetesDiscoveryConfig;

/** A service's discovery: a built-in source, or one declared in `CustomDiscoveries`. */
export type DiscoveryConfig = BuiltinDiscoveryConfig | CustomDiscoveryConfig;

export function registerBuiltinDiscovery(registry: DiscoveryRegistry): void {
  registry.register('static', staticDiscovery);
  registry.register('dns', dnsDiscovery);
  registry.register('dns-srv', dnsSrvDiscovery);
  registry.register('kubernetes', kubernetesDiscovery);
}
