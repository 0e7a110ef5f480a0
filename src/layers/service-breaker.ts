/**
 * The service breaker layer (`serviceBreaker`): one circuit for the whole service, Hystrix-style,
 * on opossum. Each request is one `fire()` whose action passes the call on and settles when the
 * call ends (`call.onEnd`): rejected when it ended with a status ≥ 500 or an error, resolved
 * otherwise. Once the error rate over the rolling window passes `errorThresholdPercentage` (with
 * at least `volumeThreshold` requests in it) opossum opens the circuit and refuses every request
 * — they fail at once with CIRCUIT_OPEN, sending nothing — until `resetTimeoutMs` has passed; then
 * it half-opens, lets one trial request through, and closes on its success or re-opens on its
 * failure. Changes are announced as `circuit` events with `endpoint: '*'`. Off unless set.
 *
 * This is a different circuit from each endpoint's (health/): those eject one bad endpoint and
 * keep the service running on the others; this one stops calling a service that is failing as a
 * whole, so its callers fail fast instead of piling up behind it.
 *
 * What does not count against the service: the caller's own abort (its reason, which is not a
 * MeshError), a request that cannot be sent as given (INVALID_REQUEST), the caller's body failing
 * (REQUEST_BODY_FAILED), and meshlet's own local decisions — a per-endpoint rate limit refusing
 * (RATE_LIMITED), the mesh closing (MESH_CLOSED) and a layer throwing (LAYER_FAILED). opossum has no "ignored" outcome, so these
 * resolve (its window counts every fire); but when the half-open trial ends that way it proved
 * nothing, and the circuit goes back to open for another `resetTimeoutMs` rather than close
 * (Hystrix's `markNonSuccess` for a cancelled trial).
 *
 * Where it sits — after concurrency and ready, before retry:
 *  - before retry, so one request is one fire and its retries run inside it: the circuit judges
 *    what the caller got (Hystrix and Envoy keep retries inside the breaker), a retry is never
 *    refused half-way, and a refusal is not itself retried;
 *  - after concurrency and ready, so requests refused by the concurrency limits (OVERLOADED) or
 *    waiting for discovery's first answer are neither timed by the circuit nor counted against
 *    the service: a local queue or a slow control plane is not the service failing.
 * A refused request holds its concurrency slot only until the refusal, one microtask later.
 *
 * opossum is used through its public API only: `new CircuitBreaker(action, options)`, `fire()`,
 * the `open` / `halfOpen` / `close` events, the `opened` / `halfOpen` getters, `open()` (the
 * inconclusive trial), `CircuitBreaker.isOurError` and `shutdown()` at close. Its own `timeout` is
 * off (a request has its own deadline), and so are its latency percentiles (each failure would
 * sort the window's latencies) and snapshots (nothing listens); what is left is its bucket-rotation
 * interval, unref'd and cleared by `shutdown()`. A fire costs about 1 µs
 * (bench/resilience/service-breaker.bench.ts), and opossum keeps one latency number per request
 * over the window whatever the options (10 000 requests/s → 100 000 numbers over 10 s).
 */
import CircuitBreaker from 'opossum';
import { expectObject, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { CircuitOpenError, isMeshError, MeshClosedError, type MeshErrorCode } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import { statusKind } from '../health/outcome.js';
import type { Call, MeshCall } from '../request/call.js';
import type { Layer, LayerStats, Next } from '../request/layer.js';

/** One circuit for the whole service (opossum). Off unless set. */
export interface ServiceBreakerConfig {
  /** Failure percentage over the rolling window that opens the circuit. @default 50 */
  errorThresholdPercentage?: number;
  /** Requests in the window before the rate is judged. @default 20 */
  volumeThreshold?: number;
  /** Rolling window (10 buckets): ms, or a duration such as `'10s'`. @default 10000 */
  rollingWindowMs?: Duration;
  /** How long the circuit stays open before a trial request may go through (ms, or a duration). @default 30000 */
  resetTimeoutMs?: Duration;
}

export interface ParsedServiceBreaker {
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
  readonly resetTimeoutMs: number;
}

export function parseServiceBreaker(raw: unknown, path: string): ParsedServiceBreaker | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['errorThresholdPercentage', 'volumeThreshold', 'rollingWindowMs', 'resetTimeoutMs'], path);
  return Object.freeze({
    errorThresholdPercentage: optNumber(o, 'errorThresholdPercentage', path, 50, { min: 1, max: 100 }),
    volumeThreshold: optNumber(o, 'volumeThreshold', path, 20, { integer: true, min: 1, max: 1_000_000 }),
    rollingWindowMs: optDurationMs(o, 'rollingWindowMs', path, 10_000, { min: 100, max: 3_600_000 }),
    resetTimeoutMs: optDurationMs(o, 'resetTimeoutMs', path, 30_000, { min: 1, max: 3_600_000 }),
  });
}

/** Errors that say nothing about the service's health (see the header). */
const NEUTRAL: ReadonlySet<MeshErrorCode> = new Set<MeshErrorCode>(['INVALID_REQUEST', 'REQUEST_BODY_FAILED', 'RATE_LIMITED', 'MESH_CLOSED', 'LAYER_FAILED']);

/** How a request's end counts for the service's circuit. */
export function serviceOutcome(call: MeshCall): 'success' | 'failure' | 'neutral' {
  const e = call.error;
  if (e === undefined) return statusKind(call.status) === 'success' ? 'success' : 'failure';
  // Every failure meshlet hands a caller is a MeshError, except the caller's own abort reason.
  if (!isMeshError(e)) return 'neutral';
  return NEUTRAL.has(e.code) ? 'neutral' : 'failure';
}

/** What a fire's action rejects with: the request failed (it already ended; nothing to do). */
const FAILED = new Error('meshlet: the request failed');

type State = 'closed' | 'open' | 'half-open';

export class ServiceBreakerLayer implements Layer {
  readonly name = 'service-breaker';
  readonly #service: string;
  readonly #events: MeshEvents;
  readonly #breaker: CircuitBreaker<[Call, Next], void>;
  #state: State = 'closed';
  #shortCircuited = 0;

  constructor(config: ParsedServiceBreaker, deps: { service: string; events: MeshEvents }) {
    this.#service = deps.service;
    this.#events = deps.events;
    this.#breaker = new CircuitBreaker(this.#run, {
      name: `meshlet:${deps.service}`,
      timeout: false,
      errorThresholdPercentage: config.errorThresholdPercentage,
      volumeThreshold: config.volumeThreshold,
      rollingCountTimeout: config.rollingWindowMs,
      rollingCountBuckets: 10,
      resetTimeout: config.resetTimeoutMs,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.#breaker.on('open', () => this.#moved('open'));
    this.#breaker.on('halfOpen', () => this.#moved('half-open'));
    this.#breaker.on('close', () => this.#moved('closed'));
  }

  handle(call: Call, next: Next): void {
    this.#breaker.fire(call, next).then(undefined, (err: unknown) => this.#rejected(call, err));
  }

  /** opossum's action: pass the call on; settle when it ends. */
  readonly #run = (call: Call, next: Next): Promise<void> => {
    const trial = this.#breaker.halfOpen;
    const ended = new Promise<void>((resolve, reject) => {
      call.onEnd((c) => {
        const outcome = serviceOutcome(c);
        if (outcome === 'failure') return reject(FAILED);
        // An inconclusive trial: back to open for another resetTimeout, rather than close.
        if (outcome === 'neutral' && trial && this.#breaker.halfOpen) this.#breaker.open();
        resolve();
      });
    });
    next(call);
    return ended;
  };

  #rejected(call: Call, err: unknown): void {
    if (err === FAILED) return;
    if (typeof err === 'object' && err !== null && CircuitBreaker.isOurError(err as Error)) {
      // Refused without running: open (or half-open with its trial in flight), or shut down.
      if (this.#breaker.isShutdown) return call.fail(new MeshClosedError());
      this.#shortCircuited++;
      return call.fail(new CircuitOpenError(this.#service, {}, 'service'));
    }
    // The rest of the pipeline threw (a bug): end the call with it rather than lose it.
    call.fail(err instanceof Error ? err : new Error(String(err)));
  }

  #moved(to: State): void {
    const from = this.#state;
    this.#state = to;
    this.#events.emit('circuit', { service: this.#service, endpoint: '*', from, to });
  }

  stats(): Partial<LayerStats> {
    const b = this.#breaker;
    return { shortCircuited: this.#shortCircuited, serviceCircuit: b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed' };
  }

  close(): void {
    this.#breaker.shutdown();
  }
}
