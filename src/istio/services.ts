/**
 * The services fromIstio is building, by name, with what `options.discovery` is told about each.
 *
 * A port of a host — a destination's `port`, a `portLevelSettings` entry — is a service of its own,
 * `<port>.<name>` (`9080.reviews`), as Envoy keeps a cluster per port: a copy of the host's service
 * (its rule's policies, subsets and routes) with `port` set, addressed by the same host names on
 * that port, and with that port's settings in place of the rule's (Istio's MergeTrafficPolicy
 * replaces the loadBalancer, connectionPool, outlierDetection and tls of the rule wholesale).
 * `<port>.<name>` cannot be a Kubernetes host's service name: a Service name starts with a letter.
 * The copies are made once every document is read (`finish`).
 *
 * DestinationRules are read in pilot's order, not the text's (rule-merge.ts); the services still
 * come out in the order the text first names them, each with the host that first document gave,
 * as the caller sets `at` to the place of the document being read.
 */
import type { ServiceConfig } from '../service/config.js';
import type { HostRef, Names } from './names.js';

/** What `options.discovery` is told about a service. */
export interface DiscoveryInfo {
  /** Its Kubernetes namespace, when known. */
  namespace: string | undefined;
  /** The host a document first named it by, as written. */
  host: string;
  /** Its Service name in Kubernetes (the host's first label), for a Kubernetes host. */
  name: string | undefined;
  /** For the service of one port of a host (`9080.reviews`): that port; the endpoints' port to take. */
  port?: number;
}

/** The keys of a service config each part of a port's traffic policy sets (and replaces). */
const PORT_GROUPS: Record<string, readonly (keyof ServiceConfig)[]> = {
  loadBalancer: ['balancer', 'localityLb', 'slowStart'],
  connectionPool: ['pool', 'limits'],
  outlierDetection: ['outlierDetection', 'panicThreshold'],
  tls: ['tls'],
};

interface PortService {
  readonly base: string;
  readonly port: number;
  readonly ref: HostRef;
  /** The port's own settings, and which parts of the policy they replace. */
  readonly settings: ServiceConfig;
  readonly replaced: Set<string>;
}

export class ServiceTable {
  readonly services = new Map<string, ServiceConfig>();
  readonly info = new Map<string, DiscoveryInfo>();
  readonly #ports = new Map<string, PortService>();
  /** The place in the text of the first document naming each service (and port service). */
  readonly #firstAt = new Map<string, number>();
  /** The place in the text of the document being read. */
  at = 0;

  constructor(readonly names: Names) {}

  /** The service `ref` names, made on first use and addressed by the host's Kubernetes forms. */
  service(ref: HostRef, host: string): ServiceConfig {
    const n = this.names.of(ref);
    let svc = this.services.get(n.name);
    if (svc === undefined) {
      svc = {};
      if (n.hosts.length > 0) svc.hosts = [...n.hosts];
      else if (n.namespace !== undefined) svc.namespaces = [n.namespace];
      this.services.set(n.name, svc);
      this.info.set(n.name, { namespace: n.namespace, host, name: n.kubernetesName });
    } else if (this.at < this.#firstAt.get(n.name)!) {
      this.info.get(n.name)!.host = host; // an earlier document, read later, named it first
    }
    this.#noteAt(n.name);
    return svc;
  }

  /** The name of the service of `port` of the host `ref` names (made on first use; its host's service too). */
  portService(ref: HostRef, host: string, port: number): string {
    this.service(ref, host);
    const base = this.names.of(ref).name;
    const name = `${port}.${base}`;
    if (!this.#ports.has(name)) this.#ports.set(name, { base, port, ref, settings: {}, replaced: new Set() });
    this.#noteAt(name);
    return name;
  }

  #noteAt(name: string): void {
    const seen = this.#firstAt.get(name);
    if (seen === undefined || this.at < seen) this.#firstAt.set(name, this.at);
  }

  /** `map` in the order the text first names its keys. */
  #inTextOrder<T>(map: Map<string, T>): [string, T][] {
    return [...map].sort(([a], [b]) => this.#firstAt.get(a)! - this.#firstAt.get(b)!);
  }

  /** Where a `portLevelSettings` entry's `part` (loadBalancer, connectionPool, …) of the port's service goes. */
  portSettings(ref: HostRef, host: string, port: number, part: string): ServiceConfig {
    const p = this.#ports.get(this.portService(ref, host, port))!;
    p.replaced.add(part);
    return p.settings;
  }

  /** Once every document is read: each port's service, a copy of its host's with the port's settings. */
  finish(): void {
    const services = this.#inTextOrder(this.services);
    this.services.clear();
    for (const [name, svc] of services) this.services.set(name, svc);
    for (const [name, p] of this.#inTextOrder(this.#ports)) {
      const base = this.services.get(p.base)!;
      const copy: ServiceConfig = structuredClone(base);
      for (const part of p.replaced) for (const k of PORT_GROUPS[part] ?? []) delete copy[k];
      Object.assign(copy, structuredClone(p.settings));
      const n = this.names.of(p.ref);
      const forms = n.hosts.length > 0 || n.namespace === undefined ? n.hosts : [`${n.name}.${n.namespace}`, `${n.name}.${n.namespace}.svc`, `${n.name}.${n.namespace}.svc.cluster.local`];
      delete copy.namespaces;
      copy.hosts = [n.name, ...forms];
      copy.port = p.port;
      this.services.set(name, copy);
      this.info.set(name, { ...this.info.get(p.base)!, port: p.port });
    }
  }
}
