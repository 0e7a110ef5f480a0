/**
 * An Endpoint is one replica of a service: its address, its discovery metadata (weight, labels,
 * locality) and its live numbers (in-flight requests, peak-EWMA latency, counters).
 *
 * Endpoints outlive picker rebuilds: when discovery pushes a new set, an endpoint whose address is
 * unchanged keeps this object — its connection pool, its EWMA and its health — and only its
 * metadata is refreshed (linkerd's `reset_pool` diff). Balancers read the live numbers here; they
 * never keep their own copies.
 */
import type { Dispatcher } from 'undici';
import type { EndpointSpec } from './endpoint-spec.js';

/** Lifecycle of an endpoint inside a service. */
export type EndpointState = 'active' | 'draining' | 'closed';

/** The tagged result a picker returns for this endpoint; one frozen object per endpoint. */
export interface PickedEndpoint {
  readonly type: 'pick';
  readonly endpoint: Endpoint;
}

/** Finagle's penalty for an endpoint with requests in flight but no latency sample yet. */
const UNSAMPLED_PENALTY = 1e6;
/** Least latency a failed request is counted as, in ms. */
const FAILURE_FLOOR_MS = 100;

/** Numbers shared by all endpoints of one service, kept current by the endpoints themselves. */
export interface ServiceLoad {
  /** Requests in flight over all the service's endpoints. */
  inFlight: number;
}

/** Options that govern an endpoint's load estimators. */
export interface EndpointLoadOptions {
  /** Time constant of the latency EWMA's decay, in ms. @default 10000 */
  decayMs: number;
}

export class Endpoint {
  /** Stable identity: the origin, e.g. `http://10.0.0.7:8080`. */
  readonly key: string;
  /** `http:` or `https:`. */
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number;

  /** Relative weight (≥ 1); refreshed on discovery updates. */
  weight: number;
  /** Labels (e.g. `version: v2`); refreshed on discovery updates. */
  labels: Readonly<Record<string, string>>;
  zone: string | undefined;
  region: string | undefined;
  /** Key this endpoint is placed under by hash balancers; defaults to {@link key}. */
  hashKey: string;
  /** Priority group (0 = highest); refreshed on discovery updates. */
  priority: number;

  state: EndpointState = 'active';
  /**
   * False while the endpoint must not take new requests (ejected, open circuit, failing health
   * checks). Pickers skip unavailable endpoints unless the service is in panic mode.
   */
  available = true;

  /** Requests currently in flight to this endpoint. */
  inFlight = 0;
  /** Requests completed (any outcome). */
  requests = 0;
  /** Requests that ended in an error or a 5xx status. */
  failures = 0;

  #ewmaMs = 0;
  #stampMs = 0;
  /** Since when requests have been outstanding with no response: the age of the oldest one, roughly. */
  #busySinceMs = 0;
  readonly #decayMs: number;
  /** The owning service's shared numbers (total in-flight), for bounded-load hashing. */
  readonly serviceLoad: ServiceLoad;

  #dispatcher: Dispatcher | null;
  readonly #makeDispatcher: (() => Dispatcher) | null;
  /** Frozen pick result so a picker never allocates to return this endpoint. */
  readonly picked: PickedEndpoint;

  /**
   * @param dispatcher the connection pool for this endpoint, or a function that makes it on first
   *   use (an undici Pool is ~18 KiB: a large fleet pays only for the endpoints it talks to).
   */
  constructor(spec: EndpointSpec, dispatcher: Dispatcher | (() => Dispatcher), options: EndpointLoadOptions, serviceLoad: ServiceLoad = { inFlight: 0 }) {
    this.key = spec.origin;
    this.protocol = spec.protocol;
    this.hostname = spec.hostname;
    this.port = spec.port;
    this.weight = spec.weight;
    this.labels = spec.labels;
    this.zone = spec.zone;
    this.region = spec.region;
    this.hashKey = spec.hashKey ?? spec.origin;
    this.priority = spec.priority;
    this.#dispatcher = typeof dispatcher === 'function' ? null : dispatcher;
    this.#makeDispatcher = typeof dispatcher === 'function' ? dispatcher : null;
    this.serviceLoad = serviceLoad;
    this.#decayMs = options.decayMs;
    this.picked = Object.freeze({ type: 'pick' as const, endpoint: this });
  }

  /** Refresh discovery metadata; returns true when anything a picker uses changed. */
  update(spec: EndpointSpec): boolean {
    const hashKey = spec.hashKey ?? spec.origin;
    const changed =
      this.weight !== spec.weight ||
      this.zone !== spec.zone ||
      this.region !== spec.region ||
      this.hashKey !== hashKey ||
      this.priority !== spec.priority ||
      !sameLabels(this.labels, spec.labels);
    this.weight = spec.weight;
    this.labels = spec.labels;
    this.zone = spec.zone;
    this.region = spec.region;
    this.hashKey = hashKey;
    this.priority = spec.priority;
    return changed;
  }

  /** The connection pool that carries this endpoint's requests (made on first use). */
  get dispatcher(): Dispatcher {
    return (this.#dispatcher ??= this.#makeDispatcher!());
  }

  /** Close the pool once its requests are done (nothing to do if it was never made). */
  close(): Promise<void> {
    return this.#dispatcher === null ? Promise.resolve() : this.#dispatcher.close();
  }

  /** Abort the pool's requests and close it. */
  destroy(): Promise<void> {
    return this.#dispatcher === null ? Promise.resolve() : this.#dispatcher.destroy();
  }

  /** Record the start of a request at `nowMs` (the clock of {@link observeLatency}). */
  onStart(nowMs: number): void {
    if (this.inFlight === 0) this.#busySinceMs = nowMs;
    this.inFlight++;
    this.serviceLoad.inFlight++;
  }

  /** Record the end of a request (response ended, or failed). */
  onEnd(failed: boolean): void {
    this.inFlight--;
    this.serviceLoad.inFlight--;
    this.requests++;
    if (failed) this.failures++;
  }

  /**
   * Feed a latency sample (time to response headers, ms) observed at `nowMs`.
   * Peak EWMA (Finagle, tower `load/peak_ewma.rs`): a sample above the estimate replaces it at
   * once; a lower one is blended in with a weight that grows with the time since the last sample.
   */
  observeLatency(rttMs: number, nowMs: number): void {
    this.#busySinceMs = nowMs;
    const cost = this.latencyMs(nowMs);
    this.#ewmaMs = rttMs > cost ? rttMs : cost + (rttMs - cost) * (1 - Math.exp(-(nowMs - this.#stampMs) / this.#decayMs));
    this.#stampMs = nowMs;
  }

  /**
   * Feed a failure with no response after `elapsedMs`. A refused connection fails in microseconds;
   * counting that as latency would make a dead endpoint the fastest one. A failure therefore
   * counts as at least twice the current estimate, and at least {@link FAILURE_FLOOR_MS}.
   */
  observeFailure(elapsedMs: number, nowMs: number): void {
    this.observeLatency(Math.max(elapsedMs, 2 * this.latencyMs(nowMs), FAILURE_FLOOR_MS), nowMs);
  }

  /** The peak-EWMA latency estimate in ms at `nowMs`, decayed toward 0 while no sample arrives. */
  latencyMs(nowMs: number): number {
    const ewma = this.#ewmaMs;
    if (ewma === 0) return 0;
    const idle = nowMs - this.#stampMs;
    // Under traffic the last sample is recent: skip exp() while the decay would be under 0.1 %.
    return idle <= this.#decayMs * 0.001 ? ewma : ewma * Math.exp(-idle / this.#decayMs);
  }

  /**
   * Peak-EWMA load: estimated latency × (in-flight + 1). An endpoint with requests in flight but
   * no sample yet scores a large penalty so a fresh endpoint is tried, but not flooded.
   */
  peakEwmaLoad(nowMs: number): number {
    const inFlight = this.inFlight;
    let cost = this.latencyMs(nowMs);
    if (inFlight === 0) return cost;
    if (cost === 0) return UNSAMPLED_PENALTY + inFlight;
    // Requests outstanding longer than the estimate prove it low: an idle slow endpoint whose
    // estimate has decayed gets one probe, not a burst, before its first answer comes back.
    const waiting = nowMs - this.#busySinceMs;
    if (waiting > cost) cost = waiting;
    return cost * (inFlight + 1);
  }

  toString(): string {
    return this.key;
  }
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
