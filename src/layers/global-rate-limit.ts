/**
 * A rate limit shared by every process that calls a service, kept in Redis by
 * rate-limiter-flexible (`RateLimiterRedis`: an atomic counter per one-second window). Both
 * `rate-limiter-flexible` and `ioredis` are optional peer dependencies, loaded only when a service
 * configures `rateLimit.global` — nothing is imported otherwise.
 *
 * While Redis is unreachable the limit falls back to a per-process in-memory limiter
 * (rate-limiter-flexible's insurance limiter) at `fallbackRequestsPerSecond`, so an outage of the
 * limiter never becomes an outage of the service.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, optString, rejectUnknown } from '../config/check.js';

export interface GlobalRateLimitConfig {
  /** Redis to use: a `redis://` URL or a unix socket path. Or give `client`. */
  redis?: string;
  /** An ioredis (or node-redis) client you own; meshlet never closes it. */
  client?: unknown;
  /** Requests per second allowed across all processes. */
  requestsPerSecond: number;
  /** Redis key prefix; the service name is appended. @default 'meshlet' */
  keyPrefix?: string;
  /** Per-process rate used while Redis is unreachable. @default requestsPerSecond */
  fallbackRequestsPerSecond?: number;
}

export interface ParsedGlobalRateLimit {
  readonly redis: string | undefined;
  readonly client: unknown;
  readonly requestsPerSecond: number;
  readonly keyPrefix: string;
  readonly fallbackRequestsPerSecond: number;
}

export function parseGlobalRateLimit(raw: unknown, path: string): ParsedGlobalRateLimit | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['redis', 'client', 'requestsPerSecond', 'keyPrefix', 'fallbackRequestsPerSecond'], path);
  if ((o.redis === undefined) === (o.client === undefined)) {
    throw new InvalidConfigError(join(path, 'redis'), 'give exactly one of "redis" (a URL or socket path) and "client"');
  }
  if (o.client !== undefined && (typeof o.client !== 'object' || o.client === null)) {
    throw new InvalidConfigError(join(path, 'client'), `expected a Redis client, got ${describe(o.client)}`);
  }
  if (o.requestsPerSecond === undefined) throw new InvalidConfigError(join(path, 'requestsPerSecond'), 'required');
  const rps = optNumber(o, 'requestsPerSecond', path, 0, { integer: true, min: 1, max: 1e9 });
  return Object.freeze({
    redis: optString(o, 'redis', path),
    client: o.client,
    requestsPerSecond: rps,
    keyPrefix: optString(o, 'keyPrefix', path) ?? 'meshlet',
    fallbackRequestsPerSecond: optNumber(o, 'fallbackRequestsPerSecond', path, rps, { integer: true, min: 1, max: 1e9 }),
  });
}

interface Limiter {
  consume(key: string, points?: number): Promise<unknown>;
}

/** The answer for one request: go, or wait `retryInMs` (then ask again), or refused. */
export type GlobalVerdict = { ok: true } | { ok: false; retryInMs: number };

export class GlobalRateLimiter {
  readonly #limiter: Limiter;
  readonly #key: string;
  readonly #ownedClient: { disconnect(): void } | null;

  private constructor(limiter: Limiter, key: string, ownedClient: { disconnect(): void } | null) {
    this.#limiter = limiter;
    this.#key = key;
    this.#ownedClient = ownedClient;
  }

  /**
   * Load the optional packages and connect.
   * @throws Error naming the missing package when rate-limiter-flexible or ioredis is not installed.
   */
  static async create(config: ParsedGlobalRateLimit, service: string): Promise<GlobalRateLimiter> {
    const rlf = (await importOptional('rate-limiter-flexible')) as {
      RateLimiterRedis: new (o: object) => Limiter;
      RateLimiterMemory: new (o: object) => Limiter;
    };
    let client = config.client;
    let owned: { disconnect(): void } | null = null;
    if (client === undefined) {
      const mod = (await importOptional('ioredis')) as { default?: unknown; Redis?: unknown };
      const Redis = (mod.Redis ?? mod.default) as new (...args: unknown[]) => { disconnect(): void };
      const target = config.redis!;
      const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false };
      client = target.startsWith('redis://') || target.startsWith('rediss://') ? new Redis(target, options) : new Redis({ path: target, ...options });
      const c = client as { on(e: string, f: () => void): void; once(e: string, f: () => void): void; status: string };
      c.on('error', () => {}); // errors surface through the limiter's fallback
      owned = client as { disconnect(): void };
      // Give the connection a moment, so the first requests use the shared limit, not the fallback.
      if (c.status !== 'ready') {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1_000);
          c.once('ready', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
    const limiter = new rlf.RateLimiterRedis({
      storeClient: client,
      points: config.requestsPerSecond,
      duration: 1,
      keyPrefix: config.keyPrefix,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new rlf.RateLimiterMemory({ points: config.fallbackRequestsPerSecond, duration: 1 }),
    });
    return new GlobalRateLimiter(limiter, service, owned);
  }

  /** Take one request from the shared budget. */
  async consume(): Promise<GlobalVerdict> {
    try {
      await this.#limiter.consume(this.#key, 1);
      return { ok: true };
    } catch (res) {
      const ms = (res as { msBeforeNext?: number }).msBeforeNext;
      // A plain Error means Redis and the fallback both failed: let the request through.
      return typeof ms === 'number' ? { ok: false, retryInMs: ms } : { ok: true };
    }
  }

  close(): void {
    this.#ownedClient?.disconnect();
  }
}

async function importOptional(name: string): Promise<unknown> {
  try {
    return await import(name);
  } catch (err) {
    throw new Error(`rateLimit.global needs the optional package "${name}": npm install ${name}`, { cause: err });
  }
}
