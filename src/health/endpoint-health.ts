/**
 * ServiceHealth: the one model of endpoint health for a service.
 *
 * One state machine per endpoint, the circuit's: CLOSED (healthy) → OPEN (ejected) → HALF-OPEN
 * (probing) → CLOSED, or back to OPEN with a longer ejection. Two rules open it:
 *  - outlier detection (Envoy): N consecutive 5xx / gateway / local-origin failures;
 *  - the error rate over a rolling window (error-rate.ts), and optionally
 *    Envoy's failure-percentage sweep.
 * An ejection lasts `baseEjectionTimeMs × times ejected`, capped by `maxEjectionTimeMs`; at most
 * `maxEjectionPercent` of endpoints are ejected at once (one always may be). When it ends the
 * circuit half-opens: `admit()` lets exactly one request through as the probe; its success closes
 * the circuit, its failure re-opens it. While healthy, the ejection multiplier decays once per
 * interval. Active health checks are a second, independent gate (`unhealthy`), and slow start
 * sheds a share of a new endpoint's picks in `admit()`.
 *
 * The service calls: `add`/`remove` (discovery), `admit` (after each pick), `record` (each attempt's
 * outcome; the outcome object is reused — copy what you keep), `eligible` (building pickers: the
 * available endpoints, or all of them in panic). We call `hooks.changed()` when availability
 * changes, so the service rebuilds its pickers.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { optNumber, type Raw } from '../config/check.js';
import { isFailure, type AttemptOutcome } from './outcome.js';
import { ErrorRate } from './error-rate.js';
import { HealthChecker, type CheckState } from './health-check.js';
import {
  EJECTION_DEFAULTS,
  parseBreaker,
  parseHealthCheck,
  parseOutlier,
  parseSlowStart,
  type ParsedBreaker,
  type ParsedHealthCheck,
  type ParsedOutlier,
  type ParsedSlowStart,
} from './health-config.js';

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

/** What ServiceHealth may call on its service. */
export interface HealthHooks {
  readonly service: string;
  /** Availability of some endpoint changed: rebuild the pickers. */
  changed(): void;
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
}

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

type Circuit = 'closed' | 'open' | 'half-open';

interface State {
  circuit: Circuit;
  ejections: number;
  lastEjectedAt: number;
  timer: NodeJS.Timeout | null;
  probing: boolean;
  c5xx: number;
  cGateway: number;
  cLocal: number;
  /** Requests and failures in the current interval (failure-percentage rule). */
  windowRequests: number;
  windowFailures: number;
  errorRate: ErrorRate | null;
  check: CheckState | null;
  /** Slow start: when it joined (not for the initial set). */
  addedAt: number;
}

export class ServiceHealth {
  readonly #config: ParsedHealth;
  readonly #hooks: HealthHooks;
  readonly #states = new Map<Endpoint, State>();
  readonly #checker: HealthChecker | null;
  #sweep: NodeJS.Timeout | null = null;
  #panic = false;

  constructor(config: ParsedHealth, hooks: HealthHooks) {
    this.#config = config;
    this.#hooks = hooks;
    this.#checker = config.healthCheck
      ? new HealthChecker(config.healthCheck, hooks.service, hooks.random, (ep, healthy, detail) => this.#checked(ep, healthy, detail), (ep) => this.#passed(ep))
      : null;
    if (config.outlier) {
      this.#sweep = setInterval(() => this.#interval(), config.outlier.intervalMs);
      this.#sweep.unref?.();
    }
  }

  /**
   * A new endpoint. `joined` is false for the first discovery answer: Envoy's slow start is
   * pointless when every endpoint is new, so only later arrivals ramp up.
   */
  add(endpoint: Endpoint, joined: boolean): void {
    const now = this.#hooks.now();
    this.#states.set(endpoint, {
      circuit: 'closed',
      ejections: 0,
      lastEjectedAt: 0,
      timer: null,
      probing: false,
      c5xx: 0,
      cGateway: 0,
      cLocal: 0,
      windowRequests: 0,
      windowFailures: 0,
      errorRate: null, // made on the first outcome: endpoints never used cost no window
      check: this.#checker?.add(endpoint) ?? null,
      addedAt: joined ? now : -Infinity,
    });
  }

  remove(endpoint: Endpoint): void {
    const s = this.#states.get(endpoint);
    if (!s) return;
    if (s.timer) clearTimeout(s.timer);
    this.#checker?.remove(endpoint);
    this.#states.delete(endpoint);
  }

  /** Right after a pick: may this endpoint take the request now? */
  admit(endpoint: Endpoint): boolean {
    const s = this.#states.get(endpoint);
    if (s === undefined) return true;
    if (s.circuit === 'half-open') {
      if (s.probing) return false; // exactly one trial
      s.probing = true;
      return true;
    }
    if (s.circuit === 'open') return this.#panic; // in panic, health is ignored (Envoy)
    const ss = this.#config.slowStart;
    if (ss !== null && s.addedAt !== -Infinity) {
      const t = this.#hooks.now() - s.addedAt;
      if (t < ss.windowMs) {
        const share = Math.max(ss.minWeightPercent / 100, Math.pow(Math.max(t, 1) / ss.windowMs, 1 / ss.aggression));
        return this.#hooks.random() < share;
      }
    }
    return true;
  }

  /** One attempt's outcome. */
  record(endpoint: Endpoint, outcome: AttemptOutcome): void {
    const s = this.#states.get(endpoint);
    if (s === undefined) return;
    if (s.errorRate === null && this.#config.breaker !== null) s.errorRate = new ErrorRate(this.#config.breaker, outcome.nowMs);
    const kind = outcome.kind;
    if (!isFailure(kind)) {
      if (kind !== 'success') {
        // cancelled / invalid: says nothing about the endpoint; a cancelled probe frees the slot.
        if (s.circuit === 'half-open') s.probing = false;
        return;
      }
      s.c5xx = s.cGateway = s.cLocal = 0;
      s.windowRequests++;
      s.errorRate?.record(false, outcome.nowMs);
      if (s.circuit === 'half-open') this.#close(endpoint, s);
      return;
    }
    s.windowRequests++;
    s.windowFailures++;
    if (s.circuit === 'half-open') {
      this.#eject(endpoint, s, `probe failed (${kind})`, true);
      return;
    }
    if (s.circuit === 'open') return;
    const o = this.#config.outlier;
    const local = kind === 'connect-failure' || kind === 'reset' || kind === 'timeout';
    if (o !== null) {
      const countsAs5xx = !local || !o.split;
      if (countsAs5xx) s.c5xx++;
      if (kind === 'gateway-error' || (local && !o.split)) s.cGateway++;
      if (local && o.split) s.cLocal++;
      if (o.consecutive5xx > 0 && s.c5xx >= o.consecutive5xx) return this.#eject(endpoint, s, `${s.c5xx} consecutive 5xx`);
      if (o.consecutiveGateway > 0 && s.cGateway >= o.consecutiveGateway) return this.#eject(endpoint, s, `${s.cGateway} consecutive gateway errors`);
      if (o.split && o.consecutiveLocal > 0 && s.cLocal >= o.consecutiveLocal) return this.#eject(endpoint, s, `${s.cLocal} consecutive local-origin failures`);
    }
    if (s.errorRate?.record(true, outcome.nowMs)) this.#eject(endpoint, s, 'error rate over the rolling window');
  }

  /** Endpoints that may take traffic; all of `candidates` when too few are available (panic). */
  eligible(candidates: readonly Endpoint[]): readonly Endpoint[] {
    let available = 0;
    for (const e of candidates) if (e.available) available++;
    if (available === candidates.length) {
      this.#setPanic(false, available, candidates.length);
      return candidates;
    }
    const threshold = this.#config.panicThresholdPercent;
    const panic = threshold > 0 && (available * 100) / candidates.length < threshold;
    this.#setPanic(panic, available, candidates.length);
    return panic ? candidates : candidates.filter((e) => e.available);
  }

  stats(endpoint: Endpoint): EndpointHealthStats {
    const s = this.#states.get(endpoint);
    if (s === undefined) return { health: 'healthy', ejections: 0 };
    const health = s.circuit === 'open' ? 'ejected' : s.circuit === 'half-open' ? 'half-open' : s.check && !s.check.healthy ? 'unhealthy' : 'healthy';
    return { health, ejections: s.ejections };
  }

  /** Stop every timer (ejection expiry, sweeps, health checks, window rotation). */
  close(): void {
    for (const s of this.#states.values()) if (s.timer) clearTimeout(s.timer);
    if (this.#sweep) clearInterval(this.#sweep);
    this.#checker?.close();
  }

  // ===== transitions =====

  #eject(endpoint: Endpoint, s: State, reason: string, reopen = false): void {
    const { baseEjectionMs: base, maxEjectionMs: max, maxEjectionPercent: limit } = this.#config.outlier ?? EJECTION_DEFAULTS;
    if (!reopen) {
      // gRPC's rule: eject only while fewer than maxEjectionPercent are ejected (one always may be).
      let ejected = 0;
      for (const x of this.#states.values()) if (x.circuit !== 'closed') ejected++;
      if ((ejected * 100) / this.#states.size >= limit && ejected > 0) {
        this.#hooks.log.debug(`${endpoint.key}: not ejected (${reason}): ${ejected} already ejected, maxEjectionPercent ${limit}`);
        s.c5xx = s.cGateway = s.cLocal = 0;
        return;
      }
    }
    s.ejections++;
    const duration = Math.min(base * s.ejections, max);
    const from = s.circuit;
    s.circuit = 'open';
    s.probing = false;
    s.lastEjectedAt = this.#hooks.now();
    s.c5xx = s.cGateway = s.cLocal = 0;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.#halfOpen(endpoint, s), duration);
    s.timer.unref?.();
    const ev = this.#hooks.events;
    ev.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from, to: 'open' });
    ev.emit('ejection', { service: this.#hooks.service, endpoint: endpoint.key, reason, durationMs: duration, ejections: s.ejections });
    this.#hooks.log.debug(`${endpoint.key}: ${from} -> open for ${duration} ms (${reason})`);
    this.#setAvailable(endpoint, s);
  }

  #halfOpen(endpoint: Endpoint, s: State): void {
    s.timer = null;
    if (!this.#states.has(endpoint) || s.circuit !== 'open') return;
    s.circuit = 'half-open';
    s.probing = false;
    this.#hooks.events.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from: 'open', to: 'half-open' });
    this.#setAvailable(endpoint, s);
  }

  #close(endpoint: Endpoint, s: State): void {
    s.circuit = 'closed';
    s.probing = false;
    s.errorRate?.reset();
    const ev = this.#hooks.events;
    ev.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from: 'half-open', to: 'closed' });
    ev.emit('unejection', { service: this.#hooks.service, endpoint: endpoint.key, reason: 'probe succeeded' });
    this.#setAvailable(endpoint, s);
  }

  #checked(endpoint: Endpoint, healthy: boolean, detail: string): void {
    const s = this.#states.get(endpoint);
    if (!s) return;
    this.#hooks.events.emit('health-check', { service: this.#hooks.service, endpoint: endpoint.key, healthy, detail });
    this.#setAvailable(endpoint, s);
  }

  /**
   * A passing active check of a healthy endpoint ends its ejection and clears its failure counts
   * (Envoy's successful_active_health_check_uneject_host, on unless outlier detection turns it
   * off): what the check sees answer is back now, not when the ejection time runs out.
   */
  #passed(endpoint: Endpoint): void {
    const s = this.#states.get(endpoint);
    if (!s || s.circuit === 'closed' || this.#config.outlier?.unejectOnCheck === false) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    s.c5xx = s.cGateway = s.cLocal = 0;
    s.errorRate?.reset();
    const from = s.circuit;
    s.circuit = 'closed';
    s.probing = false;
    const ev = this.#hooks.events;
    ev.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from, to: 'closed' });
    ev.emit('unejection', { service: this.#hooks.service, endpoint: endpoint.key, reason: 'active health check passed' });
    this.#setAvailable(endpoint, s);
  }

  #setAvailable(endpoint: Endpoint, s: State): void {
    const available = s.circuit !== 'open' && (s.check === null || s.check.healthy);
    if (endpoint.available !== available) {
      endpoint.available = available;
      this.#hooks.changed();
    } else if (s.circuit === 'half-open') {
      this.#hooks.changed();
    }
  }

  #setPanic(active: boolean, available: number, total: number): void {
    if (active === this.#panic) return;
    this.#panic = active;
    this.#hooks.events.emit('panic', { service: this.#hooks.service, active, available, total });
  }

  /** Once per interval: decay ejection multipliers; the failure-percentage rule. */
  #interval(): void {
    const o = this.#config.outlier!;
    const fp = o.failurePercentage;
    let volume = 0;
    if (fp) for (const s of this.#states.values()) if (s.windowRequests >= fp.requestVolume) volume++;
    for (const [ep, s] of this.#states) {
      if (s.circuit === 'closed' && s.ejections > 0 && this.#hooks.now() - s.lastEjectedAt > o.intervalMs) s.ejections--;
      if (fp && volume >= fp.minimumHosts && s.circuit === 'closed' && s.windowRequests >= fp.requestVolume) {
        if ((s.windowFailures * 100) / s.windowRequests >= fp.threshold) this.#eject(ep, s, `failure percentage ${Math.round((s.windowFailures * 100) / s.windowRequests)} %`);
      }
      s.windowRequests = 0;
      s.windowFailures = 0;
    }
  }
}
