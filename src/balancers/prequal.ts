/**
 * `prequal` (the default): Prequal's hot–cold rule (Wydrowski et al., "Load is not
 * what you should balance: Introducing Prequal", NSDI 2024), fed by what this client measures
 * instead of probe replies.
 *
 *  1. Candidates: every endpoint when there are at most {@link FULL_SCAN_MAX} (or `choiceCount`),
 *     else `choiceCount` (default 2, as power-of-two-choices) distinct endpoints sampled by weight.
 *  2. Hot or cold: a candidate is *hot* when its requests in flight (RIF, per unit of weight) are
 *     above the `hotQuantile` (default 0.84 = 2^-0.25, the paper's Q_RIF) of RIF — over every
 *     endpoint's current RIF when each is a candidate (linear between order statistics: of five,
 *     the busiest is hot unless tied; of two, the busier — least-request, latency breaking ties),
 *     else a running estimate over the candidates seen lately (as Prequal's is over its pool of
 *     recent probes; see balancers/hot-threshold.ts) — or above twice the mean RIF + 1 (ours, for
 *     small fleets: see balancers/hot-threshold.ts).
 *  3. Pick the cold candidate with the lowest latency estimate *at its current RIF*
 *     (load/recent-latency.ts), times 1 + ½ RIF ÷ (threshold + 1) — at most 1.5×, so RIF only
 *     breaks near-ties (ours: with exact comparisons, noise in the estimates herded a healthy
 *     fleet of four onto two, at 0.7× round robin's requests/s; now it is shared as evenly, and
 *     an idle replica never beats a cold one less than 1.5× as fast; with up to 2×, stalls that
 *     inflated the fast replicas' estimates let the 10× slower one in more often, simulated).
 *     A hot candidate's estimate counts {@link HOT_FACTOR} (4) times over, or (RIF + 1) ÷
 *     (threshold + 1) times if that is more: it wins only over cold ones more than 4× slower
 *     (and, every one hot, the lowest such cost wins, where Prequal takes the lowest RIF).
 *     Prequal passes hot replicas over whatever the cold ones' latency; but one client's RIFs are
 *     small numbers — 2 in flight is "hot" when the typical is 0 or 1 — and the strict rule sent
 *     a replica whose requests were timing out a request whenever the sampled fast candidates had
 *     two in flight (bench/slow-replica.mjs; in a simulated closed loop of ten replicas at 64 in
 *     flight it gave the 10× slower one 1.2 % of requests, 0 % now).
 *
 * Why not peak EWMA's latency × (RIF + 1): that cost lets an idle slow replica undercut a busy
 * fast one (10 ms × 1 < 1.5 ms × 8), so with 32 requests in flight over five replicas the slow one
 * kept its share. Here RIF weighs little on cold candidates: an idle replica that answers in
 * 10 ms reads 10 ms, and loses to every cold fast one.
 *
 * The latency estimate must not forget a slow replica because it gets few requests, nor keep a
 * recovered one out for good. So, for a candidate with no sample in the last second (AGE_OUT_MS):
 *  - its last estimate is scaled by √(AGE_OUT_MS / age): one R× slower than the rest gets a
 *    request — a probe — after about R² s (so a replica that was 2× slower is tried again within
 *    4 s, a 10× slower one every MAX_IDLE_MS); and by 1 + RIF / 2, as an estimate nothing has
 *    confirmed lately: a probe is one request, not a burst, while a burst after a quiet spell
 *    still goes to the replicas that were fast (× (RIF + 1), peak EWMA's factor, let an idle slow
 *    replica undercut fast ones that had two requests each at the start of a burst: measured);
 *  - idle for {@link MAX_IDLE_MS}, or never sampled, it is probed at the next pick that sees it
 *    (the stalest first);
 *  - with requests in flight and no answer for AGE_OUT_MS (stuck, or a probe not back yet after
 *    MAX_IDLE_MS), it is unanswered: ranked after every cold candidate with an estimate, so it
 *    gets one request, not a burst, until it answers.
 * A probe's answer starts the estimate afresh, so a recovered replica is back on its first fast
 * answer. With too little traffic to keep estimates current, choices drift toward the stalest —
 * Prequal falls back to random with too few probes.
 *
 * With `reportedRif: true`, RIF counts every client's requests when the replica says how many it
 * has (an ORCA load report with the named metric `rif`, as `mesh.inbound()` sends on every
 * response): the requests in flight there that were not ours, as of its last report within
 * AGE_OUT_MS, are added to ours ({@link writeRif}). Off by default, because measured
 * (bench/load-reports.mjs, four callers, one replica CPU-bound) it did worse: a replica whose
 * event loop is saturated counts only the requests it has parsed — the rest wait in the kernel,
 * unseen — so it reports less than the fast replicas, looks coldest, and got 3.9–4.9 % of requests
 * against 1.6–3.9 % without reports. Latency needs no report: it is what we measure.
 * `pick` allocates nothing: candidates, RIFs and estimates go to typed arrays made with the picker,
 * no double crosses a call (a double returned or passed through a call the compiler does not
 * inline is boxed), and sampling draws from the picker's own xorshift stream, seeded from
 * `deps.random` when it is built. Only the injected clock's result is not ours to control.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { BalancerDefinition, BalancerDeps, PickContext, Picker, PickResult } from './balancer.js';
import { AliasTable } from './alias-table.js';
import * as hot from './hot-threshold.js';
import * as recent from '../load/recent-latency.js';
import { checkNumber, optBoolean, rejectUnknown } from '../config/check.js';

// Module-local copies of what pick uses from other modules: under vite-node (the tests and the
// pick bench) every read of an imported binding goes through a getter, which tripled pick's cost.
const AGE_OUT_MS = recent.AGE_OUT_MS;
const hotThreshold = hot.hotThreshold;
const runningThreshold = hot.runningThreshold;

/** Services with at most this many endpoints have every one as a candidate on every pick. */
export const FULL_SCAN_MAX = 8;
/** Candidates' RIFs the sampled mode's threshold starts from, sampled when the picker is built. */
const SEED_SAMPLES = 16;
/** Draws per candidate slot before a linear scan (a draw skipped or already chosen). */
const DRAWS = 4;
/** Idle this long (ms) without a sample, an endpoint is probed whatever its last estimate. */
export const MAX_IDLE_MS = 10 * AGE_OUT_MS;
/** A hot candidate's estimate counts this many times over (or its RIF ÷ the threshold's, if more). */
export const HOT_FACTOR = 4;
/** How much RIF weighs on a cold candidate: its estimate counts up to 1 + this times over. */
const COLD_RIF_WEIGHT = 0.5;
/** Score of a busy candidate that has not answered for a second: after every other (estimates are ms). */
const UNANSWERED = 1e12;

export interface PrequalOptions {
  /** Endpoints sampled per pick when there are more than {@link FULL_SCAN_MAX}; 2–100. @default 2 */
  choiceCount: number;
  /** Quantile of RIF above which a candidate is hot; 0.5–0.99 (the paper: 0.6–0.9 work). @default 0.84 */
  hotQuantile: number;
  /** Count the requests in flight replicas report (ORCA `rif`) that were not ours. @default false */
  reportedRif: boolean;
}

export const PREQUAL_DEFAULTS: PrequalOptions = Object.freeze({ choiceCount: 2, hotQuantile: 0.84, reportedRif: false });

/**
 * Writes the requests in flight at `e` per unit of weight to `out[i]`: this client's, plus — when
 * `clock[1]` is 1 (`reportedRif`) — the other clients' as the endpoint last reported them
 * (EndpointLoad.othersInFlight) if that report is at most AGE_OUT_MS older than `clock[0]`. Hot or cold is decided from this alone. (It writes
 * instead of returning, and reads the time from an array: a double returned from or passed to a
 * call the compiler does not inline is boxed, and pick must not allocate.)
 */
export function writeRif(e: Endpoint, out: Float64Array, i: number, clock: Float64Array): void {
  const load = e.load;
  const others = clock[1] === 1 && clock[0]! - load.othersAtMs <= AGE_OUT_MS ? load.othersInFlight : 0;
  out[i] = (load.inFlight + others) / e.weight;
}

class PrequalPicker implements Picker {
  readonly #eps: readonly Endpoint[];
  readonly #table: AliasTable;
  readonly #deps: BalancerDeps;
  readonly #full: boolean;
  readonly #choices: number;
  /** This pick's candidates and their RIFs (scratch, reused). */
  readonly #cands: Endpoint[];
  readonly #rifs: Float64Array;
  readonly #sorted: Float64Array;
  /** Full scan: each candidate's index in the endpoint list. */
  readonly #index: Uint32Array;
  /** What EndpointLoad.readRecent writes: [age of the last sample, estimate at the RIF, time unanswered]. */
  readonly #read = new Float64Array(3);
  /** This pick's clock reading in [0]; 1 in [1] when reported RIFs count (see writeRif). */
  readonly #clock = new Float64Array(2);
  /**
   * The hot threshold in #hot[0]; sampled mode: the running quantile in [1], the mean RIF in [2];
   * `hotQuantile` in [3] (read from here, not a field, so that no call is passed a boxed double).
   */
  readonly #hot = new Float64Array(4);
  /** Sampled mode: xorshift32 state, seeded from deps.random at build (so tests stay deterministic). */
  readonly #rng = new Uint32Array(1);
  /** Full scan: where the next scan starts (after the last endpoint picked), so that ties rotate. */
  #start = 0;

  constructor(endpoints: readonly Endpoint[], options: PrequalOptions, deps: BalancerDeps) {
    const n = endpoints.length;
    this.#eps = endpoints;
    this.#deps = deps;
    this.#hot[3] = options.hotQuantile;
    this.#clock[1] = options.reportedRif ? 1 : 0;
    this.#full = n <= Math.max(FULL_SCAN_MAX, options.choiceCount);
    this.#choices = this.#full ? n : options.choiceCount;
    this.#table = new AliasTable(this.#full ? [1] : endpoints.map((e) => e.weight));
    this.#cands = new Array<Endpoint>(this.#choices).fill(endpoints[0]!);
    this.#rifs = new Float64Array(this.#choices);
    this.#sorted = new Float64Array(Math.max(SEED_SAMPLES, this.#choices));
    this.#index = new Uint32Array(this.#full ? this.#choices : 0);
    this.#rng[0] = Math.floor(deps.random() * 0xffffffff) || 1;
    if (!this.#full) {
      // The running threshold starts from the RIFs of a few endpoints now.
      const seen = new Float64Array(SEED_SAMPLES);
      this.#clock[0] = deps.now();
      for (let k = 0; k < SEED_SAMPLES; k++) writeRif(endpoints[Math.floor(deps.random() * n)]!, seen, k, this.#clock);
      hotThreshold(seen, SEED_SAMPLES, this.#sorted, this.#hot);
      let sum = 0;
      for (let k = 0; k < SEED_SAMPLES; k++) sum += seen[k]!;
      this.#hot[1] = this.#hot[0]!;
      this.#hot[2] = sum / SEED_SAMPLES;
    }
  }

  pick(ctx: PickContext): PickResult {
    const t = ctx.nowMs;
    this.#clock[0] = t === undefined ? this.#deps.now() : t;
    const m = this.#full ? this.#everyEndpoint(ctx) : this.#sampled(ctx);
    if (m === 0) return this.#deps.noEndpoint;
    const cands = this.#cands;
    if (m === 1) return cands[0]!.picked;
    const rifs = this.#rifs;
    let threshold: number;
    if (this.#full) {
      hotThreshold(rifs, m, this.#sorted, this.#hot);
      threshold = this.#hot[0]!;
    } else {
      threshold = this.#hot[0]!; // from the RIFs seen before this pick
      runningThreshold(rifs, m, this.#hot);
    }
    const now = this.#clock[0]!;
    const read = this.#read;
    let best = 0;
    let bestScore = Infinity;
    // The score, lower is better (see the header for the cases). Cold: the latency estimate, × up
    // to 1.5 for RIF; hot: × HOT_FACTOR or more; probes are negative; unanswered ones come after
    // all others. Equal scores: the fewer in flight, then the scan's order.
    for (let i = 0; i < m; i++) {
      const rif = rifs[i]!;
      const load = cands[i]!.load;
      const inFlight = load.inFlight;
      load.readRecent(now, read);
      const age = read[0]!;
      let score: number;
      if (age <= AGE_OUT_MS) score = read[1]! * (rif > threshold ? 1 : 1 + (COLD_RIF_WEIGHT * rif) / (threshold + 1));
      else if (inFlight > 0 && (age >= MAX_IDLE_MS || read[2]! > AGE_OUT_MS)) score = UNANSWERED + rif;
      else if (age >= MAX_IDLE_MS) score = -age; // idle: a probe; never sampled is -Infinity
      else score = read[1]! * Math.sqrt(AGE_OUT_MS / age) * (1 + inFlight / 2);
      if (rif > threshold && score > 0 && score < UNANSWERED) {
        const excess = (rif + 1) / (threshold + 1);
        score *= excess > HOT_FACTOR ? excess : HOT_FACTOR;
      }
      if (i === 0 || score < bestScore || (score === bestScore && rif < rifs[best]!)) {
        best = i;
        bestScore = score;
      }
    }
    if (this.#full) {
      const next = this.#index[best]! + 1;
      this.#start = next === this.#eps.length ? 0 : next;
    }
    return cands[best]!.picked;
  }

  /** Every endpoint not skipped becomes a candidate, starting after the last one picked; returns how many. */
  #everyEndpoint(ctx: PickContext): number {
    const eps = this.#eps;
    const n = eps.length;
    const start = this.#start;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const e = eps[i]!;
      if (ctx.skip(e)) continue;
      this.#index[m] = i;
      this.#cands[m] = e;
      writeRif(e, this.#rifs, m++, this.#clock);
    }
    return m;
  }

  /** `choiceCount` distinct endpoints by weight, none skipped (fewer only if fewer are left). */
  #sampled(ctx: PickContext): number {
    const eps = this.#eps;
    const n = eps.length;
    const cands = this.#cands;
    const rng = this.#rng;
    let m = 0;
    for (let c = 0; c < this.#choices; c++) {
      let e: Endpoint | undefined;
      for (let k = 0; k < DRAWS && e === undefined; k++) {
        let x = rng[0]!;
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        rng[0] = x;
        const cand = eps[this.#table.sampleInt(rng[0]! >>> 2)]!; // 30 bits: a small integer, never boxed
        if (!ctx.skip(cand) && !has(cands, m, cand)) e = cand;
      }
      if (e === undefined) {
        const start = rng[0]! % n;
        for (let k = 0; k < n && e === undefined; k++) {
          const cand = eps[(start + k) % n]!;
          if (!ctx.skip(cand) && !has(cands, m, cand)) e = cand;
        }
        if (e === undefined) break;
      }
      cands[m] = e;
      writeRif(e, this.#rifs, m++, this.#clock);
    }
    return m;
  }
}

function has(list: readonly Endpoint[], m: number, e: Endpoint): boolean {
  for (let i = 0; i < m; i++) if (list[i] === e) return true;
  return false;
}

export const prequal: BalancerDefinition<PrequalOptions> = {
  create: (endpoints, options, deps) => new PrequalPicker(endpoints, options, deps),
  usesLoadReports: (options) => options.reportedRif,
  usesRecentLatency: true,
  parseOptions(raw, path) {
    rejectUnknown(raw, ['choiceCount', 'hotQuantile', 'reportedRif'], path);
    return {
      choiceCount: raw.choiceCount === undefined ? PREQUAL_DEFAULTS.choiceCount : checkNumber(raw.choiceCount, `${path}.choiceCount`, { integer: true, min: 2, max: 100 }),
      hotQuantile: raw.hotQuantile === undefined ? PREQUAL_DEFAULTS.hotQuantile : checkNumber(raw.hotQuantile, `${path}.hotQuantile`, { min: 0.5, max: 0.99 }),
      reportedRif: optBoolean(raw, 'reportedRif', path, PREQUAL_DEFAULTS.reportedRif),
    };
  },
};
