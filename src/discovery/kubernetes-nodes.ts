/**
 * The regions and zones of the cluster's nodes, for the `kubernetes` discovery's `nodeLabels`
 * option: EndpointSlices give an endpoint's zone and node name but no region, which Kubernetes
 * keeps on the Node (`topology.kubernetes.io/region`, `…/zone`), where Istio reads it too. Nodes
 * are cluster-scoped: the service account then needs get/list/watch on `nodes`.
 */
import type { KubeAccess } from './kubernetes-client.js';
import { ListWatch, type KubeObject, type WatchHandlers, type WatchOptions } from './kubernetes-watch.js';

export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

export interface NodeLocality {
  readonly region: string | undefined;
  readonly zone: string | undefined;
}

function localityOf(node: KubeObject): NodeLocality {
  const labels: unknown = node.metadata.labels;
  const get = (k: string): string | undefined => {
    const v = typeof labels === 'object' && labels !== null ? (labels as Record<string, unknown>)[k] : undefined;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  return { region: get(REGION_LABEL), zone: get(ZONE_LABEL) };
}

export class NodeLocalities {
  readonly #nodes = new Map<string, NodeLocality>();
  readonly #watch: ListWatch;
  #listed = false;
  /** A region or zone changed in the chunk being read. */
  #pending = false;

  /**
   * @param changed a node's region or zone changed (or the first list arrived)
   * @param report the watch's errors and debug news (after any error, `listed` is also true: endpoints go out without regions rather than never)
   */
  constructor(access: KubeAccess, changed: () => void, report: Pick<WatchHandlers, 'error' | 'debug'>, opts: WatchOptions) {
    const set = (n: KubeObject): boolean => {
      const before = this.#nodes.get(n.metadata.name);
      const now = localityOf(n);
      this.#nodes.set(n.metadata.name, now);
      return before?.region !== now.region || before?.zone !== now.zone;
    };
    this.#watch = new ListWatch(
      access,
      '/api/v1/nodes',
      undefined,
      {
        reset: (items) => {
          this.#nodes.clear();
          for (const n of items) set(n);
          this.#listed = true;
          changed();
        },
        // A chunk's events only change the map; its flush tells the source once (a node pool
        // relabelled in one burst is one publish, not one per node).
        upsert: (n) => {
          if (set(n)) this.#pending = true;
        },
        flush: () => {
          if (!this.#pending) return;
          this.#pending = false;
          changed();
        },
        remove: (n) => {
          this.#nodes.delete(n.metadata.name);
        },
        debug: report.debug,
        error: (err, fatal) => {
          report.error(err, fatal);
          if (!this.#listed) {
            this.#listed = true;
            changed();
          }
        },
      },
      opts,
    );
    this.#watch.start();
  }

  /** True once the nodes were listed (or listing them failed). */
  get listed(): boolean {
    return this.#listed;
  }

  of(node: string | undefined): NodeLocality | undefined {
    return node === undefined ? undefined : this.#nodes.get(node);
  }

  stop(): void {
    this.#watch.stop();
  }
}
