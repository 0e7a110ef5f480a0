/**
 * The balancer contract and its registry.
 *
 * A balancer is split the way grpc-js splits it: the *factory* runs when the endpoint set (or the
 * config) changes and builds a {@link Picker} — rings, tables, alias arrays computed once — and the
 * picker's synchronous `pick(ctx)` runs per request, reading only the snapshot and the live
 * numbers on each {@link Endpoint}. Built-ins register through the same registry method that
 * `registerBalancer` uses for user code.
 */
import type { Endpoint, PickedEndpoint } from '../core/endpoint.js';
import type { MeshError } from '../core/errors.js';
import { Registry } from '../core/registry.js';

/** What a picker is told about one request. */
export interface PickContext {
  /**
   * The request's 64-bit hash (Envoy's: XXH64 of the `hashOn` value, policies combined as Envoy
   * combines them), for hash balancers: this is its upper 32 bits, an unsigned integer, and
   * {@link hashLow} its lower 32 bits. Undefined when none was computed (the balancer does not hash).
   */
  readonly hash: number | undefined;
  /** The lower 32 bits of the request's 64-bit hash (0 when absent); with {@link hash}, hash × 2³² + hashLow. */
  readonly hashLow?: number;
  /** Attempt number, 0 for the first try (informational: a retry moves on through {@link skip}, the hash balancers too). */
  readonly attempt: number;
  /** True when `endpoint` must not be returned (already tried, or excluded by the caller). */
  skip(endpoint: Endpoint): boolean;
  /**
   * The clock reading (`deps.now()`'s clock) for this pick: the time the attempt being picked
   * for starts at, which the request read anyway. A balancer that needs the time should use it
   * and call `deps.now()` only when it is absent (a context made by hand, e.g. in a test).
   */
  readonly nowMs?: number;
}

/** A pick that found no endpoint. `error` is what the caller sees if nothing else can be tried. */
export interface PickFailed {
  readonly type: 'fail';
  readonly error: MeshError;
}

/** A tagged union: never null, never a throw. */
export type PickResult = PickedEndpoint | PickFailed;

/** The momentary state of a balancer: an immutable snapshot with one synchronous method. */
export interface Picker {
  pick(ctx: PickContext): PickResult;
}

/** What a balancer factory may use besides the endpoints and its options. */
export interface BalancerDeps {
  /** Service name, for error messages. */
  readonly service: string;
  /** Uniform random number in [0, 1); injected so tests are deterministic. */
  readonly random: () => number;
  /** Monotonic clock in ms; injected so tests are deterministic. */
  readonly now: () => number;
  /** The result to return when no endpoint can be picked. */
  readonly noEndpoint: PickFailed;
}

/**
 * Builds a picker for the current endpoint set. Called again on every endpoint, health or config
 * change. The service passes only endpoints that may take traffic (not ejected, not draining — or,
 * for a priority level in panic, all of its endpoints), so a picker need not check health; it must honour `ctx.skip`.
 * `endpoints` is never empty.
 */
export type BalancerFactory<O = Record<string, unknown>> = (
  endpoints: readonly Endpoint[],
  options: O,
  deps: BalancerDeps,
) => Picker;

/** A balancer as registered: the factory plus how to validate its options. */
export interface BalancerDefinition<O = Record<string, unknown>> {
  create: BalancerFactory<O>;
  /**
   * Validate and normalise the options object (the balancer config minus `type`); throw
   * {@link InvalidConfigError} with a path under `path` when it is wrong. Called once, at createMesh.
   * Without it, any options are accepted as given.
   */
  parseOptions?: (raw: Record<string, unknown>, path: string) => O;
  /** The parsed options as config again, for `mesh.toJSON()`; without it they are written as they are. */
  toJSON?: (options: O) => Record<string, unknown>;
  /** True when pickers read `ctx.hash`, so the service computes a hash key per request. */
  usesHash?: boolean;
  /**
   * True when pickers read the load endpoints report about themselves (`endpoint.load.reported`,
   * ORCA headers: load/orca.ts), so attempts read those headers from responses. A service none
   * of whose balancers sets it never looks at them. A function decides from the parsed options.
   */
  usesLoadReports?: boolean | ((options: O) => boolean);
  /**
   * True when pickers read `endpoint.load.recent` (the recent latency by requests in flight:
   * load/recent-latency.ts), so attempts feed it. A service none of whose balancers sets it does
   * not keep it up to date. A function decides from the parsed options.
   */
  usesRecentLatency?: boolean | ((options: O) => boolean);
}

/** A registry of balancers by name. The module-level one holds the built-ins; a mesh extends a copy. */
export class BalancerRegistry extends Registry<BalancerDefinition<any>> {
  constructor(parent?: BalancerRegistry) {
    super('registerBalancer', 'name', parent);
  }
}
