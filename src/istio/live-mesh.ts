/**
 * Live Istio config wired into a mesh: the mesh's services and host tables handed to
 * service/live-services.ts, and the watch (live.ts) that feeds it. mesh.ts calls
 * {@link startIstioLive} once its own services have started.
 */
import type { MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';
import { parseMeshConfig, type ParsedMeshConfig, type ParsedService, type ServiceConfig } from '../service/config.js';
import type { BalancerRegistry } from '../balancers/balancer.js';
import type { DiscoveryRegistry } from '../discovery/discovery.js';
import { LiveServices } from '../service/live-services.js';
import type { Service } from '../service/service.js';
import { IstioLive } from './live.js';
import type { ParsedIstioLive } from './live-config.js';

export interface LiveMeshParts {
  readonly config: ParsedIstioLive;
  readonly parsed: ParsedMeshConfig;
  /** The `services` given to createMesh, as written (to merge with the live config). */
  readonly rawServices: Readonly<Record<string, ServiceConfig>>;
  readonly registries: { readonly balancers: BalancerRegistry; readonly discoveries: DiscoveryRegistry };
  readonly services: Map<string, Service>;
  readonly hosts: Map<string, Service>;
  routesChanged(): void;
  /** Build a service as createMesh does (interceptors included), not started. */
  make(svc: ParsedService): Service;
  graceMs(): number;
  readonly events: MeshEvents;
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
}

export function startIstioLive(p: LiveMeshParts): { istio: IstioLive; live: LiveServices } {
  const { parsed, registries } = p;
  const given = new Map<string, { raw: ServiceConfig; parsed: ParsedService }>();
  for (const svc of parsed.services) given.set(svc.name, { raw: p.rawServices[svc.name]!, parsed: svc });
  const live = new LiveServices(
    {
      services: p.services,
      hosts: p.hosts,
      routesChanged: p.routesChanged,
      parse: (name, cfg) => parseMeshConfig({ services: { [name]: cfg }, namespace: parsed.namespace, clusterDomain: parsed.clusterDomain }, registries.balancers, registries.discoveries).services[0]!,
      make: p.make,
      graceMs: p.graceMs,
      log: p.log,
    },
    given,
  );
  const istio = new IstioLive(p.config, live, { events: p.events, log: p.log, now: p.now, random: p.random, namespace: parsed.namespace, clusterDomain: parsed.clusterDomain });
  return { istio, live };
}
