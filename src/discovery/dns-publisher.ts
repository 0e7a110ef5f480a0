/**
 * What a DNS source (`dns`, `dns-srv`) has published, and its NXDOMAIN policy: a snapshot is
 * pushed only when it differs from the last one; after the name goes away (NXDOMAIN/NODATA) the
 * last good set is kept for `keepForMs` (`onNxdomain: 'keep'`) or dropped at once (`'drop'`).
 * Before any good answer an absent name publishes an empty set at once, so waiting requests fail
 * fast with NO_HEALTHY_ENDPOINT instead of waiting `readyTimeout`, and is reported (each refresh
 * counts a discovery error, as after one).
 */
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { StateWarning } from '../core/log.js';
import type { DiscoveryContext } from './discovery.js';
import type { DnsCommonOptions } from './dns-common.js';

export class DnsPublisher {
  readonly #o: DnsCommonOptions;
  readonly #ctx: DiscoveryContext;
  readonly #what: string;
  #lastKey: string | null = null;
  /** The published set came from a good, non-empty answer. */
  #holding = false;
  #dropTimer: NodeJS.Timeout | null = null;
  #stopped = false;
  /** Records an answer carried that gave no endpoint: warned of once until the answers change. */
  readonly #skipped: StateWarning;

  constructor(o: DnsCommonOptions, ctx: DiscoveryContext, what: string) {
    this.#o = o;
    this.#ctx = ctx;
    this.#what = what;
    this.#skipped = new StateWarning(ctx.log);
  }

  /**
   * What a good answer carried that gave no endpoint (records of the wrong address family, an
   * address that makes no valid endpoint), or nothing: warned of when it changes, not on every
   * refresh — the same answer comes back every TTL.
   */
  skipped(problems: readonly string[]): void {
    if (problems.length === 0) return this.#skipped.clear();
    const line = `${this.#what}: skipped ${problems.join('; ')}`;
    if (!this.#stopped) this.#skipped.warn(line, line);
  }

  /** A good answer with at least one endpoint. */
  good(specs: readonly EndpointSpec[]): void {
    this.#cancelDrop();
    this.#holding = true;
    this.#publish(specs);
  }

  /** The name has no records (NXDOMAIN, NODATA, no target resolves): apply `onNxdomain`. */
  none(reason: string): void {
    if (!this.#holding) {
      // Nothing to keep: empty at once (requests fail fast), and say why — the reason names the
      // name, or the SRV targets, that do not resolve.
      this.#publish([]);
      this.#report(`${this.#what} ${reason}`);
      return;
    }
    const keepMs = this.#o.keepForMs;
    if (this.#o.onNxdomain === 'drop' || keepMs === 0) return this.#drop(reason);
    if (this.#dropTimer === null) {
      this.#dropTimer = setTimeout(() => this.#drop(`${reason} for ${keepMs} ms`), keepMs);
      this.#dropTimer.unref();
    }
    this.#report(`${this.#what} ${reason}; keeping the last good endpoints for up to ${keepMs} ms`);
  }

  /** The service is decidedly unavailable (a lone SRV target "."): empty at once. */
  unavailable(): void {
    this.#cancelDrop();
    this.#holding = false;
    this.#publish([]);
  }

  /** Resolver trouble: report it; the service keeps what it has. */
  failed(reason: string): void {
    this.#report(`${this.#what} failed (${reason}); keeping the last good endpoints`);
  }

  /** Report a problem with part of an answer (a skipped target, a wrong-family record). */
  partial(message: string): void {
    this.#report(`${this.#what}: ${message}`);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelDrop();
  }

  #report(message: string): void {
    if (!this.#stopped) this.#ctx.error(new Error(message));
  }

  #drop(reason: string): void {
    this.#dropTimer = null;
    this.#holding = false;
    if (!this.#stopped) this.#ctx.log.warn(`${this.#what} ${reason}; dropping its endpoints`);
    this.#publish([]);
  }

  #cancelDrop(): void {
    if (this.#dropTimer !== null) clearTimeout(this.#dropTimer);
    this.#dropTimer = null;
  }

  #publish(specs: readonly EndpointSpec[]): void {
    if (this.#stopped) return;
    const key = specs
      .map((s) => `${s.origin} ${s.weight} ${s.priority} ${s.hashKey ?? ''}`)
      .sort()
      .join('\n');
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    this.#ctx.update(specs);
  }
}
