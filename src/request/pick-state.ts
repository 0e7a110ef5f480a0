/**
 * What a request tells its target's picker (the PickContext balancers read): its hash, its
 * attempt number, and the endpoints it already tried — kept without allocating for the usual one
 * (a slot; a second and more go into an array) (request/call.ts extends this).
 */
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from '../balancers/balancer.js';

export class PickState implements PickContext {
  /** Upper 32 bits of the request's 64-bit hash (hash balancers), else undefined. */
  hash: number | undefined = undefined;
  /** Lower 32 bits of the request's 64-bit hash. */
  hashLow = 0;
  /** Index of the current attempt (0 = first try). */
  attempt = 0;
  /** The clock reading for the pick under way and the attempt it starts (set by the pick layer). */
  nowMs = 0;
  #tried1: Endpoint | null = null;
  #triedMore: Endpoint[] | null = null;

  skip(endpoint: Endpoint): boolean {
    if (this.#tried1 === endpoint) return true;
    const more = this.#triedMore;
    return more !== null && more.includes(endpoint);
  }

  /** Exclude `endpoint` from this request's remaining picks. */
  exclude(endpoint: Endpoint): void {
    if (this.#tried1 === null) this.#tried1 = endpoint;
    else (this.#triedMore ??= []).push(endpoint);
  }

  /** Allow already-tried endpoints again (a retry when no untried one is left). */
  resetExcluded(): void {
    this.#tried1 = null;
    this.#triedMore = null;
  }
}
