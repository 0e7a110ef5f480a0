/**
 * How a service hands a request its route sends elsewhere to another service of the mesh (the
 * forward layer), and a mirrored copy (the mirror layer): the call leaves this service's books
 * and enters the other's request path after its routes (Service.adopt / Service.copy). The other
 * service is looked up by name when a request needs it: createMesh checked the name
 * (route-services.ts), and every service exists before the first request.
 */
import type { Dispatcher } from 'undici';
import type { Handoff } from '../layers/forward.js';
import type { Call } from '../request/call.js';
import type { ParsedRoute } from '../layers/route.js';

/** What a handoff needs of a service (service.ts's Service; an interface, so this file need not import it). */
export interface Peer {
  readonly name: string;
  readonly config: { readonly routes: readonly ParsedRoute[] };
  release(call: Call): void;
  adopt(call: Call, subset: string | null, from: string, route: ParsedRoute): void;
  copy(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string, subset: string | null, from: string, timeoutMs: number): void;
}

export function handoffFor(self: Peer, peer: (name: string) => Peer | undefined): Handoff {
  const other = (name: string): Peer => {
    const s = peer(name);
    if (s === undefined) throw new Error(`meshlet: no service "${name}" in this mesh`); // createMesh refuses such a config
    return s;
  };
  return {
    send(call: Call, service: string, subset: string | null, routeIndex: number): void {
      const to = other(service);
      self.release(call);
      to.adopt(call, subset, self.name, self.config.routes[routeIndex]!);
    },
    copy(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, host: string, service: string, subset: string | null, timeoutMs: number): void {
      other(service).copy(opts, handler, host, subset, self.name, timeoutMs);
    },
  };
}
