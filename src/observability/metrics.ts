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
 * `mesh.stats()` in one batch callback; `dispose()` removes every listener and callback.
 */
import type { Mesh } from '../mesh.js';
import type { Disposable } from '../core/events.js';

/** The parts of `@opentelemetry/api`'s Meter meshlet uses. */
interface Meter {
  createHistogram(name: string, options?: object): { record(value: number, attributes?: object): void };
  createCounter(name: string, options?: object): { add(value: number, attributes?: object): void };
  createObservableGauge(name: string, options?: object): object;
  createObservableCounter(name: string, options?: object): object;
  addBatchObservableCallback(cb: (result: { observe(instrument: object, value: number, attributes?: object): void }) => void, instruments: object[]): void;
  removeBatchObservableCallback(cb: (result: { observe(instrument: object, value: number, attributes?: object): void }) => void, instruments: object[]): void;
}

export interface MetricsOptions {
  /** A Meter to use; default: `metrics.getMeter('meshlet')` from `@opentelemetry/api`. */
  meter?: Meter;
}

/**
 * Start publishing a mesh's metrics.
 * @throws Error naming the package when `@opentelemetry/api` is missing and no meter was given.
 */
export async function enableMetrics(mesh: Mesh, options: MetricsOptions = {}): Promise<Disposable> {
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
  const duration = m.createHistogram('http.client.request.duration', {
    unit: 's',
    description: 'Duration of HTTP client requests.',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
  });
  const counter = (name: string, description: string) => m.createCounter(name, { description });
  const retries = counter('meshlet.retries', 'Retries sent.');
  const exhausted = counter('meshlet.retry_budget.exhausted', 'Retries refused because the retry budget was spent.');
  const hedges = counter('meshlet.hedges', 'Hedges sent (copies of a request still outstanding after the hedge delay).');
  const hedgesExhausted = counter('meshlet.hedge_budget.exhausted', 'Hedges not sent because the hedge budget was spent.');
  const ejections = counter('meshlet.ejections', 'Endpoints ejected (outlier detection or an open circuit).');
  const rateLimited = counter('meshlet.rate_limited', 'Requests refused by a rate limit.');
  const overloaded = counter('meshlet.overloaded', 'Requests (OVERLOADED) and retries (limits.maxRetries) refused by a concurrency limit.');
  const updates = counter('meshlet.discovery.updates', 'Endpoint-set updates from discovery.');
  const discoveryErrors = counter('meshlet.discovery.errors', 'Discovery failures (the last good set was kept).');
  const circuits = counter('meshlet.circuit.transitions', 'Circuit state changes, by the state entered.');
  const inFlight = m.createObservableGauge('meshlet.endpoint.in_flight', { description: 'Requests in flight per endpoint.' });
  const requests = m.createObservableCounter('meshlet.endpoint.requests', { description: 'Requests completed per endpoint.' });
  const healthy = m.createObservableGauge('meshlet.endpoint.healthy', { description: '1 when the endpoint takes traffic, else 0.' });
  const slots = m.createObservableGauge('meshlet.concurrency.limit', { description: 'In-flight requests the service allows now (maxRequests, or the adaptive limit).' });
  const inboundInFlight = m.createObservableGauge('meshlet.inbound.in_flight', { description: 'Requests an inbound entry point is serving now.' });
  const inboundRequests = m.createObservableCounter('meshlet.inbound.requests', { description: 'Requests an inbound entry point served.' });
  const inboundSlots = m.createObservableGauge('meshlet.inbound.concurrency.limit', { description: 'Requests an inbound entry point serves at once at most now.' });
  const refused = counter('meshlet.inbound.refused', 'Requests an inbound entry point refused (503 concurrency limit, 429 rate limit).');
  const observed = [inFlight, requests, healthy, slots, inboundInFlight, inboundRequests, inboundSlots];

  const subs: Disposable[] = [
    mesh.on('request', (e) => {
      const attrs: Record<string, string | number> = { 'http.request.method': e.method, 'meshlet.service': e.service };
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
    mesh.on('retry', (e) => retries.add(1, { 'meshlet.service': e.service, 'meshlet.reason': e.reason })),
    mesh.on('retry-budget-exhausted', (e) => exhausted.add(1, { 'meshlet.service': e.service })),
    mesh.on('hedge', (e) => hedges.add(1, { 'meshlet.service': e.service })),
    mesh.on('hedge-budget-exhausted', (e) => hedgesExhausted.add(1, { 'meshlet.service': e.service })),
    mesh.on('ejection', (e) => ejections.add(1, { 'meshlet.service': e.service, 'meshlet.endpoint': e.endpoint })),
    mesh.on('rate-limited', (e) => rateLimited.add(1, { 'meshlet.service': e.service, 'meshlet.scope': e.scope })),
    mesh.on('overloaded', (e) => overloaded.add(1, { 'meshlet.service': e.service, 'meshlet.limit': e.limit })),
    mesh.on('discovery-update', (e) => updates.add(1, { 'meshlet.service': e.service })),
    mesh.on('discovery-error', (e) => discoveryErrors.add(1, { 'meshlet.service': e.service })),
    mesh.on('inbound-refused', (e) => refused.add(1, { 'meshlet.inbound.entry': e.entry, 'http.response.status_code': e.status })),
    mesh.on('circuit', (e) => circuits.add(1, { 'meshlet.service': e.service, 'meshlet.endpoint': e.endpoint, 'meshlet.circuit.state': e.to })),
  ];
  const observe = (result: { observe(instrument: object, value: number, attributes?: object): void }): void => {
    const stats = mesh.stats();
    for (const [entry, s] of Object.entries(stats.inbound?.entries ?? {})) {
      const attrs = { 'meshlet.inbound.entry': entry };
      result.observe(inboundInFlight, s.inFlight, attrs);
      result.observe(inboundRequests, s.requests, attrs);
      if (s.concurrencyLimit !== null) result.observe(inboundSlots, s.concurrencyLimit, attrs);
    }
    for (const [service, s] of Object.entries(stats.services)) {
      result.observe(slots, s.concurrencyLimit, { 'meshlet.service': service });
      for (const ep of s.endpoints) {
        const attrs = { 'meshlet.service': service, 'meshlet.endpoint': ep.url };
        result.observe(inFlight, ep.inFlight, attrs);
        result.observe(requests, ep.requests, attrs);
        result.observe(healthy, ep.state === 'healthy' && ep.health === 'healthy' ? 1 : 0, attrs);
      }
    }
  };
  m.addBatchObservableCallback(observe, observed);
  return {
    dispose() {
      for (const s of subs) s.dispose();
      m.removeBatchObservableCallback(observe, observed);
    },
  };
}
