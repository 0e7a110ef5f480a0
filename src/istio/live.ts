/**
 * Live Istio config: the cluster's DestinationRules and VirtualServices (watch.ts) turned into the
 * mesh's services with `fromIstio`, again after every change, and applied through the mesh
 * (service/live-services.ts) without a restart.
 *
 * Which versions are in force: after the first list of every collection, and after each chunk of
 * watch events (the events read together are tried once, watch.ts), the latest version of every
 * resource is tried together (fromIstio, then each service's config parsed as createMesh would).
 * When that fails, resources are taken one at a time — DestinationRules first, then
 * VirtualServices, by namespace and name — each at its latest version if the config still parses
 * with it, else at its last good version, else not at all (runs of them tried together first and
 * halved only when they fail: O(log N) conversions per refused version, not N). While versions
 * are refused, a change tries first the latest versions with those refused at the last change (at
 * the same resourceVersion) kept as they were — one conversion — then each of those at its latest
 * (another change may have made it fit); only when that fails is the whole walked again.
 * So a malformed version (a shape fromIstio refuses, or a config that does not parse: a route to
 * an unknown subset) leaves the last good one in force; it is reported once (a warning and an
 * `istio-config-error` event; again if it drops out after being in force), and the next good
 * version applies. A deleted resource's config goes with it. Each applied change emits
 * `istio-config` with the resources and versions in force.
 * Several DestinationRules for one host merge in fromIstio as pilot merges them (rule-merge.ts), in
 * the order of the `metadata.creationTimestamp` the API server gave each (kept in the objects
 * watch.ts holds), whatever order they are tried in here.
 *
 * Services come up for the hosts the resources name, with `kubernetes` discovery (EndpointSlices
 * and pod labels, so subsets by `version` work) on the Service port `istio.port`; a host that is
 * not a Kubernetes one gets `dns` discovery on `istio.port` when that is a number, else port 80. Until the first lists are in, a request to a
 * host of a watched namespace waits for them (at most `readyTimeoutMs`).
 */
import type { DiscoveryConfig, ServiceConfig } from '../service/config.js';
import type { ParsedService } from '../service/config.js';
import { messageOf } from '../core/errors.js';
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { resolveAccess, type KubeAccess } from '../discovery/kubernetes-client.js';
import { fromIstio, type DiscoveryInfo } from './istio.js';
import { accessOf, type ParsedIstioLive } from './live-config.js';
import { IstioWatch, resourceKey, type IstioResource } from './watch.js';

/** What the mesh offers live config (service/live-services.ts). */
export interface LiveTarget {
  check(configs: Readonly<Record<string, ServiceConfig>>): Map<string, ParsedService> | string;
  apply(parsed: ReadonlyMap<string, ParsedService>): void;
}

export interface IstioLiveDeps {
  readonly events: MeshEvents;
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
  /** The mesh's `namespace`: its services keep their short names. @default the first watched namespace */
  readonly namespace: string | undefined;
  readonly clusterDomain: string;
}

/** `mesh.stats().istio`. */
export interface IstioLiveStats {
  /** True once every collection has been listed once. */
  synced: boolean;
  /** The collections watched, at the API version the server serves. */
  collections: string[];
  /** Every resource the API server has: its latest version, the version in force (null: none), and why the latest is not, if it is not. */
  resources: { kind: string; namespace: string; name: string; resourceVersion: string; inForce: string | null; error?: string }[];
  /** The services the resources in force make. */
  services: string[];
  /** Fields of the resources in force that meshlet does not apply as Istio does (fromIstio's reports). */
  unsupported: { path: string; message: string }[];
}

type Tried = { parsed: Map<string, ParsedService>; unsupported: { path: string; message: string }[] };

export class IstioLive {
  readonly #o: ParsedIstioLive;
  readonly #target: LiveTarget;
  readonly #deps: IstioLiveDeps;
  readonly #access: KubeAccess;
  readonly #watch: IstioWatch;
  /** The version in force of each resource, by key. */
  #inForce = new Map<string, IstioResource>();
  /** Why the latest version of a resource is not in force, by key. */
  readonly #errors = new Map<string, { resourceVersion: string; message: string }>();
  #services: string[] = [];
  #unsupported: Tried['unsupported'] = [];
  #reported = new Set<string>();
  /** The resources whose latest version was not in force after the last change: key → that resourceVersion. */
  #refused = new Map<string, string>();
  #applied = false;
  #wait: { promise: Promise<void>; resolve: () => void; timer: NodeJS.Timeout } | null = null;
  /** True once requests were held for `readyTimeoutMs` (or the watch stopped): none is held again. */
  #waitOver = false;

  constructor(o: ParsedIstioLive, target: LiveTarget, deps: IstioLiveDeps) {
    this.#o = o;
    this.#target = target;
    this.#deps = deps;
    this.#access = resolveAccess(o, 'istio', deps.now);
    this.#watch = new IstioWatch(
      this.#access,
      o.namespaces,
      {
        changed: () => this.#changed(),
        error: (message) => deps.log.warn(message), // the watch's messages start with "istio config:"
        debug: (message) => deps.log.debug(`istio config: ${message}`),
      },
      { watchTimeoutMs: o.watchTimeoutMs, random: deps.random, now: deps.now },
    );
  }

  get #home(): string {
    return this.#deps.namespace ?? this.#o.namespaces[0]!;
  }

  /** For the dispatcher: a request to `hostname` waits for the first lists when it may be a service they make. */
  pending(hostname: string): Promise<void> | null {
    if (this.#applied || this.#waitOver || !this.#inWatchedNamespace(hostname)) return null;
    if (this.#wait === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      const timer = setTimeout(() => {
        this.#waitOver = true;
        this.#release();
      }, this.#o.readyTimeoutMs);
      timer.unref();
      this.#wait = { promise, resolve, timer };
    }
    return this.#wait.promise;
  }

  #inWatchedNamespace(hostname: string): boolean {
    const parts = hostname.toLowerCase().replace(/\.$/, '').split('.');
    if (parts.length < 2 || !this.#o.namespaces.includes(parts[1]!)) return false;
    return parts.length === 2 || (parts[2] === 'svc' && (parts.length === 3 || parts.slice(3).join('.') === this.#deps.clusterDomain));
  }

  #release(): void {
    const w = this.#wait;
    this.#wait = null;
    if (w === null) return;
    clearTimeout(w.timer);
    w.resolve();
  }

  #changed(): void {
    if (!this.#watch.synced) return;
    const latest = [...this.#watch.resources.entries()].sort(([a], [b]) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0));
    const picked = this.#pick(latest);
    if (picked === null) return; // not even the empty config parses: nothing changes
    const { chosen, tried } = picked;
    const taken = new Set(chosen);
    this.#refused = new Map(latest.filter(([, r]) => !taken.has(r)).map(([key, r]) => [key, r.resourceVersion]));
    for (const r of chosen) {
      const key = resourceKey(r.kind, r.namespace, r.name);
      if (this.#watch.resources.get(key) === r) this.#errors.delete(key);
      this.#reported.delete(`${key}@${r.resourceVersion}`); // in force: if it drops out again, that is reported again
    }
    for (const key of [...this.#errors.keys()]) if (!this.#watch.resources.has(key)) this.#errors.delete(key);
    const before = this.#inForceKey();
    this.#inForce = new Map(chosen.map((r) => [resourceKey(r.kind, r.namespace, r.name), r]));
    if (this.#applied && before === this.#inForceKey()) return;
    this.#target.apply(tried.parsed);
    this.#services = [...tried.parsed.keys()];
    this.#unsupported = tried.unsupported;
    for (const u of tried.unsupported) {
      const line = `${u.path}: ${u.message}`;
      if (this.#reported.has(line)) continue;
      if (this.#reported.size > 10_000) this.#reported.clear();
      this.#reported.add(line);
      this.#deps.log.warn(`istio config: ${line}`);
    }
    this.#applied = true;
    this.#release();
    this.#deps.events.emit('istio-config', { resources: chosen.map(({ kind, namespace, name, resourceVersion }) => ({ kind, namespace, name, resourceVersion })), services: [...this.#services] });
  }

  /** Which version of each resource goes in force, and the config they make (see the header); null when none parses. */
  #pick(latest: readonly (readonly [string, IstioResource])[]): { chosen: IstioResource[]; tried: Tried } | null {
    const again = latest.filter(([key, r]) => this.#refused.get(key) === r.resourceVersion);
    if (again.length > 0) {
      const kept = this.#keepRefused(latest, new Set(again.map(([key]) => key)));
      if (kept !== null) return kept;
    }
    const all = latest.map(([, r]) => r);
    const tried = this.#try(all);
    if (typeof tried !== 'string') return { chosen: all, tried };
    return this.#walk(latest, tried);
  }

  /**
   * The steady state while a version is refused: the latest versions, with the ones refused at the
   * last change (at the same resourceVersion) at the version in force then, or left out — one
   * conversion; then each of those tried again at its latest (another resource's change may have
   * made it fit). Null when even that does not parse (something else changed for the worse).
   */
  #keepRefused(latest: readonly (readonly [string, IstioResource])[], refused: ReadonlySet<string>): { chosen: IstioResource[]; tried: Tried } | null {
    const slots = latest.map(([key, r]) => (refused.has(key) ? (this.#inForce.get(key) ?? null) : r));
    const list = (): IstioResource[] => slots.filter((r): r is IstioResource => r !== null);
    let tried = this.#try(list());
    if (typeof tried === 'string') return null;
    latest.forEach(([key, r], i) => {
      if (!refused.has(key)) return;
      const kept = slots[i]!;
      slots[i] = r;
      const t = this.#try(list());
      if (typeof t !== 'string') {
        tried = t;
        return;
      }
      slots[i] = kept;
      this.#reject(r, t, kept?.resourceVersion ?? null);
    });
    return { chosen: list(), tried: tried as Tried };
  }

  /**
   * The resources one at a time, in order: each at its latest version if the config still parses
   * with it, else at its version in force, else left out. Runs of them are tried together first
   * and halved only when they fail (`whole` is what trying all of them together gave), so a few
   * refused versions among N resources cost O(log N) conversions, not N.
   */
  #walk(latest: readonly (readonly [string, IstioResource])[], whole: string): { chosen: IstioResource[]; tried: Tried } | null {
    const chosen: IstioResource[] = [];
    let tried = this.#try([]);
    const take = (part: readonly (readonly [string, IstioResource])[], known: string | null): void => {
      if (part.length === 0) return;
      const withPart = known ?? this.#try([...chosen, ...part.map(([, r]) => r)]);
      if (typeof withPart !== 'string') {
        chosen.push(...part.map(([, r]) => r));
        tried = withPart;
        return;
      }
      if (part.length > 1) {
        const mid = part.length >> 1;
        take(part.slice(0, mid), null);
        take(part.slice(mid), null);
        return;
      }
      const [key, r] = part[0]!;
      const good = this.#inForce.get(key);
      const withGood = good !== undefined && good.resourceVersion !== r.resourceVersion ? this.#try([...chosen, good]) : null;
      const keep = withGood !== null && typeof withGood !== 'string';
      if (keep) {
        chosen.push(good!);
        tried = withGood;
      }
      this.#reject(r, withPart, keep ? good!.resourceVersion : null);
    };
    take(latest, whole);
    return typeof tried === 'string' ? null : { chosen, tried };
  }

  #inForceKey(): string {
    return [...this.#inForce.values()].map((r) => `${resourceKey(r.kind, r.namespace, r.name)}@${r.resourceVersion}`).join(' ');
  }

  /** The config `resources` make, parsed, or what is wrong with it. */
  #try(resources: readonly IstioResource[]): Tried | string {
    const text = resources.map((r) => JSON.stringify(r.object)).join('\n---\n');
    let out: ReturnType<typeof fromIstio>;
    try {
      out = fromIstio(text, { namespace: this.#home, discovery: (name, info) => this.#discovery(name, info) });
    } catch (err) {
      return messageOf(err);
    }
    const parsed = this.#target.check(out.services);
    return typeof parsed === 'string' ? parsed : { parsed, unsupported: out.unsupported };
  }

  #discovery(service: string, info: DiscoveryInfo): DiscoveryConfig {
    if (info.name === undefined) return { type: 'dns', host: info.host || service, port: typeof this.#o.port === 'number' ? this.#o.port : 80 };
    const watch = this.#o.watchTimeoutMs === undefined ? {} : { watchTimeoutMs: this.#o.watchTimeoutMs };
    const nodes = this.#o.nodeLabels ? { nodeLabels: true } : {};
    return { type: 'kubernetes', service: info.name, namespace: info.namespace ?? this.#home, port: this.#o.port, ...accessOf(this.#o), ...watch, ...nodes };
  }

  #reject(r: IstioResource, message: string, kept: string | null): void {
    const key = resourceKey(r.kind, r.namespace, r.name);
    this.#errors.set(key, { resourceVersion: r.resourceVersion, message });
    const once = `${key}@${r.resourceVersion}`;
    if (this.#reported.has(once)) return;
    this.#reported.add(once);
    this.#deps.log.warn(
      `istio config: ${r.kind} ${r.namespace}/${r.name} version ${r.resourceVersion} not applied (${message}); ${kept === null ? 'it has no version in force' : `version ${kept} stays in force`}`,
    );
    this.#deps.events.emit('istio-config-error', { kind: r.kind, namespace: r.namespace, name: r.name, resourceVersion: r.resourceVersion, message, kept });
  }

  stats(): IstioLiveStats {
    const resources = [...this.#watch.resources.entries()].map(([key, r]) => {
      const error = this.#errors.get(key);
      return {
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        resourceVersion: r.resourceVersion,
        inForce: this.#inForce.get(key)?.resourceVersion ?? null,
        ...(error !== undefined && error.resourceVersion === r.resourceVersion ? { error: error.message } : {}),
      };
    });
    return { synced: this.#applied, collections: this.#watch.paths, resources, services: [...this.#services], unsupported: [...this.#unsupported] };
  }

  async stop(): Promise<void> {
    this.#watch.stop();
    this.#waitOver = true;
    this.#release();
    await this.#access.close().catch(() => {});
  }
}

/** DestinationRules before VirtualServices (a route names a subset a rule defines). */
const order = (key: string): number => (key.startsWith('DestinationRule/') ? 0 : 1);
