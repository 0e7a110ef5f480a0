/**
 * The circuits of one service's endpoints: each endpoint's health state, and the transitions of
 * its state machine — CLOSED (healthy) → OPEN (ejected) → HALF-OPEN (probing) → CLOSED, or back
 * to OPEN with a longer ejection. ServiceHealth (endpoint-health.ts) counts the outcomes and says
 * when; here an ejection is carried out while fewer than `maxEjectionPercent` of endpoints are
 * ejected (gRPC's rule: with none ejected one may be, unless it is 0), for `baseEjectionTimeMs × times ejected` capped by
 * `maxEjectionTimeMs`, after which the circuit half-opens. A probe's success closes it, and so does
 * a passing active health check (Envoy's successful_active_health_check_uneject_host). Once per
 * outlier-detection interval the sweep decays the ejection multipliers and applies Envoy's
 * failure-percentage rule; it runs whenever a rule ejects — with outlier detection off and the
 * error-rate rule on, at the default interval, or a flapping endpoint's ejections would only ever
 * grow to the cap. Every transition emits its event and sets `endpoint.available`;
 * `hooks.changed()` tells the service to rebuild its pickers.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import type { ErrorRate } from './error-rate.js';
import type { CheckState } from './health-check.js';
import { EJECTION_DEFAULTS, type ParsedOutlier } from './health-config.js';

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

type Circuit = 'closed' | 'open' | 'half-open';

/** One endpoint's health: its circuit, failure counts and the windows they are judged over. */
export interface EndpointState {
  circuit: Circuit;
  ejections: number;
  lastEjectedAt: number;
  timer: NodeJS.Timeout | null;
  probing: boolean;
  c5xx: number;
  cGateway: number;
  /** The outcome kinds in the current runs of `c5xx` and `cGateway` (KIND_BITS), for the ejection's reason. */
  k5xx: number;
  kGateway: number;
  cLocal: number;
  /** Requests and failures in the current interval (failure-percentage rule). */
  windowRequests: number;
  windowFailures: number;
  errorRate: ErrorRate | null;
  check: CheckState | null;
  /** Slow start: when it joined (not for the initial set). */
  addedAt: number;
}

export class Circuits {
  readonly #outlier: ParsedOutlier | null;
  readonly #hooks: HealthHooks;
  readonly #states = new Map<Endpoint, EndpointState>();
  /** The sweep's period (0: no rule ejects, so there is no sweep). */
  readonly #intervalMs: number;
  #sweep: NodeJS.Timeout | null = null;

  /** `errorRate`: the error-rate rule is on (it ejects, so its ejections decay too). */
  constructor(outlier: ParsedOutlier | null, errorRate: boolean, hooks: HealthHooks) {
    this.#outlier = outlier;
    this.#hooks = hooks;
    this.#intervalMs = outlier?.intervalMs ?? (errorRate ? EJECTION_DEFAULTS.intervalMs : 0);
    if (this.#intervalMs > 0) {
      this.#sweep = setInterval(() => this.#interval(), this.#intervalMs);
      this.#sweep.unref?.();
    }
  }

  get(endpoint: Endpoint): EndpointState | undefined {
    return this.#states.get(endpoint);
  }

  /** A new endpoint, its circuit closed; `addedAt` is -Infinity for one of the initial set. */
  add(endpoint: Endpoint, check: CheckState | null, addedAt: number): void {
    this.#states.set(endpoint, {
      circuit: 'closed',
      ejections: 0,
      lastEjectedAt: 0,
      timer: null,
      probing: false,
      c5xx: 0,
      cGateway: 0,
      k5xx: 0,
      kGateway: 0,
      cLocal: 0,
      windowRequests: 0,
      windowFailures: 0,
      errorRate: null, // made on the first outcome: endpoints never used cost no window
      check,
      addedAt,
    });
  }

  /** Forget an endpoint; false when it was not known. */
  remove(endpoint: Endpoint): boolean {
    const s = this.#states.get(endpoint);
    if (!s) return false;
    if (s.timer) clearTimeout(s.timer);
    this.#states.delete(endpoint);
    return true;
  }

  /** Stop every timer: the ejections' expiry and the interval sweep. */
  stop(): void {
    for (const s of this.#states.values()) if (s.timer) clearTimeout(s.timer);
    if (this.#sweep) clearInterval(this.#sweep);
  }

  // ===== transitions =====

  /** Open the circuit (`reopen`: a failed probe, which the ejection cap does not hold back). */
  eject(endpoint: Endpoint, s: EndpointState, reason: string, reopen = false): void {
    const { baseEjectionMs: base, maxEjectionMs: max, maxEjectionPercent: limit } = this.#outlier ?? EJECTION_DEFAULTS;
    if (!reopen) {
      // gRPC's rule (A50), and Envoy's before always_eject_one_host: eject only while fewer than
      // maxEjectionPercent of the endpoints are ejected, counted before this one — so with none
      // ejected one always may be, unless the limit is 0, which ejects nothing.
      let ejected = 0;
      for (const x of this.#states.values()) if (x.circuit !== 'closed') ejected++;
      if ((ejected * 100) / this.#states.size >= limit) {
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

  #halfOpen(endpoint: Endpoint, s: EndpointState): void {
    s.timer = null;
    if (!this.#states.has(endpoint) || s.circuit !== 'open') return;
    s.circuit = 'half-open';
    s.probing = false;
    this.#hooks.events.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from: 'open', to: 'half-open' });
    this.#setAvailable(endpoint, s);
  }

  /** Close the circuit (a half-open one's probe succeeded, or — `passed` — a check did). */
  close(endpoint: Endpoint, s: EndpointState, reason = 'probe succeeded'): void {
    const from = s.circuit;
    s.circuit = 'closed';
    s.probing = false;
    s.errorRate?.reset();
    const ev = this.#hooks.events;
    ev.emit('circuit', { service: this.#hooks.service, endpoint: endpoint.key, from, to: 'closed' });
    ev.emit('unejection', { service: this.#hooks.service, endpoint: endpoint.key, reason });
    this.#setAvailable(endpoint, s);
  }

  /** The active health check marked the endpoint healthy or unhealthy. */
  checked(endpoint: Endpoint, healthy: boolean, detail: string): void {
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
  passed(endpoint: Endpoint): void {
    const s = this.#states.get(endpoint);
    if (!s || s.circuit === 'closed' || this.#outlier?.unejectOnCheck === false) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    s.c5xx = s.cGateway = s.cLocal = 0;
    this.close(endpoint, s, 'active health check passed');
  }

  #setAvailable(endpoint: Endpoint, s: EndpointState): void {
    const available = s.circuit !== 'open' && (s.check === null || s.check.healthy);
    if (endpoint.available !== available) {
      endpoint.available = available;
      this.#hooks.changed();
    } else if (s.circuit === 'half-open') {
      this.#hooks.changed();
    }
  }

  /** Once per interval: decay ejection multipliers; the failure-percentage rule (outlier detection's). */
  #interval(): void {
    const fp = this.#outlier?.failurePercentage ?? null;
    let volume = 0;
    if (fp) for (const s of this.#states.values()) if (s.windowRequests >= fp.requestVolume) volume++;
    for (const [ep, s] of this.#states) {
      if (s.circuit === 'closed' && s.ejections > 0 && this.#hooks.now() - s.lastEjectedAt > this.#intervalMs) s.ejections--;
      if (fp && volume >= fp.minimumHosts && s.circuit === 'closed' && s.windowRequests >= fp.requestVolume) {
        if ((s.windowFailures * 100) / s.windowRequests >= fp.threshold) this.eject(ep, s, `failure percentage ${Math.round((s.windowFailures * 100) / s.windowRequests)} %`);
      }
      s.windowRequests = 0;
      s.windowFailures = 0;
    }
  }
}
