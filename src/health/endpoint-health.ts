/**
 * ServiceHealth: the one model of endpoint health for a service.
 *
 * One state machine per endpoint, the circuit's (its states and transitions: circuit.ts): CLOSED
 * (healthy) → OPEN (ejected) → HALF-OPEN (probing) → CLOSED, or back to OPEN with a longer
 * ejection. Two rules open it:
 *  - outlier detection (Envoy): N consecutive 5xx / gateway / local-origin failures;
 *  - the error rate over a rolling window (error-rate.ts), and optionally
 *    Envoy's failure-percentage sweep.
 * An ejection lasts `baseEjectionTimeMs × times ejected`, capped by `maxEjectionTimeMs`; at most
 * `maxEjectionPercent` of endpoints are ejected at once (with none ejected one may be, unless it is
 * 0). When it ends the
 * circuit half-opens: `admit()` lets exactly one request through as the probe; its success closes
 * the circuit, its failure re-opens it. While healthy, the ejection multiplier decays once per
 * interval (outlier detection's, or its default when only the error-rate rule is on). Active health checks are a second, independent gate (`unhealthy`), and slow start
 * sheds a share of a new endpoint's picks in `admit()` — a shed pick, unlike a refused one, is
 * still taken when no other endpoint will (layers/pick.ts): slow start re-weights, as Envoy's
 * does, and never fails a request (a new endpoint alone takes everything).
 *
 * The service calls: `add`/`remove` (discovery), `admit` (after each pick), `record` (each attempt's
 * outcome kind, at its time). We call `hooks.changed()` when availability changes, so the service
 * rebuilds its pickers; panic (balancing over unavailable endpoints) is each target's own decision,
 * made then (routing/target.ts, routing/tiers.ts), and `admit` lets an open circuit through only
 * for the target whose panicking level holds it.
 */
import type { Endpoint } from '../core/endpoint.js';
import { optNumber, type Raw } from '../config/check.js';
import { isFailure, type AttemptOutcomeKind } from './outcome.js';
import { ErrorRate } from './error-rate.js';
import { HealthChecker } from './health-check.js';
import { Circuits, type HealthHooks } from './circuit.js';
import {
  parseBreaker,
  parseHealthCheck,
  parseOutlier,
  parseSlowStart,
  type ParsedBreaker,
  type ParsedHealthCheck,
  type ParsedOutlier,
  type ParsedSlowStart,
} from './health-config.js';

export type { HealthHooks } from './circuit.js';

/** Service config keys this module owns (validated by {@link parseHealthConfig}). */
export const HEALTH_CONFIG_KEYS = ['outlierDetection', 'circuitBreaker', 'healthCheck', 'slowStart', 'panicThreshold'] as const;

/** Parsed, frozen health configuration of one service. */
export interface ParsedHealth {
  readonly outlier: ParsedOutlier | null;
  readonly breaker: ParsedBreaker | null;
  readonly healthCheck: ParsedHealthCheck | null;
  readonly slowStart: ParsedSlowStart | null;
  readonly panicThresholdPercent: number;
}

/**
 * `admit()`'s answer for one pick: `admitted`; `refused` (an open circuit, or a half-open one whose
 * probe is out); or `shed` — slow start sheds this pick of a new endpoint: the endpoint is healthy,
 * so it takes the request when every other candidate is refused or unavailable.
 */
export type Admission = 'admitted' | 'refused' | 'shed';

/** Per-endpoint health for `mesh.stats()`. */
export interface EndpointHealthStats {
  /** `healthy`, `ejected` (open circuit), `half-open` (probe allowed), `unhealthy` (active check failing). */
  health: 'healthy' | 'ejected' | 'half-open' | 'unhealthy';
  /** Times ejected so far (the current ejection multiplier). */
  ejections: number;
}

/** Validate the health-related keys of a service config. */
export function parseHealthConfig(service: Raw, path: string): ParsedHealth {
  const p = (k: string): string => (path ? `${path}.${k}` : k);
  return Object.freeze({
    outlier: parseOutlier(service.outlierDetection, p('outlierDetection')),
    breaker: parseBreaker(service.circuitBreaker, p('circuitBreaker')),
    healthCheck: parseHealthCheck(service.healthCheck, p('healthCheck')),
    slowStart: parseSlowStart(service.slowStart, p('slowStart')),
    panicThresholdPercent: optNumber(service, 'panicThreshold', path, 50, { min: 0, max: 100 }),
  });
}

/** One bit per failing outcome kind, to say in an ejection's reason what its run was made of. */
const KIND_BITS: Partial<Record<AttemptOutcomeKind, number>> = { 'http-5xx': 1, 'gateway-error': 2, 'connect-failure': 4, reset: 8, timeout: 16 };
const HTTP_BITS = 1 | 2;
const LOCAL_KINDS: readonly AttemptOutcomeKind[] = ['connect-failure', 'reset', 'timeout'];

/**
 * The reason of an ejection for a run of `n` failures counted as `what` (5xx, gateway errors):
 * without splitExternalLocalOriginErrors, local-origin failures count as 5xx (Envoy's rule), and
 * the reason says so rather than call five timeouts "5 consecutive 5xx".
 */
function runReason(n: number, what: string, kinds: number): string {
  const local = LOCAL_KINDS.filter((k) => (kinds & KIND_BITS[k]!) !== 0).join(', ');
  if (local === '') return `${n} consecutive ${what}`;
  if ((kinds & HTTP_BITS) === 0) return `${n} consecutive local-origin failures (${local}), counted as ${what}`;
  return `${n} consecutive ${what} or local-origin failures (${local})`;
}

export class ServiceHealth {
  readonly #config: ParsedHealth;
  readonly #hooks: HealthHooks;
  readonly #checker: HealthChecker | null;
  readonly #circuits: Circuits;

  constructor(config: ParsedHealth, hooks: HealthHooks) {
    this.#config = config;
    this.#hooks = hooks;
    this.#checker = config.healthCheck
      ? new HealthChecker(config.healthCheck, hooks.service, hooks.random, (ep, healthy, detail) => this.#circuits.checked(ep, healthy, detail), (ep) => this.#circuits.passed(ep))
      : null;
    this.#circuits = new Circuits(config.outlier, config.breaker !== null, hooks);
  }

  /**
   * A new endpoint. `joined` is false for the first discovery answer: Envoy's slow start is
   * pointless when every endpoint is new, so only later arrivals ramp up.
   */
  add(endpoint: Endpoint, joined: boolean): void {
    const now = this.#hooks.now();
    this.#circuits.add(endpoint, this.#checker?.add(endpoint) ?? null, joined ? now : -Infinity);
  }

  /** Start on the endpoints of the health model this one replaces: each available again, none ramping up. */
  takeOver(endpoints: readonly Endpoint[]): void {
    for (const ep of endpoints) {
      ep.available = true;
      this.add(ep, false);
    }
  }

  remove(endpoint: Endpoint): void {
    if (this.#circuits.remove(endpoint)) this.#checker?.remove(endpoint);
  }

  /**
   * Right after a pick: may this endpoint take the request now? `panicking`: the endpoints the
   * picking target balances over although unavailable, because their level is in panic (Envoy
   * ignores health there), or null.
   */
  admit(endpoint: Endpoint, panicking: ReadonlySet<Endpoint> | null): Admission {
    const s = this.#circuits.get(endpoint);
    if (s === undefined) return 'admitted';
    if (s.circuit === 'half-open') {
      if (s.probing) return 'refused'; // exactly one trial
      s.probing = true;
      return 'admitted';
    }
    if (s.circuit === 'open') return panicking?.has(endpoint) ? 'admitted' : 'refused'; // in panic, health is ignored (Envoy)
    const ss = this.#config.slowStart;
    if (ss !== null && s.addedAt !== -Infinity) {
      const t = this.#hooks.now() - s.addedAt;
      if (t < ss.windowMs) {
        const share = Math.max(ss.minWeightPercent / 100, Math.pow(Math.max(t, 1) / ss.windowMs, 1 / ss.aggression));
        return this.#hooks.random() < share ? 'admitted' : 'shed';
      }
    }
    return 'admitted';
  }

  /**
   * A request `admit` let through was not sent after all (the endpoint's own rate limit refused
   * it): a half-open circuit's one trial is free again, for the next request to take.
   */
  unadmit(endpoint: Endpoint): void {
    const s = this.#circuits.get(endpoint);
    if (s !== undefined && s.circuit === 'half-open') s.probing = false;
  }

  /** One attempt's outcome, observed at `nowMs`. */
  record(endpoint: Endpoint, kind: AttemptOutcomeKind, nowMs: number): void {
    const s = this.#circuits.get(endpoint);
    if (s === undefined) return;
    if (s.errorRate === null && this.#config.breaker !== null) s.errorRate = new ErrorRate(this.#config.breaker, nowMs);
    if (!isFailure(kind)) {
      if (kind !== 'success') {
        // cancelled / invalid: says nothing about the endpoint; a cancelled probe frees the slot.
        if (s.circuit === 'half-open') s.probing = false;
        return;
      }
      s.c5xx = s.cGateway = s.cLocal = 0;
      s.windowRequests++;
      s.errorRate?.record(false, nowMs);
      if (s.circuit === 'half-open') this.#circuits.close(endpoint, s);
      return;
    }
    s.windowRequests++;
    s.windowFailures++;
    if (s.circuit === 'half-open') {
      this.#circuits.eject(endpoint, s, `probe failed (${kind})`, true);
      return;
    }
    if (s.circuit === 'open') return;
    const o = this.#config.outlier;
    const local = kind === 'connect-failure' || kind === 'reset' || kind === 'timeout';
    if (o !== null) {
      const bit = KIND_BITS[kind] ?? 0;
      // A run's kinds start afresh with its first failure (a count back at 0 ended the last run).
      if (!local || !o.split) {
        s.k5xx = s.c5xx === 0 ? bit : s.k5xx | bit;
        s.c5xx++;
      }
      // As Envoy's detector: another 5xx breaks a run of gateway errors, and (with the split) any
      // HTTP answer is a local-origin success that breaks a run of local-origin failures.
      if (kind === 'gateway-error' || (local && !o.split)) {
        s.kGateway = s.cGateway === 0 ? bit : s.kGateway | bit;
        s.cGateway++;
      } else if (!local) s.cGateway = 0;
      if (local && o.split) s.cLocal++;
      else if (!local) s.cLocal = 0;
      if (o.consecutive5xx > 0 && s.c5xx >= o.consecutive5xx) return this.#circuits.eject(endpoint, s, runReason(s.c5xx, '5xx', s.k5xx));
      if (o.consecutiveGateway > 0 && s.cGateway >= o.consecutiveGateway) return this.#circuits.eject(endpoint, s, runReason(s.cGateway, 'gateway errors', s.kGateway));
      if (o.split && o.consecutiveLocal > 0 && s.cLocal >= o.consecutiveLocal) return this.#circuits.eject(endpoint, s, `${s.cLocal} consecutive local-origin failures`);
    }
    if (s.errorRate?.record(true, nowMs)) this.#circuits.eject(endpoint, s, 'error rate over the rolling window');
  }

  stats(endpoint: Endpoint): EndpointHealthStats {
    const s = this.#circuits.get(endpoint);
    if (s === undefined) return { health: 'healthy', ejections: 0 };
    const health = s.circuit === 'open' ? 'ejected' : s.circuit === 'half-open' ? 'half-open' : s.check && !s.check.healthy ? 'unhealthy' : 'healthy';
    return { health, ejections: s.ejections };
  }

  /** Stop every timer (ejection expiry, sweeps, health checks, window rotation); resolves once the checks' connections are gone. */
  close(): Promise<void> {
    this.#circuits.stop();
    return this.#checker?.close() ?? Promise.resolve();
  }
}
