/**
 * Adaptive concurrency: the service's in-flight limit (`limits.maxRequests`, concurrency-limit.ts)
 * learnt from the upstream's latency, as Netflix concurrency-limits does it in a client and
 * Envoy's adaptive concurrency filter in a proxy. When the upstream slows down because its queues
 * grow, the limit drops, and requests over it wait in the service's queue or fail fast with
 * OVERLOADED (`maxPendingRequests`, `maxQueueTimeMs`) instead of queueing at the upstream; when
 * the upstream recovers, latency falls and the limit grows back.
 *
 * Samples: every attempt's time to response headers (the service's observers, as outlier
 * detection sees it), with the service's requests in flight at that moment. A timeout, a 503 or a
 * 429 is a sample flagged as a drop; a failure without a response (refused, reset, cancelled)
 * says nothing about latency and is left out. Samples are gathered in windows of at least
 * `windowMs` and 10 samples, as Netflix's WindowedLimit does (Envoy's filter updates every
 * 100 ms): the algorithm sees each window's mean latency, its most requests in flight, and
 * whether any sample was a drop. Gradient2 gets 100 ms windows by default: per sample, its
 * long-term average — 600 updates — is a few seconds of memory at a few hundred requests a
 * second, and sustained overload soon reads as the new normal (measured:
 * bench/adaptive-concurrency.mjs). Vegas compares with the least latency seen, which does not
 * drift, and moves one log10 step per update: it updates on every sample by default, as in
 * Netflix's library, or it would follow a halving over tens of seconds.
 * Algorithms: gradient2-limit.ts (the default) and vegas-limit.ts. The effective limit is the
 * algorithm's, rounded down, never above `maxRequests`.
 *
 * Visible as `concurrencyLimit` in `mesh.stats()` and as `concurrency-limit` events, emitted when
 * the limit in force (the algorithm's, capped by `maxRequests`) moved by at least 10 % (and at
 * least 1) since the last one: an algorithm moving above the cap moves nothing, and says nothing.
 */
import type { MeshEvents } from '../core/events.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import type { Logger } from '../core/log.js';
import { expectObject, join, optEnum, optNumber, rejectUnknown, maybeNumber } from '../config/check.js';
import { InvalidConfigError } from '../core/errors.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';
import { Gradient2Limit, type Gradient2Options } from './gradient2-limit.js';
import { VegasLimit, type VegasOptions } from './vegas-limit.js';

interface CommonConfig {
  /** Limit to start from. @default 20 */
  initialLimit?: number;
  /** The limit never goes below this. @default 20 (gradient2), 1 (vegas) */
  minLimit?: number;
  /** The limit never goes above this (nor above `maxRequests`). @default 200 (gradient2), 1000 (vegas) */
  maxLimit?: number;
  /** Samples are gathered this long (and at least 10 of them) before each update; 0 = update on every sample. @default 100 (gradient2), 0 (vegas) */
  windowMs?: Duration;
}

/** Netflix's Gradient2: follows long-term latency / latest latency. Suits clients (Netflix's advice). */
export interface Gradient2Config extends CommonConfig {
  /** @default 'gradient2' */
  algorithm?: 'gradient2';
  /** Share of each new estimate taken in, (0, 1]. @default 0.2 */
  smoothing?: number;
  /** Growth allowed per update while latency stays within the tolerance. @default 4 */
  queueSize?: number;
  /** Latency may grow by this factor over the long-term average before the limit drops, ≥ 1. @default 1.5 */
  rttTolerance?: number;
  /** Samples the long-term latency averages over. @default 600 */
  longWindow?: number;
}

/** TCP Vegas as Netflix adapts it: keeps the estimated queue between alpha and beta. */
export interface VegasConfig extends CommonConfig {
  algorithm: 'vegas';
  /** Share of each new estimate taken in, (0, 1]. @default 1 */
  smoothing?: number;
  /** Queue below which the limit grows. @default 3 × log10(limit) */
  alpha?: number;
  /** Queue above which the limit shrinks. @default 6 × log10(limit) */
  beta?: number;
  /** The no-load latency is measured again every probeMultiplier × limit samples (jittered). @default 30 */
  probeMultiplier?: number;
}

/** `limits.adaptive`: how the service's in-flight limit is learnt. */
export type AdaptiveLimitConfig = Gradient2Config | VegasConfig;

export type ParsedAdaptive = { readonly windowMs: number } & (({ readonly algorithm: 'gradient2' } & Gradient2Options) | ({ readonly algorithm: 'vegas' } & VegasOptions));

const COMMON = ['algorithm', 'initialLimit', 'minLimit', 'maxLimit', 'smoothing', 'windowMs'];
/** Samples a window needs besides its time (Netflix WindowedLimit's windowSize). */
const WINDOW_SAMPLES = 10;

export function parseAdaptiveConfig(raw: unknown, path: string): ParsedAdaptive {
  const o = expectObject(raw, path);
  const algorithm = optEnum(o, 'algorithm', path, ['gradient2', 'vegas'], 'gradient2');
  const gradient2 = algorithm === 'gradient2';
  rejectUnknown(o, gradient2 ? [...COMMON, 'queueSize', 'rttTolerance', 'longWindow'] : [...COMMON, 'alpha', 'beta', 'probeMultiplier'], path);
  const int = { integer: true, min: 1, max: 10_000_000 };
  const minLimit = optNumber(o, 'minLimit', path, gradient2 ? 20 : 1, int);
  const maxLimit = optNumber(o, 'maxLimit', path, gradient2 ? 200 : 1000, int);
  const initialLimit = optNumber(o, 'initialLimit', path, Math.min(Math.max(20, minLimit), maxLimit), int);
  if (minLimit > maxLimit) throw new InvalidConfigError(join(path, 'minLimit'), `${minLimit} is above maxLimit (${maxLimit})`);
  if (initialLimit < minLimit || initialLimit > maxLimit) throw new InvalidConfigError(join(path, 'initialLimit'), `expected a limit between minLimit (${minLimit}) and maxLimit (${maxLimit}), got ${initialLimit}`);
  const smoothing = optNumber(o, 'smoothing', path, gradient2 ? 0.2 : 1, { above: 0, max: 1 });
  const windowMs = optDurationMs(o, 'windowMs', path, gradient2 ? 100 : 0, { min: 0, max: 60_000 });
  const common = { initialLimit, minLimit, maxLimit, smoothing, windowMs };
  if (gradient2) {
    return Object.freeze({
      algorithm,
      ...common,
      queueSize: optNumber(o, 'queueSize', path, 4, { min: 0, max: 1_000_000 }),
      rttTolerance: optNumber(o, 'rttTolerance', path, 1.5, { min: 1, max: 100 }),
      longWindow: optNumber(o, 'longWindow', path, 600, { integer: true, min: 1, max: 1_000_000 }),
    });
  }
  const alpha = maybeNumber(o, 'alpha', path, { min: 0, max: 1_000_000 });
  const beta = maybeNumber(o, 'beta', path, { min: 0, max: 1_000_000 });
  if (alpha !== undefined && beta !== undefined && alpha >= beta) throw new InvalidConfigError(join(path, 'beta'), `expected a queue above alpha (${alpha}), got ${beta}`);
  return Object.freeze({ algorithm, ...common, alpha, beta, probeMultiplier: optNumber(o, 'probeMultiplier', path, 30, { min: 1, max: 1_000_000 }) });
}

/** The parsed config as config again (for `mesh.toJSON()`). */
export function adaptiveToJSON(a: ParsedAdaptive): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** The slots the limit applies to (the service's ConcurrencyLimit). */
export interface Slots {
  /** Requests holding a slot now. */
  readonly active: number;
  /** The slots allowed now: the last `resize`, capped by the limit's ceiling (`maxRequests`). */
  readonly max: number;
  /** Allow this many in flight. */
  resize(slots: number): void;
}

interface AdaptiveDeps {
  readonly service: string;
  readonly events: MeshEvents;
  readonly random: () => number;
  readonly log: Logger;
}

/** Feeds latency samples to the algorithm and applies its limit to the service's ConcurrencyLimit. */
export class AdaptiveLimit {
  readonly #algorithm: { update(rttMs: number, inFlight: number, dropped: boolean): number; readonly limit: number };
  readonly #name: string;
  readonly #slots: Slots;
  readonly #deps: AdaptiveDeps;
  readonly #windowMs: number;
  readonly #windowSamples: number;
  #current: number;
  /** The limit in force last announced (or at the start). */
  #announced: number;
  // The window being gathered.
  #windowEndMs = -Infinity;
  #sumMs = 0;
  #samples = 0;
  #maxInFlight = 0;
  #dropped = false;

  constructor(config: ParsedAdaptive, slots: Slots, deps: AdaptiveDeps) {
    this.#name = config.algorithm;
    // Gradient2 takes no drop flag: a drop is latency like any other there (as in Netflix's).
    this.#algorithm = config.algorithm === 'gradient2' ? new Gradient2Limit(config) : new VegasLimit(config, deps.random);
    this.#slots = slots;
    this.#deps = deps;
    this.#windowMs = config.windowMs;
    this.#windowSamples = config.windowMs > 0 ? WINDOW_SAMPLES : 1;
    this.#current = Math.floor(config.initialLimit);
    slots.resize(this.#current);
    this.#announced = slots.max;
  }

  /** The algorithm's limit now, rounded down (before the `maxRequests` cap). */
  get limit(): number {
    return this.#current;
  }

  /** One attempt's outcome at `nowMs`, from the service's observers. */
  observe(kind: AttemptOutcomeKind, status: number, latencyMs: number, nowMs: number): void {
    if (kind !== 'success' && kind !== 'http-5xx' && kind !== 'gateway-error' && kind !== 'timeout') return;
    if (!(latencyMs > 0)) return;
    if (this.#samples === 0) this.#windowEndMs = nowMs + this.#windowMs;
    this.#sumMs += latencyMs;
    this.#samples++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#slots.active);
    if (kind === 'timeout' || status === 503 || status === 429) this.#dropped = true;
    if (this.#samples < this.#windowSamples || nowMs < this.#windowEndMs) return;
    const meanMs = this.#sumMs / this.#samples;
    const next = Math.floor(this.#algorithm.update(meanMs, this.#maxInFlight, this.#dropped));
    this.#sumMs = this.#samples = this.#maxInFlight = 0;
    this.#dropped = false;
    if (next === this.#current) return;
    this.#current = next;
    this.#slots.resize(next);
    // What is announced is the limit in force: the algorithm's beyond maxRequests is not.
    const inForce = this.#slots.max;
    const last = this.#announced;
    if (Math.abs(inForce - last) < Math.max(1, last * 0.1)) return;
    this.#announced = inForce;
    this.#deps.log.debug(`service ${this.#deps.service}: ${this.#name} concurrency limit ${last} -> ${inForce} (mean latency ${meanMs.toFixed(1)} ms)`);
    this.#deps.events.emit('concurrency-limit', { service: this.#deps.service, algorithm: this.#name, limit: inForce, previous: last, latencyMs: meanMs });
  }
}
