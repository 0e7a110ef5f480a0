/**
 * Metrics through OpenTelemetry (`@opentelemetry/api`, an optional peer dependency: it is loaded
 * only by {@link enableMetrics}). Instruments:
 *  - `http.client.request.duration` (histogram, s) — the HTTP client semantic conventions:
 *    `http.request.method`, `http.response.status_code`, `server.address`, `server.port`,
 *    `error.type` when it failed; plus `meshlet.service` and `meshlet.subset`;
 *  - counters `meshlet.retries`, `meshlet.retry_budget.exhausted`, `meshlet.hedges`,
 *    `meshlet.hedge_budget.exhausted`, `meshlet.ejections`,
 *    `meshlet.rate_limited`, `meshlet.overloaded`, `meshlet.discovery.updates`,
 *    `meshlet.discovery.errors`, `meshlet.circuit.transitions` (by `meshlet.circuit.state`);
 *  - observed from `mesh.stats()`: `meshlet.endpoint.in_flight` (gauge),
 *    `meshlet.endpoint.requests` (counter), `meshlet.endpoint.healthy` (gauge: 1 healthy,
 *    0 ejected / half-open / unhealthy / draining), `meshlet.concurrency.limit` (gauge per
 *    service: the in-flight slots allowed now — `maxRequests`, or the adaptive limit);
 *  - the inbound side (`mesh.inbound`, …), per entry point (`meshlet.inbound.entry`):
 *    `meshlet.inbound.in_flight` (gauge), `meshlet.inbound.requests` (counter),
 *    `meshlet.inbound.concurrency.limit` (gauge, entry points with limits), and the counter
 *    `meshlet.inbound.refused` (by `http.response.status_code`: 503 concurrency, 429 rate).
 * The counters and the histogram come from `mesh.on(...)` events, the observed instruments from
 * `mesh.stats()` in one batch callback per meter; `dispose()`, or the mesh's `close()` once it has
 * settled, ends a mesh's registration.
 *
 * One meter, one set of series: every mesh published on a meter feeds the same instruments (the
 * default meter, `metrics.getMeter('meshlet')`, is one per process), and data points with the same
 * attributes are combined — the event counters and the histogram by the SDK, the observed ones
 * here: counts and in-flight requests are added up, `healthy` is 1 when any is, a concurrency limit
 * is the sum of the slots. The same holds within one mesh for an endpoint that `stats()` lists twice
 * (removed and brought back while still draining). The observed counters never go down: each
 * keeps, per series, what every endpoint object / entry point / mesh added to it, also once that
 * one is gone (as an event counter keeps what a closed mesh counted). `meshName` adds the attribute
 * `meshlet.mesh` to every data point, for a series per mesh.
 */
import type { Mesh } from '../mesh.js';
import type { Disposable } from '../core/events.js';
import type { Endpoint } from '../core/endpoint.js';
import { InvalidConfigError } from '../core/errors.js';

type Observe = (result: { observe(instrument: object, value: number, attributes?: object): void }) => void;

/** The parts of `@opentelemetry/api`'s Meter meshlet uses. */
interface Meter {
  createHistogram(name: string, options?: object): { record(value: number, attributes?: object): void };
  createCounter(name: string, options?: object): { add(value: number, attributes?: object): void };
  createObservableGauge(name: string, options?: object): object;
  createObservableCounter(name: string, options?: object): object;
  addBatchObservableCallback(cb: Observe, instruments: object[]): void;
  removeBatchObservableCallback(cb: Observe, instruments: object[]): void;
}

export interface MetricsOptions {
  /** A Meter to use; default: `metrics.getMeter('meshlet')` from `@opentelemetry/api`. */
  meter?: Meter;
  /**
   * Set as the attribute `meshlet.mesh` on every data point, to tell apart meshes published on one
   * meter (otherwise their data points of the same attributes are added up). Give a name that stays
   * the same across restarts and config reloads ("orders-api"), not one per mesh object.
   * @default none: no `meshlet.mesh` attribute
   */
  meshName?: string;
}

type Attrs = Record<string, string | number>;

/** One series of an observed instrument in one collection: its attributes and combined value. */
interface Point {
  readonly instrument: object;
  readonly attrs: Attrs;
  value: number;
}

/** A mesh published on a meter. */
interface Registration {
  readonly mesh: Mesh;
  readonly extra: Attrs;
  /** Requests each endpoint object had finished at the last collection (they only grow). */
  readonly endpointSeen: Map<Endpoint, { readonly attrs: Attrs; seen: number }>;
  /** The same per inbound entry point. */
  readonly inboundSeen: Map<string, number>;
}

/** The instruments of one meter, shared by every mesh published on it, and the observed counters' totals. */
interface Shared {
  readonly duration: ReturnType<Meter['createHistogram']>;
  readonly counters: Record<CounterName, ReturnType<Meter['createCounter']>>;
  readonly inFlight: object;
  readonly requests: object;
  readonly healthy: object;
  readonly slots: object;
  readonly inboundInFlight: object;
  readonly inboundRequests: object;
  readonly inboundSlots: object;
  readonly observed: object[];
  readonly registrations: Set<Registration>;
  /** Per series (instrument name + attributes): the observed counter's total so far. */
  readonly totals: Map<string, Point>;
  readonly callback: Observe;
}

const COUNTERS = {
  retries: ['meshlet.retries', 'Retries sent.'],
  exhausted: ['meshlet.retry_budget.exhausted', 'Retries refused because the retry budget was spent.'],
  hedges: ['meshlet.hedges', 'Hedges sent (copies of a request still outstanding after the hedge delay).'],
  hedgesExhausted: ['meshlet.hedge_budget.exhausted', 'Hedges not sent because the hedge budget was spent.'],
  ejections: ['meshlet.ejections', 'Endpoints ejected (outlier detection or an open circuit).'],
  rateLimited: ['meshlet.rate_limited', 'Requests refused by a rate limit.'],
  overloaded: ['meshlet.overloaded', 'Requests (OVERLOADED) and retries (limits.maxRetries) refused by a concurrency limit.'],
  updates: ['meshlet.discovery.updates', 'Endpoint-set updates from discovery.'],
  discoveryErrors: ['meshlet.discovery.errors', 'Discovery failures (the last good set was kept).'],
  circuits: ['meshlet.circuit.transitions', 'Circuit state changes, by the state entered.'],
  refused: ['meshlet.inbound.refused', 'Requests an inbound entry point refused (503 concurrency limit, 429 rate limit).'],
} as const;
type CounterName = keyof typeof COUNTERS;

/** Per meter: its instruments, made once (a meter given again gets the same ones). */
const shared = new WeakMap<object, Shared>();

function sharedFor(m: Meter): Shared {
  const known = shared.get(m);
  if (known !== undefined) return known;
  const duration = m.createHistogram('http.client.request.duration', {
    unit: 's',
    description: 'Duration of HTTP client requests.',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
  });
  const counters = {} as Record<CounterName, ReturnType<Meter['createCounter']>>;
  for (const [k, [name, description]] of Object.entries(COUNTERS)) counters[k as CounterName] = m.createCounter(name, { description });
  const inFlight = m.createObservableGauge('meshlet.endpoint.in_flight', { description: 'Requests in flight per endpoint.' });
  const requests = m.createObservableCounter('meshlet.endpoint.requests', { description: 'Requests completed per endpoint.' });
  const healthy = m.createObservableGauge('meshlet.endpoint.healthy', { description: '1 when the endpoint takes traffic, else 0.' });
  const slots = m.createObservableGauge('meshlet.concurrency.limit', { description: 'In-flight requests the service allows now (maxRequests, or the adaptive limit).' });
  const inboundInFlight = m.createObservableGauge('meshlet.inbound.in_flight', { description: 'Requests an inbound entry point is serving now.' });
  const inboundRequests = m.createObservableCounter('meshlet.inbound.requests', { description: 'Requests an inbound entry point served.' });
  const inboundSlots = m.createObservableGauge('meshlet.inbound.concurrency.limit', { description: 'Requests an inbound entry point serves at once at most now.' });
  const s: Shared = {
    duration,
    counters,
    inFlight,
    requests,
    healthy,
    slots,
    inboundInFlight,
    inboundRequests,
    inboundSlots,
    observed: [inFlight, requests, healthy, slots, inboundInFlight, inboundRequests, inboundSlots],
    registrations: new Set(),
    totals: new Map(),
    callback: (result) => {
      const gauges = new Map<string, Point>();
      for (const reg of s.registrations) gather(s, reg, gauges);
      for (const p of gauges.values()) result.observe(p.instrument, p.value, p.attrs);
      for (const p of s.totals.values()) result.observe(p.instrument, p.value, p.attrs);
    },
  };
  shared.set(m, s);
  return s;
}

const seriesKey = (name: string, attrs: Attrs): string => JSON.stringify([name, attrs]);

/** Add `delta` to an observed counter's total for the series. */
function count(s: Shared, name: string, instrument: object, attrs: Attrs, delta: number): void {
  const key = seriesKey(name, attrs);
  const p = s.totals.get(key);
  if (p === undefined) s.totals.set(key, { instrument, attrs, value: delta });
  else p.value += delta;
}

/** Combine a gauge's value into this collection's point for the series. */
function gauge(points: Map<string, Point>, name: string, instrument: object, attrs: Attrs, value: number, combine: (a: number, b: number) => number): void {
  const key = seriesKey(name, attrs);
  const p = points.get(key);
  if (p === undefined) points.set(key, { instrument, attrs, value });
  else p.value = combine(p.value, value);
}

const add = (a: number, b: number): number => a + b;

/**
 * One mesh's part of a collection: its gauges into `gauges` (null: none, the registration is
 * ending), and what its endpoints and entry points counted since the last time into the totals.
 */
function gather(s: Shared, reg: Registration, gauges: Map<string, Point> | null): void {
  const stats = reg.mesh.stats();
  for (const [entry, st] of Object.entries(stats.inbound?.entries ?? {})) {
    const attrs = { ...reg.extra, 'meshlet.inbound.entry': entry };
    if (gauges !== null) {
      gauge(gauges, 'meshlet.inbound.in_flight', s.inboundInFlight, attrs, st.inFlight, add);
      if (st.concurrencyLimit !== null) gauge(gauges, 'meshlet.inbound.concurrency.limit', s.inboundSlots, attrs, st.concurrencyLimit, add);
    }
    const seen = reg.inboundSeen.get(entry) ?? 0;
    count(s, 'meshlet.inbound.requests', s.inboundRequests, attrs, Math.max(0, st.requests - seen));
    reg.inboundSeen.set(entry, Math.max(seen, st.requests));
  }
  const present = new Set<Endpoint>();
  for (const [service, st] of Object.entries(stats.services)) {
    if (gauges !== null) {
      gauge(gauges, 'meshlet.concurrency.limit', s.slots, { ...reg.extra, 'meshlet.service': service }, st.concurrencyLimit, add);
      for (const ep of st.endpoints) {
        const attrs = { ...reg.extra, 'meshlet.service': service, 'meshlet.endpoint': ep.url };
        gauge(gauges, 'meshlet.endpoint.in_flight', s.inFlight, attrs, ep.inFlight, add);
        gauge(gauges, 'meshlet.endpoint.healthy', s.healthy, attrs, ep.state === 'healthy' && ep.health === 'healthy' ? 1 : 0, Math.max);
      }
    }
    // Counted per endpoint object, not per stats() entry: an endpoint listed twice (a draining copy
    // and its successor) adds both, and a copy that goes away leaves what it counted.
    for (const ep of reg.mesh.service(service)?.allEndpoints() ?? []) {
      present.add(ep);
      let t = reg.endpointSeen.get(ep);
      if (t === undefined) {
        const attrs = { ...reg.extra, 'meshlet.service': service, 'meshlet.endpoint': ep.key };
        t = { attrs, seen: 0 };
        reg.endpointSeen.set(ep, t);
      }
      count(s, 'meshlet.endpoint.requests', s.requests, t.attrs, ep.load.requests - t.seen);
      t.seen = ep.load.requests;
    }
  }
  for (const [ep, t] of reg.endpointSeen) {
    if (present.has(ep)) continue;
    // Gone since the last collection: what it finished meanwhile still counts.
    count(s, 'meshlet.endpoint.requests', s.requests, t.attrs, ep.load.requests - t.seen);
    reg.endpointSeen.delete(ep);
  }
}

/**
 * Start publishing a mesh's metrics, until `dispose()` or the mesh's `close()` has settled.
 * @throws Error naming the package when `@opentelemetry/api` is missing and no meter was given.
 * @throws InvalidConfigError at `enableMetrics.meshName` for a `meshName` that is no non-empty string
 */
export async function enableMetrics(mesh: Mesh, options: MetricsOptions = {}): Promise<Disposable> {
  const meshName: unknown = options.meshName;
  if (meshName !== undefined && (typeof meshName !== 'string' || meshName === '')) {
    throw new InvalidConfigError('enableMetrics.meshName', `expected a non-empty string, got ${typeof meshName === 'string' ? '""' : typeof meshName}`);
  }
  let meter = options.meter;
  if (!meter) {
    let api: { metrics: { getMeter(name: string, version?: string): Meter } };
    try {
      api = (await import('@opentelemetry/api')) as unknown as typeof api;
    } catch (err) {
      throw new Error('enableMetrics needs the optional package "@opentelemetry/api": npm install @opentelemetry/api', { cause: err });
    }
    meter = api.metrics.getMeter('meshlet');
  }
  const m = meter;
  const s = sharedFor(m);
  const extra: Attrs = meshName === undefined ? {} : { 'meshlet.mesh': meshName };
  const { duration, counters: c } = s;
  const add1 = (counter: CounterName, attrs: Attrs) => c[counter].add(1, { ...extra, ...attrs });

  const subs: Disposable[] = [
    mesh.on('request', (e) => {
      const attrs: Attrs = { ...extra, 'http.request.method': e.method, 'meshlet.service': e.service };
      if (e.status > 0) attrs['http.response.status_code'] = e.status;
      if (e.error !== undefined) attrs['error.type'] = e.error;
      else if (e.status >= 500) attrs['error.type'] = String(e.status);
      if (e.subset !== undefined) attrs['meshlet.subset'] = e.subset;
      if (e.endpoint !== undefined) {
        const u = new URL(e.endpoint);
        attrs['server.address'] = u.hostname.replace(/^\[|\]$/g, '');
        attrs['server.port'] = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
      }
      duration.record(e.durationMs / 1000, attrs);
    }),
    mesh.on('retry', (e) => add1('retries', { 'meshlet.service': e.service, 'meshlet.reason': e.reason })),
    mesh.on('retry-budget-exhausted', (e) => add1('exhausted', { 'meshlet.service': e.service })),
    mesh.on('hedge', (e) => add1('hedges', { 'meshlet.service': e.service })),
    mesh.on('hedge-budget-exhausted', (e) => add1('hedgesExhausted', { 'meshlet.service': e.service })),
    mesh.on('ejection', (e) => add1('ejections', { 'meshlet.service': e.service, 'meshlet.endpoint': e.endpoint })),
    mesh.on('rate-limited', (e) => add1('rateLimited', { 'meshlet.service': e.service, 'meshlet.scope': e.scope })),
    mesh.on('overloaded', (e) => add1('overloaded', { 'meshlet.service': e.service, 'meshlet.limit': e.limit })),
    mesh.on('discovery-update', (e) => add1('updates', { 'meshlet.service': e.service })),
    mesh.on('discovery-error', (e) => add1('discoveryErrors', { 'meshlet.service': e.service })),
    mesh.on('inbound-refused', (e) => add1('refused', { 'meshlet.inbound.entry': e.entry, 'http.response.status_code': e.status })),
    mesh.on('circuit', (e) => add1('circuits', { 'meshlet.service': e.service, 'meshlet.endpoint': e.endpoint, 'meshlet.circuit.state': e.to })),
  ];
  const reg: Registration = { mesh, extra, endpointSeen: new Map(), inboundSeen: new Map() };
  if (s.registrations.size === 0) m.addBatchObservableCallback(s.callback, s.observed);
  s.registrations.add(reg);
  let ended = false;
  let closed: Disposable | undefined;
  const end = (): void => {
    if (ended) return;
    ended = true;
    for (const sub of subs) sub.dispose();
    closed?.dispose();
    // The last counts go into the totals, which stay while the meter is observed.
    try {
      gather(s, reg, null);
    } catch {
      // nothing more to count
    }
    s.registrations.delete(reg);
    if (s.registrations.size === 0) m.removeBatchObservableCallback(s.callback, s.observed);
  };
  closed = mesh.whenClosed(end);
  return { dispose: end };
}
