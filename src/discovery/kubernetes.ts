/**
 * `kubernetes` discovery: a Service's endpoints from discovery.k8s.io/v1 EndpointSlices, watched.
 *
 * All slices of the service are merged (`kubernetes.io/service-name=<service>`), endpoints
 * de-duplicated by address and port. The port is chosen per slice by name (or number). Conditions
 * follow the API's defaults: `ready` unset means ready; a terminating endpoint is not ready, so it
 * gets no new requests while its in-flight ones finish (the service drains removed endpoints).
 * `zone` becomes the endpoint's zone and `nodeName` its `kubernetes.io/hostname` label; with
 * `nodeLabels` (default off: nodes are cluster-scoped) the nodes are watched too and each endpoint
 * gets its node's region (and zone, when the slice has none): kubernetes-nodes.ts. With
 * `podLabels` (default on) the Service's pods are watched too (by the Service's own selector) and
 * each endpoint carries its pod's labels — `version: v2` for subsets — joined by targetRef; an
 * endpoint whose pod is not known yet is published without them and updated when it arrives.
 * The pod's `spec.serviceAccountName` becomes the endpoint's `serviceAccount` (`<namespace>/<name>`),
 * the identity `tls: { mode: 'istio-mutual' }` checks.
 * Watch events change the slices (or pods) only; the snapshot is merged and published once per
 * chunk of the stream (the watches' `flush`), each slice's endpoints parsed once per version.
 * Malformed slices and events are reported and skipped; the last good set stays while the API is
 * unreachable. See kubernetes-watch.ts for list/watch/relist/back-off. Every message reported
 * passes through the access's `redact` (no token, no response body verbatim).
 */
import { request } from 'undici';
import { parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { KUBERNETES_BACKOFF, retryWithBackoff } from './backoff.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';
import { parseKubernetesOptions, type KubernetesOptions } from './kubernetes-config.js';
import { namespaceOf, resolveAccess, type KubeAccess } from './kubernetes-client.js';
import { parseSlice, slicePort, type Slice } from './kubernetes-slices.js';
import { requestFailed, withDeadline } from './kubernetes-requests.js';
import { LIST_TIMEOUT_MS, ListWatch, type KubeObject, type WatchHandlers } from './kubernetes-watch.js';
import { NodeLocalities } from './kubernetes-nodes.js';
import { describeBody, parseJsonAnswer } from './redact.js';

export type { KubernetesDiscoveryConfig, KubernetesOptions } from './kubernetes-config.js';

class KubernetesSource implements DiscoverySource {
  readonly #access: KubeAccess;
  readonly #slices = new Map<string, Slice>();
  readonly #pods = new Map<string, PodInfo>();
  /** `name@resourceVersion` of slice versions whose problems were reported (each version once). */
  readonly #reported = new Set<string>();
  #lastKey: string | null = null;
  readonly #watches: ListWatch[] = [];
  /** With `nodeLabels`: the nodes' regions and zones. */
  readonly #nodes: NodeLocalities | null = null;
  #synced = false;
  /**
   * With `podLabels`, the first snapshot waits for the first list of pods (so a subset by
   * `version` has its endpoints from the start), unless reading the selector or the pods fails —
   * within LIST_TIMEOUT_MS: a read that does not answer by then has failed.
   */
  #podsSynced: boolean;
  #stopped = false;
  /** Events applied since the last publish (the watches' flush publishes them once per chunk). */
  #pending = false;
  /**
   * Each slice's endpoints as published, computed once per slice version (a Slice object is one
   * version) and {@link #generation}: an event re-parses its own slice, not all of them.
   */
  readonly #parsed = new WeakMap<Slice, { generation: number; entries: readonly ParsedEndpoint[] }>();
  /** Bumped when what endpoints take from pods or nodes may have changed: every slice is parsed again. */
  #generation = 0;

  readonly #stop = new AbortController();

  constructor(
    private readonly o: KubernetesOptions,
    private readonly ctx: DiscoveryContext,
  ) {
    this.#access = resolveAccess(o, `services.${ctx.service}.discovery`, ctx.now);
    this.#podsSynced = !o.podLabels;
    const ns = encodeURIComponent(this.#access.namespace);
    const slices = new ListWatch(
      this.#access,
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      `kubernetes.io/service-name=${o.service}`,
      {
        reset: (items) => {
          const before = new Map(this.#slices);
          this.#slices.clear();
          for (const i of items) this.#accept(i, before.get(i.metadata.name));
          this.#synced = true;
          this.#publish();
        },
        // Events only change the slices; the chunk's flush publishes once (a burst of N events
        // was N full re-merges and N discovery-updates, blocking the event loop for seconds).
        upsert: (obj) => {
          this.#accept(obj, this.#slices.get(obj.metadata.name));
          this.#pending = true;
        },
        remove: (obj) => {
          this.#slices.delete(obj.metadata.name);
          this.#pending = true;
        },
        flush: () => this.#flush(),
        ...this.#report,
      },
      this.#watchOptions,
    );
    this.#watches.push(slices);
    slices.start();
    if (o.podLabels) void this.#watchPods(ns);
    if (o.nodeLabels)
      this.#nodes = new NodeLocalities(
        this.#access,
        () => {
          this.#generation++;
          this.#publish();
        },
        this.#report,
        this.#watchOptions,
      );
    ctx.signal.addEventListener('abort', () => void this.stop(), { once: true });
  }

  /** Errors and debug news of the watches, redacted. */
  readonly #report: Pick<WatchHandlers, 'error' | 'debug'> = {
    error: (err) => this.ctx.error(new Error(this.#access.redact(err.message))),
    debug: (message) => this.ctx.log.debug(`kubernetes discovery: ${this.#access.redact(message)}`),
  };

  get #watchOptions() {
    return { watchTimeoutMs: this.o.watchTimeoutMs, random: this.ctx.random, now: this.ctx.now };
  }

  /** The Service's selector (`a=b,c=d`), or null when it has none; retried with the shared back-off. */
  async #readSelector(ns: string): Promise<string | null> {
    const url = `${this.#access.server}/api/v1/namespaces/${ns}/services/${encodeURIComponent(this.o.service)}`;
    return retryWithBackoff(
      // The lists' deadline: a Service read that never answers is a failure (the endpoints go out
      // without pod labels, reported), not minutes of no endpoints until undici's 300 s headersTimeout.
      () =>
        withDeadline(this.#stop.signal, LIST_TIMEOUT_MS, () => new Error(`reading service ${this.o.service} timed out after ${LIST_TIMEOUT_MS / 1000} s`), async (signal) => {
          const headers: Record<string, string> = { accept: 'application/json' };
          const auth = this.#access.authorization();
          if (auth) headers.authorization = auth;
          const what = `reading service ${this.o.service}`;
          // The transport's message alone ("connect ECONNREFUSED …") would not say which request failed.
          const res = await request(url, { dispatcher: this.#access.dispatcher, headers, signal }).catch((err: unknown) => {
            throw signal.aborted ? err : requestFailed(what, err);
          });
          const text = await res.body.text().catch((err: unknown) => {
            throw signal.aborted ? err : requestFailed(what, err);
          });
          if (res.statusCode === 401) this.#access.refreshToken();
          if (res.statusCode !== 200) throw new Error(`reading service ${this.o.service} answered ${res.statusCode}: ${describeBody(text, String(res.headers['content-type'] ?? ''))}`);
          // The parser's own message would quote the start of the body: parseJsonAnswer says only its size and type.
          const svc = parseJsonAnswer(text, String(res.headers['content-type'] ?? ''), `reading service ${this.o.service}`, 'the answer') as { spec?: { selector?: unknown } } | null;
          const sel = svc?.spec?.selector;
          if (typeof sel !== 'object' || sel === null || Object.keys(sel).length === 0) return null;
          return Object.entries(sel).map(([k, v]) => `${k}=${String(v)}`).join(',');
        }),
      {
        ...KUBERNETES_BACKOFF,
        signal: this.#stop.signal,
        onFailure: (err, _attempt, delayMs) => {
          if (this.#stopped) return;
          this.#report.error(new Error(`kubernetes discovery: pod labels unavailable for now (${err.message}); next try in ${(delayMs / 1000).toFixed(1)} s`));
          this.#podsReady();
        },
      },
    );
  }

  /** Watch the Service's pods, selected by the Service's own selector. */
  async #watchPods(ns: string): Promise<void> {
    let selector: string | null;
    try {
      selector = await this.#readSelector(ns);
    } catch {
      return; // stopped
    }
    if (this.#stopped) return;
    if (selector === null) {
      this.ctx.log.warn(`kubernetes discovery: service ${this.o.service} has no selector; endpoints carry no pod labels`);
      return this.#podsReady();
    }
    const pods = new ListWatch(
      this.#access,
      `/api/v1/namespaces/${ns}/pods`,
      selector,
      {
        reset: (items) => {
          this.#pods.clear();
          for (const p of items) this.#pods.set(p.metadata.name, podInfo(p));
          this.#podsSynced = true;
          this.#generation++;
          this.#publish();
        },
        upsert: (p) => {
          const before = JSON.stringify(this.#pods.get(p.metadata.name));
          const info = podInfo(p);
          this.#pods.set(p.metadata.name, info);
          if (before === JSON.stringify(info)) return;
          this.#generation++;
          this.#pending = true;
        },
        remove: (p) => {
          // Not published by itself: its endpoints leave with the slice's next version.
          this.#pods.delete(p.metadata.name);
          this.#generation++;
        },
        flush: () => this.#flush(),
        debug: this.#report.debug,
        error: (err) => {
          this.#report.error(err);
          this.#podsReady();
        },
      },
      this.#watchOptions,
    );
    this.#watches.push(pods);
    pods.start();
  }

  /**
   * Check a slice as it arrives (kubernetes-slices.ts): a malformed one is reported and skipped,
   * keeping `previous` (its last good version) if any; problems are reported once per version.
   */
  #accept(obj: KubeObject, previous: Slice | undefined): void {
    const name = obj.metadata.name;
    const version = `${name}@${String(obj.metadata.resourceVersion ?? '')}`;
    const once = (message: string): void => {
      if (this.#reported.has(version)) return;
      this.#reported.add(version);
      if (this.#reported.size > 10_000) this.#reported.clear();
      this.#report.error(new Error(`kubernetes discovery: slice ${name} ${message}`));
    };
    const slice = parseSlice(obj);
    if (typeof slice === 'string') {
      if (previous) this.#slices.set(name, previous);
      once(`is malformed (${slice}); skipped${previous ? ', its previous version stays' : ''}`);
      return;
    }
    this.#slices.set(name, slice);
    const problems: string[] = [];
    // A slice left with no endpoint has nothing a port or FQDN problem could skip; but the entries
    // parseSlice skipped are still reported (every endpoint malformed must not look like no pods).
    if (slice.endpoints.length > 0) {
      if (slice.addressType === 'FQDN') problems.push(`has addressType FQDN (deprecated; not used by meshlet): its ${slice.endpoints.length} endpoint(s) are skipped`);
      else {
        const port = slicePort(slice, this.o.port);
        if (typeof port === 'string') problems.push(`${port}: its ${slice.endpoints.length} endpoint(s) are skipped`);
      }
    }
    if (slice.problems.length > 0) problems.push(`skipped ${slice.problems.length} endpoint(s): ${slice.problems.slice(0, 3).join('; ')}${slice.problems.length > 3 ? '; …' : ''}`);
    if (problems.length > 0) once(problems.join('; '));
  }

  /** Pod labels are as known as they will be for now: the endpoints may go out without them. */
  #podsReady(): void {
    if (this.#podsSynced) return;
    this.#podsSynced = true;
    this.#publish();
  }

  /** Publish what the events of a chunk changed, once. */
  #flush(): void {
    if (!this.#pending) return;
    this.#pending = false;
    this.#publish();
  }

  /** Merge every usable slice into one snapshot; pushed only when it changed. */
  #publish(): void {
    if (!this.#synced || !this.#podsSynced || this.#stopped || this.#nodes?.listed === false) return;
    this.#pending = false;
    const byUrl = new Map<string, ParsedEndpoint>();
    for (const slice of this.#slices.values()) {
      for (const ep of this.#endpointsOf(slice)) if (!byUrl.has(ep.url)) byUrl.set(ep.url, ep);
    }
    const parsed = [...byUrl.values()];
    const key = parsed.map((e) => e.key).sort().join('\n');
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    this.ctx.update(parsed.map((e) => e.spec));
  }

  /** A slice's usable endpoints as specs, from the cache while neither the slice nor {@link #generation} changed. */
  #endpointsOf(slice: Slice): readonly ParsedEndpoint[] {
    const cached = this.#parsed.get(slice);
    if (cached?.generation === this.#generation) return cached.entries;
    const entries: ParsedEndpoint[] = [];
    const port = slice.addressType === 'FQDN' ? 'FQDN' : slicePort(slice, this.o.port);
    if (typeof port === 'number') {
      for (const ep of slice.endpoints) {
        if (!ep.usable) continue;
        const host = slice.addressType === 'IPv6' ? `[${ep.address}]` : ep.address;
        const url = `${this.o.protocol}://${host}:${port}`;
        const pod = ep.pod !== undefined ? this.#pods.get(ep.pod) : undefined;
        const labels: Record<string, string> = { ...(pod?.labels ?? {}) };
        if (ep.nodeName) labels['kubernetes.io/hostname'] = ep.nodeName;
        const serviceAccount = pod?.serviceAccount !== undefined ? `${this.#access.namespace}/${pod.serviceAccount}` : undefined;
        const node = this.#nodes?.of(ep.nodeName);
        const zone = ep.zone ?? node?.zone;
        try {
          const spec = parseEndpointSpec({ url, labels, ...(zone ? { zone } : {}), ...(node?.region ? { region: node.region } : {}), ...(serviceAccount ? { serviceAccount } : {}) }, `slice ${slice.name}`);
          entries.push({ url, spec, key: `${spec.origin} ${spec.region ?? ''} ${spec.zone ?? ''} ${spec.serviceAccount ?? ''} ${JSON.stringify(spec.labels)}` });
        } catch (err) {
          // Reported once per slice version (and pod or node change), not at every publish.
          this.#report.error(new Error(`kubernetes discovery: slice ${slice.name}: ${(err as Error).message}; skipped`));
        }
      }
    }
    this.#parsed.set(slice, { generation: this.#generation, entries });
    return entries;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    for (const w of this.#watches) w.stop();
    this.#nodes?.stop();
    await this.#access.close().catch(() => {});
  }
}

/** One endpoint as published: its URL (the de-duplication key), its spec, and its part of the snapshot's change key. */
interface ParsedEndpoint {
  readonly url: string;
  readonly spec: EndpointSpec;
  readonly key: string;
}

/** What an endpoint takes from its pod: its labels and its service account (its workload identity). */
interface PodInfo {
  labels: Record<string, string>;
  serviceAccount: string | undefined;
}

/** A pod's labels (string values only: anything else in a malformed object is dropped) and `spec.serviceAccountName`. */
function podInfo(p: KubeObject): PodInfo {
  const raw: unknown = p.metadata.labels;
  const labels: Record<string, string> = {};
  if (typeof raw === 'object' && raw !== null) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') labels[k] = v;
  const spec = (p as { spec?: { serviceAccountName?: unknown } }).spec;
  const sa = spec?.serviceAccountName;
  // Kubernetes gives a pod without one the namespace's `default` account.
  return { labels, serviceAccount: typeof sa === 'string' && sa !== '' ? sa : spec !== undefined ? 'default' : undefined };
}

export const kubernetesDiscovery: DiscoveryDefinition<KubernetesOptions> = {
  create: (options, ctx) => new KubernetesSource(options, ctx),
  parseOptions: parseKubernetesOptions,
  // A literal token is a secret: never written out (configure `tokenFile`, in-cluster or kubeconfig access to round-trip).
  toJSON: ({ token: _token, env: _env, ...rest }) => rest,
  namespace: (options) => namespaceOf(options),
  serviceAccounts: (options) => options.podLabels,
};
