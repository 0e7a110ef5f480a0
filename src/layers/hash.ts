/**
 * The hash layer: for a target whose balancer hashes (ring-hash, maglev), the request's 64-bit
 * hash under the balancer's `hashOn` — Envoy's hash policies, evaluated and combined as Envoy does
 * (balancers/hash-key.ts) — into `call.hash` (upper 32 bits) and `call.hashLow` (lower). A request
 * no policy yields a value for gets a random hash. A cookie policy with a TTL generates the
 * cookie when the request has none (Envoy's generated hash cookie) and sets it on the response;
 * the generated value is the request's, kept on the call, so a weighted split and the pick agree.
 * On only when some target hashes.
 */
import { randomUUID } from 'node:crypto';
import type { HashOn, HashPolicy } from '../balancers/config.js';
import { evaluate, fieldHash, requestView } from '../balancers/hash-key.js';
import { xxh64Latin1, xxh64Utf8 } from '../balancers/xxhash64.js';
import { StateWarning, type Logger } from '../core/log.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

/** Hashes of requests for one service. */
export class RequestHasher {
  /** The last hash computed: upper, lower 32 bits. */
  readonly out = new Uint32Array(2);
  readonly #part = new Uint32Array(2);
  readonly #service: string;
  readonly #random: () => number;
  /** A `hashOn` function that throws is warned of once, until it returns again. */
  readonly #threw: StateWarning;
  readonly #generated = new WeakMap<Call, string>();
  /** The call `compute` evaluates (set just before, synchronously), for the bound #policyHash. */
  #call: Call | null = null;
  readonly #policyHash = (policy: HashPolicy): boolean => this.#policy(this.#call!, policy);

  constructor(service: string, random: () => number, log: Logger) {
    this.#service = service;
    this.#random = random;
    this.#threw = new StateWarning(log);
  }

  /**
   * Evaluate `hashOn` for the call into {@link out} (balancers/hash-key.ts `evaluate`); false when
   * no policy yielded a value (then `out` is left unspecified).
   */
  compute(call: Call, hashOn: HashOn | undefined): boolean {
    if (hashOn === undefined) return false;
    const outer = this.#call; // a key function that sends a request through the mesh re-enters
    this.#call = call;
    const found = evaluate(hashOn, this.out, this.#part, this.#policyHash);
    this.#call = outer;
    return found;
  }

  /** Set the call's hash for a pick under `hashOn` (random when no policy yields a value). */
  hash(call: Call, hashOn: HashOn | undefined): void {
    if (this.compute(call, hashOn)) {
      call.hash = this.out[0]!;
      call.hashLow = this.out[1]!;
    } else {
      call.hash = (this.#random() * 0x1_0000_0000) >>> 0;
      call.hashLow = (this.#random() * 0x1_0000_0000) >>> 0;
    }
  }

  /** One policy's hash into #part; false when it yields none. */
  #policy(call: Call, policy: HashPolicy): boolean {
    if (typeof policy === 'function') {
      let key: string | undefined;
      try {
        key = policy(requestView(call.opts));
      } catch (err) {
        this.#threw.warn('threw', `service ${this.#service}: hashOn function threw, ignoring its value (warned once until it returns again): ${(err as Error)?.message ?? String(err)}`);
        return false;
      }
      this.#threw.clear();
      if (typeof key !== 'string') return false;
      xxh64Utf8(key, 0, this.#part);
      return true;
    }
    if (fieldHash(call.opts, policy, this.#part)) return true;
    if (!('cookie' in policy) || policy.ttlMs === undefined) return false;
    let value = this.#generated.get(call);
    if (value === undefined) {
      value = randomUUID();
      this.#generated.set(call, value);
      // ttlMs is ms once parsed (balancers/config.ts); 0 is a session cookie.
      const ttlMs = policy.ttlMs as number;
      call.setCookie = `${policy.cookie}=${value}; Path=${policy.path ?? '/'}${ttlMs === 0 ? '' : `; Max-Age=${Math.floor(ttlMs / 1000)}`}; HttpOnly`;
    }
    xxh64Latin1(value, 0, 0, this.#part);
    return true;
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
    if (b.def.usesHash) this.#hasher.hash(call, b.hashOn);
    next(call);
  }
}
