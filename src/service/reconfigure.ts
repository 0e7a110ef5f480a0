/**
 * What `Service.reconfigure` needs besides the service itself: whether a new config can replace
 * the running one in place, which targets (balancer state) carry over, and the pipelines it
 * replaced, kept until the requests that entered them have settled.
 *
 * In place means: the same discovery (type and options), pool and TLS — what the endpoints and
 * their connection pools are made of. Everything else (routes, subsets, balancers, retries,
 * hedging, timeouts, limits, rate limits, breakers, health) is rebuilt from the new config.
 */
import type { Call } from '../request/call.js';
import type { ParsedService } from './config.js';
import type { Pipeline } from './pipeline.js';

const json = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

/** True when `next` keeps `current`'s endpoints, pools and discovery (see the header). */
export function sameEndpoints(current: ParsedService, next: ParsedService): boolean {
  return (
    current.discovery === next.discovery &&
    current.discoveryType === next.discoveryType &&
    json(current.discoveryOptions) === json(next.discoveryOptions) &&
    json(current.pool) === json(next.pool) &&
    json(current.tls) === json(next.tls)
  );
}

/** A target's identity: an unchanged one keeps its picker and balancer state across a reconfigure. */
export function targetKey(subset: { readonly name: string; readonly labels: Readonly<Record<string, string>> } | null, balancer: ParsedService['balancer'], localityLb: ParsedService['localityLb']): string {
  return json({ subset: subset?.name ?? null, labels: subset?.labels ?? null, balancer: balancer.name, options: balancer.options, hashOn: balancer.hashOn, localityLb });
}

/** True when the health model's config is unchanged (its ejections and probes then carry over). */
export function sameHealth(current: ParsedService, next: ParsedService): boolean {
  return json(current.health) === json(next.health);
}

/**
 * Pipelines a reconfigure replaced. Each waits for the calls that were live when it was replaced
 * (they may sit in its queues, timers and breaker); when the last of them ends, its layers are
 * closed. Costs nothing per request while none is retiring.
 */
export class RetiringPipelines {
  readonly #retiring: { pipeline: Pipeline; calls: Set<Call> }[] = [];

  get size(): number {
    return this.#retiring.length;
  }

  /** Retire `pipeline`; `forEachLive` lists the calls still running. */
  add(pipeline: Pipeline, forEachLive: (fn: (call: Call) => void) => void, close: (p: Pipeline) => void): void {
    const calls = new Set<Call>();
    forEachLive((c) => calls.add(c));
    if (calls.size === 0) return close(pipeline);
    this.#retiring.push({ pipeline, calls });
  }

  /** A call ended: close the pipelines no running call needs any more. */
  ended(call: Call, close: (p: Pipeline) => void): void {
    for (let i = this.#retiring.length - 1; i >= 0; i--) {
      const r = this.#retiring[i]!;
      if (r.calls.delete(call) && r.calls.size === 0) {
        this.#retiring.splice(i, 1);
        close(r.pipeline);
      }
    }
  }

  /** Discovery answered for the first time: requests waiting in an old pipeline go on too. */
  ready(): void {
    for (const r of this.#retiring) r.pipeline.ready.ready();
  }

  /** The service closes: every retiring pipeline closes now. */
  closeAll(close: (p: Pipeline) => void): void {
    for (const r of this.#retiring.splice(0)) close(r.pipeline);
  }
}
