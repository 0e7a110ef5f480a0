/**
 * The mesh configuration's parser (its public types: config-types.ts; each service's entry:
 * service-config.ts). `createMesh` calls {@link parseMeshConfig} once; every error names the
 * field's path, what was expected and what was found. Balancer and discovery options are validated
 * by their own registered parsers.
 */
import type { Dispatcher } from 'undici';
import type { BalancerRegistry } from '../balancers/balancer.js';
import type { DiscoveryRegistry } from '../discovery/discovery.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { expectObject, join, optEnum, rejectUnknown, type Raw } from '../config/check.js';
import type { Locality } from '../routing/locality.js';
import type { InterceptorFactory } from '../request/layer.js';
import { checkRouteServices } from './route-services.js';
import { parseMeshHosts, type UnknownHosts } from './hosts.js';
import { parseInterceptors, parseService, SERVICE_NAME, type ParsedService } from './service-config.js';

export type { HashOn, HashRequest, ParsedBalancer } from '../balancers/config.js';
export { DEFAULT_BALANCER } from '../balancers/config.js';
export type { BalancerConfig, DiscoveryConfig, IstioLiveConfig, IstioMeshConfig, MeshConfig, MeshConfigJSON, PassthroughList, PoolConfig, ServiceConfig } from './config-types.js';
export type { ParsedPool, ParsedService } from './service-config.js';
export { DEFAULT_BUFFER_LIMIT_BYTES } from './service-config.js';

export interface ParsedMeshConfig {
  readonly services: readonly ParsedService[];
  readonly unknownHosts: UnknownHosts;
  readonly namespace: string | undefined;
  readonly clusterDomain: string;
  /** The caller's dispatcher for hosts that pass through, or null (the mesh makes an Agent). */
  readonly passthroughDispatcher: Dispatcher | null;
  readonly locality: Locality | undefined;
  readonly redirects: 'same-origin' | 'any';
  readonly interceptors: readonly InterceptorFactory[];
}

const MESH_KEYS = ['services', 'istio', 'unknownHosts', 'namespace', 'clusterDomain', 'balancers', 'discoveries', 'logger', 'random', 'now', 'locality', 'redirects', 'interceptors', 'passthroughDispatcher', '$schema'];

/** Validate the whole config; throws {@link InvalidConfigError} at the first bad field. */
export function parseMeshConfig(
  raw: unknown,
  balancers: BalancerRegistry,
  discoveries: DiscoveryRegistry,
): ParsedMeshConfig {
  const cfg = expectObject(raw, '');
  rejectUnknown(cfg, MESH_KEYS, '');
  if (cfg.$schema !== undefined && typeof cfg.$schema !== 'string') throw new InvalidConfigError('$schema', `expected the schema's URL or path, got ${describe(cfg.$schema)}`);
  for (const k of ['random', 'now'] as const) {
    if (cfg[k] !== undefined && typeof cfg[k] !== 'function') {
      throw new InvalidConfigError(k, `expected a function, got ${describe(cfg[k])}`);
    }
  }
  checkLogger(cfg.logger);
  const meshHosts = parseMeshHosts(cfg);
  const passthroughDispatcher = cfg.passthroughDispatcher ?? null;
  if (passthroughDispatcher !== null && typeof (passthroughDispatcher as { dispatch?: unknown }).dispatch !== 'function') {
    throw new InvalidConfigError('passthroughDispatcher', `expected an undici Dispatcher (an object with a dispatch method), got ${describe(passthroughDispatcher)}`);
  }
  // With `istio` (parsed by istio/live-config.ts), services may all come from the cluster.
  const services = cfg.services === undefined && cfg.istio !== undefined ? {} : expectObject(cfg.services, 'services');
  const hostOwner = new Map<string, string>();
  const parsed: ParsedService[] = [];
  for (const [name, value] of Object.entries(services)) {
    const path = join('services', name);
    if (!SERVICE_NAME.test(name)) {
      throw new InvalidConfigError(path, 'a service name must be a lower-case host name (letters, digits, "-" and ".")');
    }
    const svc = parseService(name, expectObject(value, path), path, balancers, discoveries, meshHosts);
    for (const h of svc.addresses) {
      const owner = hostOwner.get(h);
      if (owner !== undefined) throw new InvalidConfigError(path, `host "${h}" is already used by service "${owner}"`);
      hostOwner.set(h, name);
    }
    parsed.push(svc);
  }
  checkRouteServices(parsed);
  let locality: Locality | undefined;
  if (cfg.locality !== undefined) {
    const l = expectObject(cfg.locality, 'locality');
    rejectUnknown(l, ['region', 'zone'], 'locality');
    for (const k of ['region', 'zone'] as const) {
      if (l[k] !== undefined && (typeof l[k] !== 'string' || l[k] === '')) {
        throw new InvalidConfigError(join('locality', k), `expected a non-empty string, got ${describe(l[k])}`);
      }
    }
    locality = { region: l.region as string | undefined, zone: l.zone as string | undefined };
  }
  const redirects = optEnum(cfg, 'redirects', '', ['same-origin', 'any'], 'same-origin');
  const interceptors = parseInterceptors(cfg.interceptors, 'interceptors');
  return Object.freeze({ services: Object.freeze(parsed), ...meshHosts, passthroughDispatcher: passthroughDispatcher as Dispatcher | null, locality, redirects, interceptors });
}

/** `logger`: an object (console, pino…) whose `debug` and `warn`, when there, are functions. */
function checkLogger(raw: unknown): void {
  if (raw === undefined) return;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidConfigError('logger', `expected an object with debug and warn functions (console fits), got ${describe(raw)}`);
  }
  for (const k of ['debug', 'warn'] as const) {
    const f = (raw as Raw)[k];
    if (f !== undefined && typeof f !== 'function') throw new InvalidConfigError(join('logger', k), `expected a function, got ${describe(f)}`);
  }
}
