/**
 * Token-bucket rate limit per service (and optionally per endpoint). A bucket holds up to `burst`
 * tokens and refills at `requestsPerSecond`; a request takes one. When it is empty the request
 * either fails at once with RATE_LIMITED (`mode: 'reject'`) or waits up to `maxWaitMs` for its
 * token (`mode: 'wait'`): the token is reserved at once (the bucket goes into debt), so waiters
 * are served in arrival order and the long-run rate holds exactly. A waiter that ends before its
 * turn (its caller's abort, its deadline) gives its token back: the debt goes down by one, so the
 * next request may have it — never ahead of one already waiting, whose turn stays as it was.
 */
import { expectObject, join, optEnum, optNumber, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { InvalidConfigError, RateLimitedError } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import { parseGlobalRateLimit, type GlobalRateLimitConfig, type ParsedGlobalRateLimit } from './global-rate-limit.js';

export interface RateLimitConfig {
  /** Sustained rate of this process, requests per second. Optional when `global` is given. */
  requestsPerSecond?: number;
  /** Bucket size: requests allowed in a burst. @default requestsPerSecond (one second's worth), at least 1 */
  burst?: number;
  /** What happens when the bucket is empty. @default 'reject' */
  mode?: 'reject' | 'wait';
  /** Longest wait in `wait` mode, ms. @default 1000 */
  maxWaitMs?: Duration;
  /** A bucket per endpoint as well; an endpoint whose bucket is empty is skipped by the balancer. */
  perEndpoint?: { requestsPerSecond: number; burst?: number };
  /** A limit shared by all processes, kept in Redis (needs the optional packages rate-limiter-flexible and ioredis). */
  global?: GlobalRateLimitConfig;
}

export interface ParsedBucket {
  readonly requestsPerSecond: number;
  readonly ratePerMs: number;
  readonly burst: number;
}

export interface ParsedRateLimit {
  /** The per-process bucket, or null when only a global limit is set. */
  readonly service: ParsedBucket | null;
  readonly mode: 'reject' | 'wait';
  readonly maxWaitMs: number;
  readonly perEndpoint: ParsedBucket | null;
  readonly global: ParsedGlobalRateLimit | null;
}

function parseBucket(o: Record<string, unknown>, path: string): ParsedBucket {
  if (o.requestsPerSecond === undefined) {
    throw new InvalidConfigError(join(path, 'requestsPerSecond'), 'required: the sustained rate in requests per second');
  }
  const rps = optNumber(o, 'requestsPerSecond', path, 0, { above: 0, max: 1e9 });
  const burst = optNumber(o, 'burst', path, Math.max(1, rps), { min: 1, max: 1e9 });
  return Object.freeze({ requestsPerSecond: rps, ratePerMs: rps / 1000, burst });
}

export function parseRateLimitConfig(raw: unknown, path: string): ParsedRateLimit | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['requestsPerSecond', 'burst', 'mode', 'maxWaitMs', 'perEndpoint', 'global'], path);
  let perEndpoint: ParsedBucket | null = null;
  if (o.perEndpoint !== undefined) {
    const p = expectObject(o.perEndpoint, join(path, 'perEndpoint'));
    rejectUnknown(p, ['requestsPerSecond', 'burst'], join(path, 'perEndpoint'));
    perEndpoint = parseBucket(p, join(path, 'perEndpoint'));
  }
  const global = parseGlobalRateLimit(o.global, join(path, 'global'));
  return Object.freeze({
    service: global !== null && o.requestsPerSecond === undefined && o.burst === undefined ? null : parseBucket(o, path),
    mode: optEnum(o, 'mode', path, ['reject', 'wait'], 'reject'),
    maxWaitMs: optDurationMs(o, 'maxWaitMs', path, 1_000, { min: 0, max: 600_000 }),
    perEndpoint,
    global,
  });
}

/** A token bucket on an injected clock. */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #stamp: number;

  constructor(bucket: ParsedBucket, nowMs: number) {
    this.#ratePerMs = bucket.ratePerMs;
    this.#burst = bucket.burst;
    this.#tokens = bucket.burst;
    this.#stamp = nowMs;
  }

  #refill(nowMs: number): void {
    const elapsed = nowMs - this.#stamp;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#ratePerMs);
      this.#stamp = nowMs;
    }
  }

  /** Take a token if one is there now. */
  tryTake(nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  /**
   * Reserve a token, waiting at most `maxWaitMs`: returns the wait in ms (0 = go now), or -1 when
   * the wait would be longer (nothing is reserved then).
   */
  reserve(nowMs: number, maxWaitMs: number): number {
    this.#refill(nowMs);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    const wait = (1 - this.#tokens) / this.#ratePerMs;
    if (wait > maxWaitMs) return -1;
    this.#tokens -= 1;
    return Math.ceil(wait);
  }

  /**
   * Give back a token reserved for a request that never went: one less of debt. The waiters
   * reserved after it keep their turns; a new reservation is due no earlier than the last of them.
   */
  refund(nowMs: number): void {
    this.#refill(nowMs);
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }
}

/**
 * The rate-limit layer: the service's own bucket. An empty bucket refuses with RATE_LIMITED, or
 * in `wait` mode reserves the token and lets the request go on when it is due. On only when the
 * service sets a per-process rate.
 */
export class RateLimitLayer implements Layer {
  readonly name = 'rate-limit';
  readonly #bucket: TokenBucket;
  readonly #config: ParsedRateLimit;
  readonly #now: () => number;
  readonly #refuse: (call: Call, scope: string) => void;

  constructor(config: ParsedRateLimit, now: () => number, refuse: (call: Call, scope: string) => void) {
    this.#config = config;
    this.#bucket = new TokenBucket(config.service!, now());
    this.#now = now;
    this.#refuse = refuse;
  }

  handle(call: Call, next: Next): void {
    const rl = this.#config;
    const now = this.#now();
    const wait = rl.mode === 'wait' ? this.#bucket.reserve(now, rl.maxWaitMs) : this.#bucket.tryTake(now) ? 0 : -1;
    if (wait < 0) this.#refuse(call, 'service');
    else if (wait > 0) this.#wait(call, next, wait);
    else next(call);
  }

  /** Wait `ms` for the reserved token; a request that ends first (aborted, its deadline) gives it back. */
  #wait(call: Call, next: Next, ms: number): void {
    let waiting = true;
    call.onEnd(() => {
      if (waiting) this.#bucket.refund(this.#now());
    });
    call.wait(ms, () => {
      waiting = false;
      next(call);
    });
  }
}

/** Refusals of every rate limit of one service: counted, announced, failed with RATE_LIMITED. */
export class RateLimitRefusals {
  count = 0;
  readonly #service: string;
  readonly #events: MeshEvents;

  constructor(service: string, events: MeshEvents) {
    this.#service = service;
    this.#events = events;
  }

  readonly refuse = (call: Call, scope: string): void => {
    this.note(scope);
    call.fail(new RateLimitedError(this.#service, scope));
  };

  /** Count and announce a refusal that fails nothing: a retry not sent (its caller gets what it would have retried). */
  readonly note = (scope: string): void => {
    this.count++;
    this.#events.emit('rate-limited', { service: this.#service, scope });
  };
}

/** The per-endpoint buckets (`rateLimit.perEndpoint`), made on an endpoint's first pick. */
export class EndpointRates {
  readonly #bucket: ParsedBucket;
  readonly #now: () => number;
  readonly #buckets = new WeakMap<object, TokenBucket>();

  constructor(bucket: ParsedBucket, now: () => number) {
    this.#bucket = bucket;
    this.#now = now;
  }

  /** Take a token of `endpoint`'s bucket, if it has one now. */
  readonly take = (endpoint: object): boolean => {
    let bucket = this.#buckets.get(endpoint);
    if (!bucket) this.#buckets.set(endpoint, (bucket = new TokenBucket(this.#bucket, this.#now())));
    return bucket.tryTake(this.#now());
  };
}
