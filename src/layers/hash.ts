/**
 * The hash layer: for a target whose balancer hashes (ring-hash, maglev), the request's hash key
 * — a header, a cookie, a query parameter or the user's function — hashed once into `call.hash`.
 * A cookie policy with a TTL generates the cookie when the request has none (Envoy's generated
 * hash cookie) and sets it on the response; the generated value is the request's, kept on the
 * call, so a weighted split and the pick agree. On only when some target hashes.
 */
import { randomUUID } from 'node:crypto';
import type { HashOn } from '../balancers/config.js';
import { hashKeyOf, requestHash } from '../balancers/hash-key.js';
import type { Logger } from '../core/log.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

/** Hash keys of requests for one service. */
export class RequestHasher {
  readonly #service: string;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #generated = new WeakMap<Call, string>();

  constructor(service: string, random: () => number, log: Logger) {
    this.#service = service;
    this.#random = random;
    this.#log = log;
  }

  /** The request's key under `hashOn`, or undefined (then picks are random). */
  key(call: Call, hashOn: HashOn | undefined): string | undefined {
    let key: string | undefined;
    try {
      key = hashKeyOf(call.opts, hashOn);
    } catch (err) {
      this.#log.warn(`service ${this.#service}: hashOn function threw, picking at random: ${(err as Error).message}`);
      return undefined;
    }
    if (key === undefined && hashOn !== undefined && typeof hashOn !== 'function' && 'cookie' in hashOn && hashOn.ttlMs !== undefined) {
      key = this.#generated.get(call);
      if (key === undefined) {
        key = randomUUID();
        this.#generated.set(call, key);
        // ttlMs is ms once parsed (balancers/config.ts).
        call.setCookie = `${hashOn.cookie}=${key}; Path=${hashOn.path ?? '/'}; Max-Age=${Math.floor((hashOn.ttlMs as number) / 1000)}; HttpOnly`;
      }
    }
    return key;
  }

  /** The request's 32-bit hash under `hashOn` (random when it has no key). */
  hash(call: Call, hashOn: HashOn | undefined): number {
    return requestHash(this.key(call, hashOn), this.#random);
  }
}

export class HashLayer implements Layer {
  readonly name = 'hash';
  readonly #hasher: RequestHasher;

  constructor(hasher: RequestHasher) {
    this.#hasher = hasher;
  }

  handle(call: Call, next: Next): void {
    const b = call.target.balancer;
    if (b.def.usesHash) call.hash = this.#hasher.hash(call, b.hashOn);
    next(call);
  }
}
