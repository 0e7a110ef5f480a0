/**
 * The discovery contract and its registry.
 *
 * A discovery source pushes *full snapshots* of a service's endpoints; the service diffs them by
 * address (tower's `Change`, linkerd's `reset_pool`). A source that fails to resolve reports the
 * failure with `ctx.error(...)` and pushes nothing: the service keeps its last good set
 * (grpc-js round robin keeps its children when resolution fails). Sources register by type name.
 */
import { describe, type EndpointSpec } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { Registry } from '../core/registry.js';
import { userCode } from '../config/check.js';
import type { Logger } from '../core/log.js';

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

/**
 * Discovery types you register (`registerDiscovery`, `createMesh({ discoveries })`), by type, with
 * their options — declared by module augmentation, so that a misspelled type or option still
 * fails `tsc`: `declare module 'meshletjs' { interface CustomDiscoveries { consul: { service: string } } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface CustomDiscoveries {}

/** `{ type, ...options }` of a discovery type declared in {@link CustomDiscoveries}. */
export type CustomDiscoveryConfig = { [K in keyof CustomDiscoveries]: { type: K } & CustomDiscoveries[K] }[keyof CustomDiscoveries];

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
   * {@link InvalidConfigError} naming a path under `path`. Called whenever a service's config is
   * parsed: at createMesh, and again on each live Istio config change.
   */
  parseOptions?: (raw: Record<string, unknown>, path: string) => O;
  /**
   * The parsed options as config again, for `mesh.toJSON()`: what `parseOptions` turns back into
   * the same options. Without it the parsed options are written as they are. Never return secrets.
   */
  toJSON?: (options: O) => Record<string, unknown>;
  /**
   * The Kubernetes namespace the source finds the service in, if it has one: the service's
   * Kubernetes names in that namespace (`name.<namespace>`, `….svc`, `….svc.cluster.local`)
   * then address it. Called with the parsed options whenever a service's config is parsed (at
   * createMesh, and on each live Istio config change).
   */
  namespace?: (options: O) => string | undefined;
  /**
   * True when the source's endpoints carry their `serviceAccount` (the `kubernetes` discovery,
   * from the pods): `tls: { mode: 'istio-mutual' }` then needs no configured identities.
   */
  serviceAccounts?: (options: O) => boolean;
}

/** A registry of discovery types by name; the module-level one holds the built-ins. */
export class DiscoveryRegistry extends Registry<DiscoveryDefinition<any>> {
  constructor(parent?: DiscoveryRegistry) {
    super('registerDiscovery', 'type', parent);
  }
}

/**
 * Start a source with its type's factory.
 * @throws InvalidConfigError at `path` when the factory throws (the original error is `cause`) or
 *   returns something with no `stop()`
 */
export function startDiscovery<O>(def: DiscoveryDefinition<O>, type: string, options: O, ctx: DiscoveryContext, path: string): DiscoverySource {
  const source: unknown = userCode(path, `starting the "${type}" discovery`, () => def.create(options, ctx));
  if (typeof (source as Partial<DiscoverySource> | null)?.stop !== 'function') {
    throw new InvalidConfigError(path, `the "${type}" discovery's factory returned ${describe(source)}, not a source with a stop() method`);
  }
  return source as DiscoverySource;
}
