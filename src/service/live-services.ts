/**
 * Services whose config comes and goes while the mesh runs (live Istio config, istio/live.ts):
 * added, reconfigured, replaced and removed in the mesh's service and host tables, each change
 * one synchronous step, so a request is routed either before it or after it.
 *
 * - A config that keeps the endpoints (same discovery, pool and TLS) is applied in place with
 *   `Service.reconfigure`: endpoints, pools and discovery carry over.
 * - Otherwise a new service is built and started; once its discovery has answered it takes the
 *   host names, and the old one — serving until then — closes with the mesh's grace: the
 *   requests it is running finish on it. When the new one's discovery has not answered within its
 *   `readyTimeoutMs`, it takes over then only if the old one has no endpoints; else the old one
 *   keeps serving (warned once) until the new one's discovery answers.
 * - A service given in `services` merges with the live config: its own fields win, key by key
 *   (`{ ...live, ...given }`; `endpoints` and `discovery` count as one key); when the live config
 *   for it goes away it returns to its own.
 */
import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ServiceConfig } from './config-types.js';
import type { ParsedService } from './config.js';
import type { Service } from './service.js';

export interface LiveServiceDeps {
  /** The mesh's services by name (shared: stats, close and `mesh.service` read it). */
  readonly services: Map<string, Service>;
  /** The dispatcher's host table (shared). */
  readonly hosts: Map<string, Service>;
  /** Tell the dispatcher the host table changed. */
  routesChanged(): void;
  /** Parse one service's config as createMesh would. @throws InvalidConfigError */
  parse(name: string, raw: ServiceConfig): ParsedService;
  /** Build a service (its interceptors included), not started. */
  make(svc: ParsedService): Service;
  graceMs(): number;
  readonly log: Logger;
}

export class LiveServices {
  readonly #deps: LiveServiceDeps;
  /** The services given in `services`: raw (to merge) and as parsed at createMesh (to return to). */
  readonly #given: ReadonlyMap<string, { raw: ServiceConfig; parsed: ParsedService }>;
  /** Names whose config comes from live config now. */
  readonly #live = new Set<string>();
  /** The config each parsed service was made from, as JSON: an unchanged one is not applied again. */
  readonly #source = new WeakMap<ParsedService, string>();
  /** The source of the config in force, by name. */
  readonly #inForce = new Map<string, string>();
  /** Replacements started, not yet taking traffic (their discovery has not answered), with the source they were made from. */
  readonly #starting = new Map<string, { service: Service; source: string }>();
  /** Replaced and removed services still closing. */
  readonly #closing = new Set<Service>();

  constructor(deps: LiveServiceDeps, given: ReadonlyMap<string, { raw: ServiceConfig; parsed: ParsedService }>) {
    this.#deps = deps;
    this.#given = given;
  }

  /**
   * Parse a whole live config (service name → config), merged with the given services, and check
   * that no host name is claimed twice. Returns the parsed services, or what is wrong.
   */
  check(configs: Readonly<Record<string, ServiceConfig>>): Map<string, ParsedService> | string {
    const out = new Map<string, ParsedService>();
    for (const [name, cfg] of Object.entries(configs)) {
      const given = this.#given.get(name);
      try {
        const merged = given ? merge(cfg, given.raw) : cfg;
        const parsed = this.#deps.parse(name, merged);
        this.#source.set(parsed, JSON.stringify(merged));
        out.set(name, parsed);
      } catch (err) {
        return `service ${name}: ${messageOf(err)}`;
      }
    }
    const owner = new Map<string, string>();
    const all = [...out.values(), ...[...this.#given.values()].filter((g) => !out.has(g.parsed.name)).map((g) => g.parsed)];
    for (const svc of all) {
      for (const h of svc.addresses) {
        const o = owner.get(h);
        if (o !== undefined && o !== svc.name) return `service ${svc.name}: host "${h}" is already used by service "${o}"`;
        owner.set(h, svc.name);
      }
    }
    return out;
  }

  /** Make the live services exactly `next` (from {@link check}); the given services not in it return to their own config. */
  apply(next: ReadonlyMap<string, ParsedService>): void {
    for (const [name, svc] of next) this.#put(name, svc);
    for (const name of [...this.#live]) {
      if (next.has(name)) continue;
      const given = this.#given.get(name);
      this.#inForce.delete(name);
      if (given) this.#put(name, given.parsed);
      else this.#remove(name);
      this.#live.delete(name);
    }
    for (const name of next.keys()) this.#live.add(name);
    this.#deps.routesChanged();
  }

  /** Make `svc` the config of service `name`, unless it is made from the same config as the one in force (its state is then kept). */
  #put(name: string, svc: ParsedService): void {
    const services = this.#deps.services;
    const current = services.get(name);
    const source = this.#source.get(svc) ?? '';
    const starting = this.#starting.get(name);
    if (starting !== undefined) {
      if (starting.source === source) return; // on its way
      this.#starting.delete(name);
      this.#retire(starting.service);
    }
    if (current !== undefined && this.#inForce.get(name) === source) return;
    if (current !== undefined && current.reconfigure(svc)) {
      this.#inForce.set(name, source);
      return this.#route(current, current);
    }
    let made: Service | undefined;
    try {
      made = this.#deps.make(svc);
      made.start();
    } catch (err) {
      void made?.destroy();
      this.#deps.log.warn(`live config: service ${name} could not start, ${current ? 'keeping its previous config' : 'not added'}: ${messageOf(err)}`);
      return;
    }
    if (current === undefined) {
      services.set(name, made);
      this.#inForce.set(name, source);
      return this.#route(undefined, made);
    }
    // The old service keeps the traffic until the new one's discovery has answered. After the
    // new one's readyTimeoutMs it takes over only if the old one has no endpoints either: a
    // replacement whose discovery never answered (an API server down or hanging) would otherwise
    // take the host names with none, and every request would fail until it answers.
    const replacement = made;
    this.#starting.set(name, { service: replacement, source });
    const swap = (): void => {
      clearTimeout(timer);
      if (this.#starting.get(name)?.service !== replacement) return;
      this.#starting.delete(name);
      const before = services.get(name);
      services.set(name, replacement);
      this.#inForce.set(name, source);
      this.#route(before, replacement);
      if (before !== undefined) this.#retire(before);
      this.#deps.routesChanged();
    };
    const timer = setTimeout(() => {
      if (this.#starting.get(name)?.service !== replacement) return;
      const known = services.get(name)?.endpoints().length ?? 0;
      if (known === 0) return swap();
      this.#deps.log.warn(
        `live config: service ${name}: the new config's discovery has not answered in ${svc.readyTimeoutMs} ms; the previous config keeps serving its ${known} endpoints until it does`,
      );
    }, svc.readyTimeoutMs);
    timer.unref();
    void replacement.whenReady().then(swap);
  }

  /** Point the service's host names at `to` (those of `from` it no longer has are dropped). */
  #route(from: Service | undefined, to: Service): void {
    const hosts = this.#deps.hosts;
    if (from !== undefined) for (const [h, s] of hosts) if (s === from) hosts.delete(h);
    for (const h of to.config.addresses) hosts.set(h, to);
  }

  #remove(name: string): void {
    const starting = this.#starting.get(name);
    if (starting !== undefined) {
      this.#starting.delete(name);
      this.#retire(starting.service);
    }
    const current = this.#deps.services.get(name);
    if (current === undefined) return;
    this.#deps.services.delete(name);
    for (const [h, s] of this.#deps.hosts) if (s === current) this.#deps.hosts.delete(h);
    this.#retire(current);
  }

  #retire(service: Service): void {
    this.#closing.add(service);
    void service
      .close(this.#deps.graceMs())
      .catch(() => {})
      .then(() => this.#closing.delete(service));
  }

  /** Settles once every replaced or removed service has closed; with `destroy`, their requests are cut now. */
  async closeRetired(destroy = false): Promise<void> {
    for (const s of this.#starting.values()) this.#closing.add(s.service);
    this.#starting.clear();
    await Promise.allSettled([...this.#closing].map((s) => (destroy ? s.destroy() : s.close(this.#deps.graceMs()))));
  }
}

/** `{ ...live, ...given }`, where `endpoints` and `discovery` count as one field (either wins over both). */
function merge(live: ServiceConfig, given: ServiceConfig): ServiceConfig {
  const out: Record<string, unknown> = { ...live, ...given };
  if (given.endpoints !== undefined && given.discovery === undefined) delete out.discovery;
  if (given.discovery !== undefined && given.endpoints === undefined) delete out.endpoints;
  return out as ServiceConfig;
}
