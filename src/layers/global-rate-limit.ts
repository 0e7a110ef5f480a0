/**
 * A rate limit shared by every process that calls a service, kept in Redis by
 * rate-limiter-flexible (`RateLimiterRedis`: an atomic counter per one-second window). Both
 * `rate-limiter-flexible` and `ioredis` are optional peer dependencies, loaded only when a service
 * configures `rateLimit.global` — nothing is imported otherwise.
 *
 * While Redis is unreachable — refusing connections, erroring, or not answering within
 * `commandTimeoutMs` — the limit falls back to a per-process in-memory limiter
 * (`RateLimiterMemory`) at `fallbackRequestsPerSecond`, so an outage of the limiter never becomes
 * an outage of the service: a Redis that hangs costs each request at most `commandTimeoutMs`.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join as joinPath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidConfigError } from '../core/errors.js';
import { StateWarning, type Logger } from '../core/log.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optNumber, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';

export interface GlobalRateLimitConfig {
  /** Redis to use: a `redis://` or `rediss://` URL, or the absolute path of a unix socket. Or give `client`. */
  redis?: string;
  /** An ioredis (or node-redis) client you own; meshlet never closes it, nor changes its options, and takes its listeners off it when the mesh closes. */
  client?: unknown;
  /** Requests per second allowed across all processes. */
  requestsPerSecond: number;
  /**
   * Redis key prefix: the count is at `<keyPrefix>:<service>`, shared by every mesh on that Redis
   * with a service of that name (all replicas of a service: by design). Set another to keep an app
   * whose services have the same names apart. @default 'meshlet'
   */
  keyPrefix?: string;
  /** Per-process rate used while Redis is unreachable. @default requestsPerSecond */
  fallbackRequestsPerSecond?: number;
  /**
   * How long a request waits for Redis's answer before the per-process fallback decides for it
   * (and Redis counts as unreachable until it answers in time again). Also ioredis's
   * `commandTimeout` on the client meshlet makes; a `client` you pass in is left as it is.
   * @default 100
   */
  commandTimeoutMs?: Duration;
}

export interface ParsedGlobalRateLimit {
  readonly redis: string | undefined;
  readonly client: unknown;
  readonly requestsPerSecond: number;
  readonly keyPrefix: string;
  readonly fallbackRequestsPerSecond: number;
  readonly commandTimeoutMs: number;
}

/** A `redis` that is a `redis://` / `rediss://` URL (which may carry credentials); anything else is a socket path. */
export function isRedisUrl(target: string): boolean {
  return /^rediss?:\/\//i.test(target);
}

/**
 * A `redis` is a `redis://` or `rediss://` URL, or the absolute path of a unix socket. Anything
 * else — another scheme, a host:port, a mistyped `redis//host`, a relative path — would reach
 * ioredis as a socket path that is not there, and the limit would stay on its fallback for good
 * with only a `connect ENOENT` warning: refused here instead. What is shown of the value has
 * anything before an `@` left out (it may be a password).
 */
function checkRedisTarget(target: string, path: string): void {
  if (isRedisUrl(target)) {
    if (!URL.canParse(target)) throw new InvalidConfigError(path, 'expected a redis:// or rediss:// URL, got one that does not parse as a URL (not shown: it may hold a password)');
    return;
  }
  if (isAbsolute(target)) return;
  const shown = describe(target.replace(/[^/@]*@/g, '…@'));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target)?.[1];
  const hint =
    scheme !== undefined
      ? `: "${scheme}://" is not a Redis scheme`
      : /^(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d+$/i.test(target)
        ? `: for a host and port, write "redis://${target}"`
        : /^rediss?(?::|\/\/)/i.test(target)
          ? ': a URL starts with "redis://" or "rediss://"'
          : ': a socket path must be absolute';
  throw new InvalidConfigError(path, `expected a redis:// or rediss:// URL, or the absolute path of a unix socket, got ${shown}${hint}`);
}

export function parseGlobalRateLimit(raw: unknown, path: string): ParsedGlobalRateLimit | null {
  if (raw === undefined) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['redis', 'client', 'requestsPerSecond', 'keyPrefix', 'fallbackRequestsPerSecond', 'commandTimeoutMs'], path);
  if ((o.redis === undefined) === (o.client === undefined)) {
    throw new InvalidConfigError(join(path, 'redis'), 'give exactly one of "redis" (a URL or socket path) and "client"');
  }
  if (o.client !== undefined && (typeof o.client !== 'object' || o.client === null)) {
    throw new InvalidConfigError(join(path, 'client'), `expected a Redis client, got ${describe(o.client)}`);
  }
  if (o.requestsPerSecond === undefined) throw new InvalidConfigError(join(path, 'requestsPerSecond'), 'required');
  const rps = optNumber(o, 'requestsPerSecond', path, 0, { integer: true, min: 1, max: 1e9 });
  const redis = optString(o, 'redis', path);
  if (redis !== undefined) checkRedisTarget(redis, join(path, 'redis'));
  return Object.freeze({
    redis,
    client: o.client,
    requestsPerSecond: rps,
    keyPrefix: optString(o, 'keyPrefix', path) ?? 'meshlet',
    fallbackRequestsPerSecond: optNumber(o, 'fallbackRequestsPerSecond', path, rps, { integer: true, min: 1, max: 1e9 }),
    // Redis answers in well under a millisecond; 100 ms is far past a healthy answer (a GC pause, a
    // busy instance) and still short enough to add little to a request while Redis hangs.
    commandTimeoutMs: optDurationMs(o, 'commandTimeoutMs', path, 100, { min: 1, max: 60_000 }),
  });
}

interface Limiter {
  consume(key: string, points?: number): Promise<unknown>;
}

/** The shared limit in Redis, and the per-process one that decides while Redis is unreachable. */
interface Limiters {
  readonly shared: Limiter;
  readonly fallback: Limiter;
}

/** What Redis said: allowed (0), refused for `ms`, or no answer (`why`: an error or the timeout). */
type RedisAnswer = { readonly ms: number } | { readonly why: string };

/** ms before the next point from a limiter's refusal (a RateLimiterRes), or undefined for an error. */
function refusedFor(res: unknown): number | undefined {
  const ms = (res as { msBeforeNext?: unknown } | null)?.msBeforeNext;
  return typeof ms === 'number' ? Math.max(1, ms) : undefined;
}

type Listener = (...args: unknown[]) => void;

interface RedisLike {
  on(event: string, listener: Listener): unknown;
  off?(event: string, listener: Listener): unknown;
  removeListener?(event: string, listener: Listener): unknown;
  status?: string;
  disconnect?(): void;
}

/**
 * Where an optional package is installed: resolved from meshlet's own file, as any of its imports
 * would be (an optional peer is installed next to meshlet, whatever the working directory), then
 * from the application's main module, then from the working directory (meshlet bundled into the
 * app, or linked from elsewhere). Throws InvalidConfigError naming the package when none finds
 * it, so a configured feature never switches itself off.
 */
export function resolveOptional(name: string, path: string, feature: string): string {
  // __filename: CommonJS's own in the CJS build; the ESM build defines it as import.meta.filename
  // (tsup.config.mts), so the source stays valid for tsc, which reads it as CommonJS.
  const main = process.argv[1];
  const from = [__filename, ...(main !== undefined && isAbsolute(main) ? [main] : []), joinPath(process.cwd(), 'noop.js')];
  for (const base of from) {
    try {
      return createRequire(base).resolve(name);
    } catch {
      // not from here: the next place
    }
  }
  throw new InvalidConfigError(path, `${feature} needs the optional package "${name}", which is not installed: npm install ${name}`);
}

/** Take `listener` off `client` (an EventEmitter: ioredis, node-redis). */
function unlisten(client: RedisLike, event: string, listener: Listener): void {
  if (client.off) client.off(event, listener);
  else client.removeListener?.(event, listener);
}

/**
 * The global rate-limit layer: one limit shared by every process, kept in Redis by
 * rate-limiter-flexible (an optional peer, with ioredis when meshlet makes the client). While
 * Redis is unreachable (an error, or no answer within `commandTimeoutMs`) the per-process limiter
 * (`fallbackRequestsPerSecond`) decides, and the logger is told once when that starts and once
 * when Redis is back (it answers in time, or reconnects). In `wait` mode a
 * refused request waits for its turn within `maxWaitMs`. On only when `rateLimit.global` is set.
 */
export class GlobalRateLimitLayer implements Layer {
  readonly name = 'global-rate-limit';
  readonly #config: ParsedGlobalRateLimit;
  readonly #mode: 'reject' | 'wait';
  readonly #maxWaitMs: number;
  readonly #service: string;
  readonly #now: () => number;
  readonly #refuse: (call: Call, scope: string) => void;
  readonly #modules: { limiter: string; redis: string | null };
  #limiter: Promise<Limiters> | null = null;
  #client: RedisLike | null = null;
  #owned = false;
  /** What this layer listens to on the client: taken off a client passed in at close, as it outlives the mesh. */
  readonly #listening: { client: RedisLike; event: string; listener: Listener }[] = [];
  /** Redis unreachable: warned of once when it starts, and once when Redis is back. */
  readonly #redisDown: StateWarning;
  #closed = false;

  constructor(
    config: ParsedGlobalRateLimit,
    rate: { mode: 'reject' | 'wait'; maxWaitMs: number },
    deps: { service: string; now: () => number; log: Logger; refuse: (call: Call, scope: string) => void; path: string },
  ) {
    this.#config = config;
    this.#mode = rate.mode;
    this.#maxWaitMs = rate.maxWaitMs;
    this.#service = deps.service;
    this.#now = deps.now;
    this.#redisDown = new StateWarning(deps.log);
    this.#refuse = deps.refuse;
    this.#modules = {
      limiter: resolveOptional('rate-limiter-flexible', deps.path, 'rateLimit.global'),
      redis: config.client === undefined ? resolveOptional('ioredis', deps.path, 'rateLimit.global with "redis"') : null,
    };
  }

  handle(call: Call, next: Next): void {
    this.#limiter ??= this.#create();
    void this.#admit(call, next, this.#now());
  }

  async #admit(call: Call, next: Next, startedMs: number): Promise<void> {
    let limiters: Limiters;
    try {
      limiters = await this.#limiter!;
    } catch (err) {
      call.fail(new InvalidConfigError('rateLimit.global', `the shared limiter could not be created: ${(err as Error).message}`));
      return;
    }
    if (call.done) return;
    const answer = await this.#ask(limiters.shared);
    let verdict: number;
    if ('ms' in answer) {
      this.#setDegraded(false); // an answer in time: Redis is back, if it was away
      verdict = answer.ms;
    } else {
      this.#setDegraded(true, answer.why);
      // The fallback failing too (it should not: it is in memory) lets the request through.
      verdict = await limiters.fallback.consume(this.#service, 1).then(() => 0, (res: unknown) => refusedFor(res) ?? 0);
    }
    if (call.done) return;
    if (verdict === 0) return next(call);
    const waited = this.#now() - startedMs;
    if (this.#mode !== 'wait' || waited + verdict > this.#maxWaitMs) return this.#refuse(call, 'global');
    call.wait(verdict, () => void this.#admit(call, next, startedMs));
  }

  /**
   * Redis's verdict, waited for at most `commandTimeoutMs`: a Redis that accepts the connection
   * and never answers (stopped, swapping, a long script) must cost a request no more than that,
   * whoever made the client. An answer that comes later is dropped (its point stays counted).
   */
  async #ask(shared: Limiter): Promise<RedisAnswer> {
    const ms = this.#config.commandTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<RedisAnswer>((resolve) => {
      timer = setTimeout(resolve, ms, { why: `no answer within ${ms} ms` });
    });
    const answered = shared.consume(this.#service, 1).then(
      (): RedisAnswer => ({ ms: 0 }),
      (res: unknown): RedisAnswer => {
        const refused = refusedFor(res);
        return refused === undefined ? { why: (res as Error | null)?.message ?? String(res) } : { ms: refused };
      },
    );
    try {
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #create(): Promise<Limiters> {
    const rlf = (await import(pathToFileURL(this.#modules.limiter).href)) as {
      RateLimiterRedis: new (o: object) => Limiter;
      RateLimiterMemory: new (o: object) => Limiter;
    };
    let client = this.#config.client as RedisLike | undefined;
    // Redis going away and coming back is a change of state the operator hears about, once each.
    // Listened for as soon as the client exists: an 'error' with no listener is printed by ioredis
    // itself ("Unhandled error event"), outside the mesh's logger.
    const listen = (c: RedisLike): void => {
      this.#listen(c, 'error', (err) => this.#setDegraded(true, (err as Error)?.message));
      this.#listen(c, 'ready', () => this.#setDegraded(false));
    };
    if (client === undefined) {
      const mod = (await import(pathToFileURL(this.#modules.redis!).href)) as { default?: unknown; Redis?: unknown };
      const Redis = (mod.Redis ?? mod.default) as new (...args: unknown[]) => RedisLike;
      const target = this.#config.redis!;
      const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false, commandTimeout: this.#config.commandTimeoutMs };
      client = isRedisUrl(target) ? new Redis(target, options) : new Redis({ path: target, ...options });
      listen(client);
      this.#owned = true;
      // Give the connection a moment, so the first requests use the shared limit, not the fallback.
      if (client.status !== 'ready') {
        const c = client;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(t);
            unlisten(c, 'ready', done);
            resolve();
          };
          const t = setTimeout(done, 1_000);
          c.on('ready', done);
        });
      }
    }
    if (!this.#owned) listen(client);
    this.#client = client;
    if (this.#closed) this.close();
    // No insuranceLimiter on the Redis limiter: #admit asks the fallback itself, for a Redis that
    // errs and for one that does not answer in time alike, and so knows which of the two decided.
    return {
      shared: new rlf.RateLimiterRedis({
        storeClient: client,
        points: this.#config.requestsPerSecond,
        duration: 1,
        keyPrefix: this.#config.keyPrefix,
        rejectIfRedisNotReady: true,
      }),
      fallback: new rlf.RateLimiterMemory({ points: this.#config.fallbackRequestsPerSecond, duration: 1 }),
    };
  }

  #setDegraded(degraded: boolean, why?: string): void {
    if (this.#closed) return;
    if (degraded) this.#redisDown.warn('unreachable', `global rate limit: Redis unreachable (${why ?? 'unknown error'}); using the per-process limit of ${this.#config.fallbackRequestsPerSecond}/s until it is back`);
    else this.#redisDown.clear('global rate limit: Redis reachable again; the shared limit applies');
  }

  #listen(client: RedisLike, event: string, listener: Listener): void {
    client.on(event, listener);
    this.#listening.push({ client, event, listener });
  }

  close(): void {
    this.#closed = true;
    // Ours goes with the mesh, its 'error' listener kept (a late error must not become ioredis's
    // "Unhandled error event"; #setDegraded ignores it); yours is left as it was before the mesh.
    if (this.#owned) this.#client?.disconnect?.();
    else for (const l of this.#listening.splice(0)) unlisten(l.client, l.event, l.listener);
  }
}
