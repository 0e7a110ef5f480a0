/**
 * The cluster's DestinationRules and VirtualServices, watched: one list-then-watch per kind and
 * namespace with the `kubernetes` discovery's client (discovery/kubernetes-watch.ts: bookmarks,
 * 410 relist, back-off with jitter, redaction), on networking.istio.io v1, falling back to
 * v1beta1 then v1alpha3 when the API server answers 404 to the list. The latest version of every
 * resource is kept here, with the `apiVersion` and `kind` that list items lack; `changed` is
 * called after each list and after each chunk of events that changed something (once for the
 * chunk, not per event), `synced` once every watch has listed once.
 */
import type { KubeAccess } from '../discovery/kubernetes-client.js';
import { ListWatch, type KubeObject } from '../discovery/kubernetes-watch.js';

export type IstioKind = 'DestinationRule' | 'VirtualService';

/** One resource's latest version, as the API server has it. */
export interface IstioResource {
  readonly kind: IstioKind;
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** The object with `apiVersion` and `kind` set. */
  readonly object: Record<string, unknown>;
}

const COLLECTION: Record<IstioKind, string> = { DestinationRule: 'destinationrules', VirtualService: 'virtualservices' };
export const VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

export interface IstioWatchHooks {
  changed(): void;
  error(message: string): void;
  debug(message: string): void;
}

export const resourceKey = (kind: IstioKind, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

export class IstioWatch {
  /** Latest versions by {@link resourceKey}. */
  readonly resources = new Map<string, IstioResource>();
  readonly #watches: ListWatch[] = [];
  readonly #listed = new Set<ListWatch>();
  #synced = false;
  /** A resource changed in the chunk being read (any watch's: one flag, as they all call one `changed`). */
  #pending = false;

  constructor(access: KubeAccess, namespaces: readonly string[], hooks: IstioWatchHooks, opts: { watchTimeoutMs: number | undefined; random: () => number; now: () => number }) {
    for (const ns of namespaces) {
      for (const kind of ['DestinationRule', 'VirtualService'] as const) {
        const paths = VERSIONS.map((v) => `/apis/networking.istio.io/${v}/namespaces/${encodeURIComponent(ns)}/${COLLECTION[kind]}`);
        const put = (w: ListWatch, o: KubeObject): void => {
          const version = /\/apis\/networking\.istio\.io\/([^/]+)\//.exec(w.path)?.[1] ?? 'v1';
          const object = { ...o, apiVersion: `networking.istio.io/${version}`, kind, metadata: { ...o.metadata, namespace: ns } };
          this.resources.set(resourceKey(kind, ns, o.metadata.name), { kind, namespace: ns, name: o.metadata.name, resourceVersion: String(o.metadata.resourceVersion ?? ''), object });
        };
        const w: ListWatch = new ListWatch(
          access,
          paths,
          undefined,
          {
            reset: (items) => {
              for (const key of [...this.resources.keys()]) if (key.startsWith(`${kind}/${ns}/`)) this.resources.delete(key);
              for (const o of items) put(w, o);
              this.#listed.add(w);
              if (!this.#synced && this.#listed.size === this.#watches.length) this.#synced = true;
              hooks.changed();
            },
            // A chunk's events only change the resources; its flush tries the config once (each
            // try converts every resource: per event, a burst of N cost N whole conversions).
            upsert: (o) => {
              put(w, o);
              this.#pending = true;
            },
            remove: (o) => {
              this.resources.delete(resourceKey(kind, ns, o.metadata.name));
              this.#pending = true;
            },
            flush: () => {
              if (!this.#pending) return;
              this.#pending = false;
              hooks.changed();
            },
            error: (err) => hooks.error(access.redact(err.message)),
            debug: (message) => hooks.debug(access.redact(message)),
          },
          { ...opts, label: 'istio config' },
        );
        this.#watches.push(w);
      }
    }
    for (const w of this.#watches) w.start();
  }

  /** True once every kind in every namespace has been listed. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The collections watched (the API version each is served at). */
  get paths(): string[] {
    return this.#watches.map((w) => w.path);
  }

  stop(): void {
    for (const w of this.#watches) w.stop();
  }
}
