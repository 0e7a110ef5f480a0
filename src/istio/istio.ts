/**
 * `fromIstio(yaml)`: Istio DestinationRule and VirtualService documents (networking.istio.io
 * v1, v1beta1, v1alpha3) turned into meshlet service configuration. What maps, and how, is in the
 * README; every field that does not map is reported by path in `unsupported` — never silently
 * dropped — and `{ strict: true }` turns any such report into an error.
 *
 * Notes on meaning: Istio's `connectionPool.tcp.maxConnections` limits connections per cluster and
 * proxy; meshlet's `pool.connections` is per endpoint. Istio's `minHealthPercent` is Envoy's panic
 * threshold, and maps to `panicThreshold`. Durations ("10s", "1.5s", "300ms") become ms.
 *
 * The field-by-field tables are destination-rule.ts and virtual-service.ts; doc.ts reads a document
 * and reports what it does not take.
 */
import type { DiscoveryConfig, ServiceConfig } from '../service/config.js';
import { InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { Doc, isObj, put } from './doc.js';
import { readYaml } from './yaml.js';
import { destinationRule } from './destination-rule.js';
import { virtualService } from './virtual-service.js';

export interface FromIstioOptions {
  /** Where each service's endpoints come from; without it, add `discovery` yourself. */
  discovery?: (service: string, info: { namespace: string | undefined; host: string }) => DiscoveryConfig;
  /** Throw InvalidConfigError listing every unsupported field instead of returning them. */
  strict?: boolean;
}

export interface FromIstioResult {
  services: Record<string, ServiceConfig>;
  /** Fields meshlet does not support, by document and path. */
  unsupported: { path: string; message: string }[];
}

/**
 * Convert Istio DestinationRule and VirtualService YAML into meshlet services.
 * @throws InvalidConfigError on malformed documents (with the document and path; YAML errors with
 *   the line and column), or on any unsupported field when `strict` is set.
 */
export function fromIstio(yamlText: string, options: FromIstioOptions = {}): FromIstioResult {
  const unsupported: FromIstioResult['unsupported'] = [];
  const services = new Map<string, ServiceConfig>();
  const info = new Map<string, { namespace?: string; host: string }>();
  if (typeof yamlText !== 'string') throw new InvalidConfigError('fromIstio', `expected YAML text, got ${describeValue(yamlText)}`);
  checkOptions(options);
  readYaml(yamlText).forEach((raw, i) => {
    if (raw === null) return;
    if (!isObj(raw)) throw new InvalidConfigError(`document ${i + 1}`, `expected a Kubernetes object, got ${describeValue(raw)}`);
    const kind = typeof raw.kind === 'string' ? raw.kind : undefined;
    const name = isObj(raw.metadata) && typeof raw.metadata.name === 'string' ? raw.metadata.name : `#${i + 1}`;
    const doc = new Doc(`${kind ?? 'document'} ${name}`, unsupported);
    if (typeof raw.apiVersion !== 'string' || !/^networking\.istio\.io\/(v1|v1beta1|v1alpha3)$/.test(raw.apiVersion)) {
      const version = typeof raw.apiVersion === 'string' ? raw.apiVersion : describeValue(raw.apiVersion);
      doc.unsupported('apiVersion', `${version} is not a networking.istio.io version meshlet reads`);
      return;
    }
    const spec = doc.obj(raw.spec, 'spec');
    if (kind === 'DestinationRule') destinationRule(spec, doc, services, info);
    else if (kind === 'VirtualService') virtualService(spec, doc, services, info);
    else doc.unsupported('kind', `${kind === undefined ? describeValue(raw.kind) : kind} is not supported (DestinationRule and VirtualService are)`);
  });
  const out: Record<string, ServiceConfig> = {};
  for (const [name, svc] of services) {
    const i = info.get(name)!;
    put(out, name, options.discovery ? { discovery: options.discovery(name, { namespace: i.namespace, host: i.host }), ...svc } : svc);
  }
  if (options.strict && unsupported.length > 0) {
    throw new InvalidConfigError('fromIstio', `unsupported fields: ${unsupported.map((u) => `${u.path} (${u.message})`).join('; ')}`);
  }
  return { services: out, unsupported };
}

function checkOptions(options: unknown): void {
  if (!isObj(options)) throw new InvalidConfigError('fromIstio options', `expected an object, got ${describeValue(options)}`);
  for (const k of Object.keys(options)) {
    if (k !== 'discovery' && k !== 'strict') throw new InvalidConfigError(`fromIstio options.${k}`, 'unknown option (expected discovery, strict)');
  }
  if (options.discovery !== undefined && typeof options.discovery !== 'function') {
    throw new InvalidConfigError('fromIstio options.discovery', `expected a function, got ${describeValue(options.discovery)}`);
  }
  if (options.strict !== undefined && typeof options.strict !== 'boolean') {
    throw new InvalidConfigError('fromIstio options.strict', `expected true or false, got ${describeValue(options.strict)}`);
  }
}
