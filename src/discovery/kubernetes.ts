/**
 * `kubernetes` discovery: a Service's endpoints from discovery.k8s.io/v1 EndpointSlices, watched.
 *
 * All slices of the service are merged (`kubernetes.io/service-name=<service>`), endpoints
 * de-duplicated by address and port. The port is chosen per slice by name (or number). Conditions
 * follow the API's defaults: `ready` unset means ready; a terminating endpoint is not ready, so it
 * gets no new requests while its in-flight ones finish (the service drains removed endpoints).
 * `zone` becomes the endpoint's zone and `nodeName` its `kubernetes.io/hostname` label. With
 * `podLabels` (default on) the Service's pods are watched too (by the Service's own selector) and
 * each endpoint carries its pod's labels — `version: v2` for subsets — joined by targetRef; an
 * endpoint whose pod is not known yet is published without them and updated when it arrives.
 * Malformed slices and events are reported and skipped; the last good set stays while the API is
 * unreachable. See kubernetes-watch.ts for list/watch/relist/back-off.
 */
import { isIP } from 'node:net';
import { request } from 'undici';
import { InvalidConfigError } from '../core/errors.js';
import { describe, parseEndpointSpec, type EndpointSpec } from '../core/endpoint-spec.js';
import { expectObject, join, optBoolean, optEnum, optNumber, optString, rejectUnknown } from '../config/check.js';
import type { DiscoveryContext, DiscoveryDefinition, DiscoverySource } from './discovery.js';
import { resolveAccess, type KubeAccess, type KubeAccessOptions } from './kubernetes-client.js';
import { ListWatch, type KubeObject } from './kubernetes-watch.js';

export interface KubernetesOptions extends KubeAccessOptions {
  service: string;
  port: string | number;
  protocol: 'http' | 'https';
  podLabels: boolean;
  watchTimeoutSeconds: number;
}

interface Slice {
  addressType?: string;
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
  endpoints?:
    | {
        addresses?: string[];
        conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
        zone?: string;
        nodeName?: string;
        targetRef?: { kind?: string; name?: string };
      }[]
    | null;
}

class KubernetesSource implements DiscoverySource {
  readonly #access: KubeAccess;
  readonly #slices = new Map<string, Slice & KubeObject>();
  readonly #pods = new Map<string, Record<string, string>>();
  readonly #watches: ListWatch[] = [];
  #synced = false;
  #stopped = false;

  constructor(
    private readonly o: KubernetesOptions,
    private readonly ctx: DiscoveryContext,
  ) {
    this.#access = resolveAccess(o);
    const ns = encodeURIComponent(this.#access.namespace);
    const slices = new ListWatch(
      this.#access,
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      `kubernetes.io/service-name=${o.service}`,
      {
        reset: (items) => {
          this.#slices.clear();
          for (const i of items) this.#slices.set(i.metadata.name, i as Slice & KubeObject);
          this.#synced = true;
          this.#publish();
        },
        upsert: (obj) => {
          this.#slices.set(obj.metadata.name, obj as Slice & KubeObject);
          this.#publish();
        },
        remove: (obj) => {
          this.#slices.delete(obj.metadata.name);
          this.#publish();
        },
        error: (err) => ctx.error(err),
      },
      { timeoutSeconds: o.watchTimeoutSeconds, random: ctx.random },
    );
    this.#watches.push(slices);
    slices.start();
    if (o.podLabels) void this.#watchPods(ns);
    ctx.signal.addEventListener('abort', () => void this.stop(), { once: true });
  }

  /** Watch the Service's pods, selected by the Service's own selector. */
  async #watchPods(ns: string): Promise<void> {
    let selector: string | undefined;
    for (let attempt = 0; selector === undefined && !this.#stopped; attempt++) {
      try {
        const headers: Record<string, string> = { accept: 'application/json' };
        const auth = this.#access.authorization();
        if (auth) headers.authorization = auth;
        const res = await request(`${this.#access.server}/api/v1/namespaces/${ns}/services/${encodeURIComponent(this.o.service)}`, { dispatcher: this.#access.dispatcher, headers });
        const svc = (await res.body.json()) as { spec?: { selector?: Record<string, string> } };
        if (res.statusCode !== 200) throw new Error(`reading service ${this.o.service}: HTTP ${res.statusCode}`);
        const sel = svc.spec?.selector;
        if (!sel || Object.keys(sel).length === 0) {
          this.ctx.log.warn(`kubernetes discovery: service ${this.o.service} has no selector; endpoints carry no pod labels`);
          return;
        }
        selector = Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
      } catch (err) {
        this.ctx.error(new Error(`kubernetes discovery: pod labels unavailable for now: ${(err as Error).message}`));
        await new Promise((r) => setTimeout(r, Math.min(30_000, 800 * 2 ** attempt)).unref?.());
      }
    }
    if (this.#stopped || selector === undefined) return;
    const pods = new ListWatch(
      this.#access,
      `/api/v1/namespaces/${ns}/pods`,
      selector,
      {
        reset: (items) => {
          this.#pods.clear();
          for (const p of items) this.#pods.set(p.metadata.name, p.metadata.labels ?? {});
          this.#publish();
        },
        upsert: (p) => {
          const before = JSON.stringify(this.#pods.get(p.metadata.name));
          this.#pods.set(p.metadata.name, p.metadata.labels ?? {});
          if (before !== JSON.stringify(p.metadata.labels ?? {})) this.#publish();
        },
        remove: (p) => {
          this.#pods.delete(p.metadata.name);
        },
        error: (err) => this.ctx.error(err),
      },
      { timeoutSeconds: this.o.watchTimeoutSeconds, random: this.ctx.random },
    );
    this.#watches.push(pods);
    pods.start();
  }

  #portOf(slice: Slice): number | undefined {
    const ports = slice.ports ?? [];
    const want = this.o.port;
    const p = typeof want === 'number' ? ports.find((x) => x.port === want) : ports.find((x) => x.name === want);
    return typeof p?.port === 'number' ? p.port : undefined;
  }

  #publish(): void {
    if (!this.#synced || this.#stopped) return;
    const byUrl = new Map<string, EndpointSpec>();
    for (const [name, slice] of this.#slices) {
      const port = this.#portOf(slice);
      if (port === undefined) {
        this.ctx.error(new Error(`kubernetes discovery: slice ${name} has no port ${JSON.stringify(this.o.port)}; skipped`));
        continue;
      }
      if (!Array.isArray(slice.endpoints)) continue; // null: no endpoints yet
      for (const ep of slice.endpoints) {
        const address = ep?.addresses?.[0];
        if (typeof address !== 'string') continue;
        const c = ep.conditions ?? {};
        const ready = c.ready ?? true;
        if (!ready || c.terminating === true) continue;
        const family = isIP(address);
        if ((slice.addressType === 'IPv4' && family !== 4) || (slice.addressType === 'IPv6' && family !== 6)) {
          this.ctx.error(new Error(`kubernetes discovery: slice ${name}: address ${address} is not ${slice.addressType}; skipped`));
          continue;
        }
        const host = family === 6 ? `[${address}]` : address;
        const url = `${this.o.protocol}://${host}:${port}`;
        if (byUrl.has(url)) continue;
        const podLabels = ep.targetRef?.kind === 'Pod' && ep.targetRef.name ? this.#pods.get(ep.targetRef.name) : undefined;
        const labels: Record<string, string> = { ...(podLabels ?? {}) };
        if (ep.nodeName) labels['kubernetes.io/hostname'] = ep.nodeName;
        try {
          byUrl.set(url, parseEndpointSpec({ url, labels, ...(ep.zone ? { zone: ep.zone } : {}) }, `slice ${name}`));
        } catch (err) {
          this.ctx.error(new Error(`kubernetes discovery: slice ${name}: ${(err as Error).message}; skipped`));
        }
      }
    }
    this.ctx.update([...byUrl.values()]);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const w of this.#watches) w.stop();
    await this.#access.close().catch(() => {});
  }
}

export const kubernetesDiscovery: DiscoveryDefinition<KubernetesOptions> = {
  create: (options, ctx) => new KubernetesSource(options, ctx),
  parseOptions(raw, path) {
    const o = expectObject(raw, path);
    rejectUnknown(
      o,
      ['service', 'namespace', 'port', 'protocol', 'podLabels', 'watchTimeoutSeconds', 'apiServer', 'kubeconfig', 'context', 'token', 'tokenFile', 'serviceAccountDir'],
      path,
    );
    const service = optString(o, 'service', path);
    if (!service) throw new InvalidConfigError(join(path, 'service'), 'required: the Kubernetes Service name');
    const port = o.port;
    if (!(typeof port === 'string' && port !== '') && !(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536)) {
      throw new InvalidConfigError(join(path, 'port'), `expected a port name or number, got ${describe(port)}`);
    }
    return {
      service,
      port,
      protocol: optEnum(o, 'protocol', path, ['http', 'https'], 'http'),
      podLabels: optBoolean(o, 'podLabels', path, true),
      watchTimeoutSeconds: optNumber(o, 'watchTimeoutSeconds', path, 300 + Math.floor(Math.random() * 300), { integer: true, min: 1, max: 3600 }),
      namespace: optString(o, 'namespace', path),
      apiServer: optString(o, 'apiServer', path),
      kubeconfig: optString(o, 'kubeconfig', path),
      context: optString(o, 'context', path),
      token: optString(o, 'token', path),
      tokenFile: optString(o, 'tokenFile', path),
      serviceAccountDir: optString(o, 'serviceAccountDir', path),
    };
  },
};
