/**
 * The discovery contract and its registry.
 *
 * A discovery source pushes *full snapshots* of a service's endpoints; the service diffs them by
 * address (tower's `Change`, linkerd's `reset_pool`). A source that fails to resolve reports the
 * failure with `ctx.error(...)` and pushes nothing: the service keeps its last good set
 * (grpc-js round robin keeps its children when resolution fails). Sources register by type name.
 */
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import type { Logger } from '../observability/log.js';

/** What a discovery source is given when it starts. */
export interface DiscoveryContext {
  /** Name of the service being discovered. */
  readonly service: string;
  /** Push a complete snapshot of the service's endpoints. An empty array means "no endpoints". */
  update(endpoints: readonly EndpointSpec[]): void;
  /** Report a failed resolution or a malformed answer: logged and counted; the last good set stays. */
  error(err: Error): void;
  /** Aborted when the source must stop (mesh closed). */
  readonly signal: AbortSignal;
  /** Where the source logs. */
  readonly log: Logger;
  /** Monotonic clock in ms; injected so tests are deterministic. */
  readonly now: () => number;
  /** Uniform random in [0, 1), for jitter; injected so tests are deterministic. */
  readonly random: () => number;
}

/** A running discovery source. */
export interface DiscoverySource {
  /** Stop resolving; release timers and connections. */
  stop(): void | Promise<void>;
}

/** Starts a source for one service. */
export type DiscoveryFactory<O = Record<string, unknown>> = (options: O, ctx: DiscoveryContext) => DiscoverySource;

/** A discovery type as registered: the factory plus how to validate its options. */
export interface DiscoveryDefinition<O = Record<string, unknown>> {
  create: DiscoveryFactory<O>;
  /**
   * Validate and normalise the discovery options (the config minus `type`); throw
   * {@link InvalidConfigError} naming a path under `path`. Called once, at createMesh.
   */
  parseOptions?: (raw: Record<string, unknown>, path: string) => O;
}

/** A registry of discovery types by name; the module-level one holds the built-ins. */
export class DiscoveryRegistry {
  readonly #byType = new Map<string, DiscoveryDefinition<any>>();

  constructor(parent?: DiscoveryRegistry) {
    if (parent) for (const [k, v] of parent.#byType) this.#byType.set(k, v);
  }

  /**
   * Register a discovery type under a kebab-case name.
   * @throws InvalidConfigError when the name is malformed or already taken.
   */
  register<O>(type: string, factory: DiscoveryFactory<O> | DiscoveryDefinition<O>): void {
    if (!/^[a-z][a-z0-9-]*$/.test(type)) {
      throw new InvalidConfigError('registerDiscovery.type', `expected a kebab-case name, got ${JSON.stringify(type)}`);
    }
    if (this.#byType.has(type)) {
      throw new InvalidConfigError('registerDiscovery.type', `a discovery type named "${type}" is already registered`);
    }
    const def = typeof factory === 'function' ? { create: factory } : factory;
    if (typeof def?.create !== 'function') {
      throw new InvalidConfigError('registerDiscovery.factory', 'expected a function or an object with a create function');
    }
    this.#byType.set(type, def);
  }

  get(type: string): DiscoveryDefinition<any> | undefined {
    return this.#byType.get(type);
  }

  names(): string[] {
    return [...this.#byType.keys()];
  }
}
