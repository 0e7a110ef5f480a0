/**
 * ServiceHealth: the one model of endpoint health for a service — passive outlier detection,
 * per-endpoint circuit breaking, active health checks, slow start and the panic threshold.
 *
 * The service calls it at four points and knows nothing else about it:
 *  - `add` / `remove` as discovery changes the endpoint set;
 *  - `admit(endpoint)` right after a pick (false: the service picks again without it — how a
 *    half-open circuit lets exactly one probe through, and how slow start sheds a share);
 *  - `record(endpoint, outcome)` once per attempt;
 *  - `eligible(all)` when it rebuilds its picker (ejected endpoints left out, unless in panic).
 * It calls `hooks.changed()` whenever an endpoint's availability changes, so the service rebuilds.
 *
 * THIS FILE IS A PLACEHOLDER being replaced by the full implementation (outlier detection,
 * opossum breaker, health checks, slow start): today every endpoint is always available.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { MeshEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Raw } from '../config/check.js';
import type { AttemptOutcome } from './outcome.js';

/** Service config keys this module owns (validated by {@link parseHealthConfig}). */
export const HEALTH_CONFIG_KEYS = ['outlierDetection', 'circuitBreaker', 'healthCheck', 'slowStart', 'panicThreshold'] as const;

/** Parsed, frozen health configuration of one service. */
export interface ParsedHealth {
  readonly panicThresholdPercent: number;
}

/** What ServiceHealth may call on its service. */
export interface HealthHooks {
  readonly service: string;
  /** Availability of some endpoint changed: rebuild the picker. */
  changed(): void;
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
}

/** Per-endpoint health for `mesh.stats()`. */
export interface EndpointHealthStats {
  /** `healthy`, `ejected` (outlier detection / open circuit), `half-open` (probe allowed), `unhealthy` (active check failing). */
  health: 'healthy' | 'ejected' | 'half-open' | 'unhealthy';
  /** Times ejected so far. */
  ejections: number;
}

/** Validate the health-related keys of a service config. */
export function parseHealthConfig(service: Raw, path: string): ParsedHealth {
  void service;
  void path;
  return Object.freeze({ panicThresholdPercent: 50 });
}

export class ServiceHealth {
  readonly #config: ParsedHealth;
  readonly #hooks: HealthHooks;

  constructor(config: ParsedHealth, hooks: HealthHooks) {
    this.#config = config;
    this.#hooks = hooks;
  }

  add(endpoint: Endpoint): void {
    void endpoint;
  }

  remove(endpoint: Endpoint): void {
    void endpoint;
  }

  admit(endpoint: Endpoint): boolean {
    void endpoint;
    return true;
  }

  record(endpoint: Endpoint, outcome: AttemptOutcome): void {
    void endpoint;
    void outcome;
  }

  /** Endpoints that may take traffic; all of `candidates` when too few are available (panic). */
  eligible(candidates: readonly Endpoint[]): readonly Endpoint[] {
    void this.#config;
    void this.#hooks;
    return candidates;
  }

  stats(endpoint: Endpoint): EndpointHealthStats {
    void endpoint;
    return { health: 'healthy', ejections: 0 };
  }

  /** Stop timers (ejection expiry, health checks). */
  close(): void {}
}
