/**
 * The balancer and discovery registries a mesh is built with: this copy's built-ins, every
 * module-level registration (`registerBalancer`, `registerDiscovery`), then the mesh's own
 * `balancers` / `discoveries` (config). `createMesh` (mesh.ts) takes a fresh pair for each mesh,
 * so what one mesh registers for itself no other mesh sees.
 */
import { BalancerRegistry, type BalancerDefinition, type BalancerFactory } from '../balancers/balancer.js';
import { registerBuiltinBalancers } from '../balancers/builtins.js';
import { DiscoveryRegistry, type DiscoveryDefinition, type DiscoveryFactory } from '../discovery/discovery.js';
import { registerBuiltinDiscovery } from '../discovery/builtins.js';
import { expectObject, join } from '../config/check.js';

/**
 * Module-level registrations (`registerBalancer`, `registerDiscovery`) live on `globalThis` under
 * a `Symbol.for` key, so the ESM and the CJS copy of meshlet loaded in one process share them;
 * each copy keeps its own built-ins.
 */
const kShared = Symbol.for('meshlet.registrations');
interface Shared {
  readonly balancers: Map<string, BalancerFactory<any> | BalancerDefinition<any>>;
  readonly discoveries: Map<string, DiscoveryFactory<any> | DiscoveryDefinition<any>>;
}
const shared: Shared = ((globalThis as Record<symbol, Shared | undefined>)[kShared] ??= { balancers: new Map(), discoveries: new Map() });

let builtins: { balancers: BalancerRegistry; discoveries: DiscoveryRegistry } | null = null;

/** The built-ins of this copy, plus every module-level registration of either copy. */
export function registries(): { balancers: BalancerRegistry; discoveries: DiscoveryRegistry } {
  if (builtins === null) {
    const balancers = new BalancerRegistry();
    registerBuiltinBalancers(balancers);
    const discoveries = new DiscoveryRegistry();
    registerBuiltinDiscovery(discoveries);
    builtins = { balancers, discoveries };
  }
  const balancers = new BalancerRegistry(builtins.balancers);
  for (const [name, def] of shared.balancers) if (!balancers.has(name)) balancers.register(name, def);
  const discoveries = new DiscoveryRegistry(builtins.discoveries);
  for (const [type, def] of shared.discoveries) if (!discoveries.has(type)) discoveries.register(type, def);
  return { balancers, discoveries };
}

/**
 * Register a load-balancing strategy for every mesh created afterwards. The built-ins
 * (`round-robin`, `random`, `least-request`, `peak-ewma`, `prequal`, `ring-hash`, `maglev`,
 * `weighted-round-robin`) are registered
 * the same way.
 * @throws InvalidConfigError when the name is not kebab-case or is taken.
 */
export function registerBalancer<O>(name: string, factory: BalancerFactory<O> | BalancerDefinition<O>): void {
  registries().balancers.register(name, factory); // validates, and refuses a taken name
  shared.balancers.set(name, factory);
}

/**
 * Register a discovery source type for every mesh created afterwards (`static`, `dns`, `dns-srv`
 * and `kubernetes` are built in).
 * @throws InvalidConfigError when the type is not kebab-case or is taken.
 */
export function registerDiscovery<O>(type: string, factory: DiscoveryFactory<O> | DiscoveryDefinition<O>): void {
  registries().discoveries.register(type, factory);
  shared.discoveries.set(type, factory);
}

/** Register a mesh's own `balancers` / `discoveries` (an object by name), naming `path.<name>` in errors. */
export function registerOwn(registry: BalancerRegistry | DiscoveryRegistry, raw: unknown, path: string): void {
  if (raw === undefined) return;
  for (const [name, def] of Object.entries(expectObject(raw, path))) registry.register(name, def as never, join(path, name));
}
