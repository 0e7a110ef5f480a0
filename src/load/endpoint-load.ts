/**
 * The load estimates of one endpoint, kept apart from the endpoint's identity (core/endpoint.ts):
 * requests in flight, counters, and the peak-EWMA latency estimate that latency-aware balancers
 * read. Attempts feed it (`start`, `end`, `observeLatency`, `observeFailure`); pickers only read.
 *
 * Peak EWMA as Finagle and tower (`load/peak_ewma.rs`) define it: a sample above the estimate
 * replaces it at once; a lower one is blended in with a weight that grows with the time since the
 * last sample, time constant `decayMs`. The same samples feed `recent` (load/recent-latency.ts),
 * the latency at a given RIF that the `prequal` balancer reads — only while a balancer of the
 * service reads it (`usesRecentLatency`: ServiceLoad.recentLatency).
 *
 * When the service's balancer reads load reports (`usesLoadReports`), the latest report the
 * endpoint sent about itself (ORCA, orca.ts) is kept too, as {@link ReportedLoad}.
 */
import type { LoadReport } from './orca.js';
import { RecentLatency } from './recent-latency.js';

/**
 * The named metric read as the endpoint's own requests in flight: `named_metrics.rif` — RIF is
 * Prequal's name for it (NSDI 2024); ORCA itself names no such metric.
 */
export const RIF_METRIC = 'rif';

/** The load an endpoint last reported about itself (one ORCA report, with the numbers balancers use). */
export interface ReportedLoad {
  readonly report: LoadReport;
  /** `application_utilization` when > 0, else `cpu_utilization` (gRPC A58, Envoy's client_side_weighted_round_robin). */
  readonly utilization: number;
  /** Requests per second the endpoint serves (`rps_fractional`). */
  readonly qps: number;
  /** Errors per second (`eps`). */
  readonly eps: number;
  /** The endpoint's own requests in flight (named metric {@link RIF_METRIC}); NaN when not reported. */
  readonly rif: number;
  /** When it arrived, on the clock of {@link EndpointLoad.observeLatency}. */
  readonly atMs: number;
}

/** Numbers shared by all endpoints of one service (bounded-load hashing reads the total). */
export interface ServiceLoad {
  /** Requests in flight over all the service's endpoints. */
  inFlight: number;
  /** True when a balancer of the service reads `recent` (its `usesRecentLatency`): samples feed it only then. */
  recentLatency: boolean;
}

/** Finagle's penalty for an endpoint with requests in flight but no latency sample yet. */
const UNSAMPLED_PENALTY = 1e6;
/** Least latency a failed request is counted as, in ms. */
const FAILURE_FLOOR_MS = 100;
/** Default time constant of the latency EWMA, ms (see balancers/peak-ewma.ts for why 300). */
export const DEFAULT_DECAY_MS = 300;

export class EndpointLoad {
  /** Requests currently in flight to this endpoint. */
  inFlight = 0;
  /** Requests completed (any outcome). */
  requests = 0;
  /** Requests that ended in a 5xx status or an error — not one the caller cancelled or that was the request's own fault (invalid). */
  failures = 0;
  /** The owning service's shared numbers. */
  readonly service: ServiceLoad;
  /** The latest valid load report, or null (kept only when a balancer of the service reads them). */
  reported: ReportedLoad | null = null;
  /**
   * The latest report a weight can be computed from (qps > 0 and utilization > 0, as gRPC A58
   * requires; a report of an idle endpoint leaves it in place), or null.
   */
  weightReport: ReportedLoad | null = null;
  /** Invalid load reports received (ignored). */
  invalidReports = 0;
  /**
   * Requests in flight at the endpoint that were not this client's, from its last report's RIF
   * (named metric {@link RIF_METRIC}) less this client's requests in flight when the reported
   * request was sent; 0 without such reports. What `prequal` adds to its own count while the
   * report is recent ({@link othersAtMs}).
   */
  othersInFlight = 0;
  /** When {@link othersInFlight} was reported (−Infinity: never). */
  othersAtMs = -Infinity;
  /** Recent latency by requests in flight (Prequal's signal), fed by the same samples. */
  readonly recent = new RecentLatency();

  #ewmaMs = 0;
  #stampMs = 0;
  /** Since when requests have been outstanding with no response: the age of the oldest one, roughly. */
  #busySinceMs = 0;
  readonly #decayMs: number;
  #weightSinceMs = NaN;

  constructor(decayMs: number = DEFAULT_DECAY_MS, service: ServiceLoad = { inFlight: 0, recentLatency: true }) {
    this.#decayMs = decayMs;
    this.service = service;
  }

  /**
   * A request starts at `nowMs` (the clock of {@link observeLatency}). Returns the requests that
   * were in flight before it — the RIF it met, to pass back with its latency.
   */
  start(nowMs: number): number {
    const rif = this.inFlight;
    if (rif === 0) this.#busySinceMs = nowMs;
    this.inFlight++;
    this.service.inFlight++;
    return rif;
  }

  /** A request ended (response ended, or failed). */
  end(failed: boolean): void {
    this.inFlight--;
    this.service.inFlight--;
    this.requests++;
    if (failed) this.failures++;
  }

  /**
   * A request that was never in flight on these books ended — a mirrored copy (layers/mirror.ts),
   * which balancers must not count as the callers' load: counted in `requests` (and `failures`) only.
   */
  ended(failed: boolean): void {
    this.requests++;
    if (failed) this.failures++;
  }

  /**
   * Feed a latency sample (time to response headers, ms) observed at `nowMs`, of a request sent
   * when `rif` others were in flight (what {@link start} returned). `failed` (a 5xx) counts the
   * sample as a failure for `recent`; the peak EWMA takes it as it is.
   */
  observeLatency(rttMs: number, nowMs: number, rif: number = this.inFlight, failed = false): void {
    this.#peak(rttMs, nowMs);
    if (this.service.recentLatency) this.recent.observe(rttMs, nowMs, rif, failed);
  }

  /**
   * Feed a failure with no response after `elapsedMs`. A refused connection fails in microseconds;
   * counting that as latency would make a dead endpoint the fastest one. A failure therefore
   * counts as at least twice the current estimate, and at least {@link FAILURE_FLOOR_MS}.
   */
  observeFailure(elapsedMs: number, nowMs: number, rif: number = this.inFlight): void {
    this.#peak(Math.max(elapsedMs, 2 * this.latencyMs(nowMs), FAILURE_FLOOR_MS), nowMs);
    if (this.service.recentLatency) this.recent.observe(elapsedMs, nowMs, rif, true);
  }

  #peak(rttMs: number, nowMs: number): void {
    this.#busySinceMs = nowMs;
    const cost = this.latencyMs(nowMs);
    this.#ewmaMs = rttMs > cost ? rttMs : cost + (rttMs - cost) * (1 - Math.exp(-(nowMs - this.#stampMs) / this.#decayMs));
    this.#stampMs = nowMs;
  }

  /** The peak-EWMA latency estimate in ms at `nowMs`, decayed toward 0 while no sample arrives. */
  latencyMs(nowMs: number): number {
    const ewma = this.#ewmaMs;
    if (ewma === 0) return 0;
    const idle = nowMs - this.#stampMs;
    // Under traffic the last sample is recent: skip exp() while the decay would be under 0.1 %.
    return idle <= this.#decayMs * 0.001 ? ewma : ewma * Math.exp(-idle / this.#decayMs);
  }

  /**
   * What the `prequal` balancer reads, written to `out` (nothing returned, so no double is boxed):
   * `out[0]` the time since the last latency sample, `out[1]` the recent latency at the current
   * RIF (`recent.atRif(inFlight)`), `out[2]` how long requests have been outstanding with no
   * answer (0 when none is in flight), all in ms at `nowMs`.
   */
  readRecent(nowMs: number, out: Float64Array): void {
    this.recent.read(this.inFlight, nowMs, out);
    out[2] = this.inFlight === 0 ? 0 : nowMs - this.#busySinceMs;
  }

  /**
   * Peak-EWMA cost: estimated latency × (in-flight + 1). An endpoint with requests in flight but no
   * sample yet scores a large penalty so a fresh endpoint is tried, but not flooded.
   */
  peakEwma(nowMs: number): number {
    const inFlight = this.inFlight;
    let cost = this.latencyMs(nowMs);
    if (inFlight === 0) return cost;
    if (cost === 0) return UNSAMPLED_PENALTY + inFlight;
    // Requests outstanding longer than the estimate prove it low: an idle slow endpoint whose
    // estimate has decayed gets one probe, not a burst, before its first answer comes back.
    const waiting = nowMs - this.#busySinceMs;
    if (waiting > cost) cost = waiting;
    return cost * (inFlight + 1);
  }

  /**
   * A valid load report arrived at `nowMs`, on the response to a request sent when this client had
   * `sentRif` other requests in flight to the endpoint (NaN: not known).
   */
  report(report: LoadReport, nowMs: number, sentRif = NaN): void {
    const named = report.namedMetrics[RIF_METRIC];
    if (named !== undefined && sentRif >= 0) {
      // The endpoint counted the requests in flight when ours arrived, ours among them.
      this.othersInFlight = named > sentRif ? named - sentRif : 0;
      this.othersAtMs = nowMs;
    }
    const r: ReportedLoad = Object.freeze({
      report,
      utilization: report.applicationUtilization > 0 ? report.applicationUtilization : report.cpuUtilization,
      qps: report.rpsFractional,
      eps: report.eps,
      rif: named === undefined ? NaN : named,
      atMs: nowMs,
    });
    this.reported = r;
    if (r.qps > 0 && r.utilization > 0) {
      this.weightReport = r;
      if (Number.isNaN(this.#weightSinceMs)) this.#weightSinceMs = nowMs;
    }
  }

  /**
   * Since when reports a weight can be computed from have come without a break (gRPC A58's
   * `non_empty_since`); NaN when none has come since the last {@link restartWeightReports}.
   */
  get weightReportsSinceMs(): number {
    return this.#weightSinceMs;
  }

  /**
   * The reports went stale for a reader (weighted-round-robin, after `weightExpirationPeriodMs`):
   * the next one starts a new run, so a blackout applies again (A58's reset of non_empty_since).
   */
  restartWeightReports(): void {
    this.#weightSinceMs = NaN;
  }
}
