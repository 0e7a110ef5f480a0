/** The services fromIstio is building, by name, with what `options.discovery` is told about each. */
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
}

export class ServiceTable {
  readonly services = new Map<string, ServiceConfig>();
  readonly info = new Map<string, DiscoveryInfo>();

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
    }
    return svc;
  }
}
