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
import { parseAllDocuments } from 'yaml';
import type { DiscoveryConfig, ServiceConfig } from '../service/config.js';
import { InvalidConfigError } from '../core/errors.js';
import { Doc, isObj } from './doc.js';
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
 * @throws InvalidConfigError on malformed documents (with the document and path), or on any
 *   unsupported field when `strict` is set.
 */
export function fromIstio(yamlText: string, options: FromIstioOptions = {}): FromIstioResult {
  const unsupported: FromIstioResult['unsupported'] = [];
  const services = new Map<string, ServiceConfig>();
  const info = new Map<string, { namespace?: string; host: string }>();
  const docs = parseAllDocuments(yamlText);
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new InvalidConfigError(`document ${i + 1}`, `not valid YAML: ${d.errors[0]!.message}`);
    const raw = d.toJS() as unknown;
    if (raw == null) return;
    if (!isObj(raw)) throw new InvalidConfigError(`document ${i + 1}`, 'expected a Kubernetes object');
    const kind = String(raw.kind);
    const meta = isObj(raw.metadata) ? raw.metadata : {};
    const doc = new Doc(`${kind} ${String(meta.name ?? `#${i + 1}`)}`, unsupported);
    if (!/^networking\.istio\.io\/(v1|v1beta1|v1alpha3)$/.test(String(raw.apiVersion))) {
      doc.unsupported('apiVersion', `${String(raw.apiVersion)} is not a networking.istio.io version meshlet reads`);
      return;
    }
    const spec = doc.obj(raw.spec, 'spec');
    if (kind === 'DestinationRule') destinationRule(spec, doc, services, info);
    else if (kind === 'VirtualService') virtualService(spec, doc, services, info);
    else doc.unsupported('kind', `${kind} is not supported (DestinationRule and VirtualService are)`);
  });
  const out: Record<string, ServiceConfig> = {};
  for (const [name, svc] of services) {
    const i = info.get(name)!;
    out[name] = options.discovery ? { discovery: options.discovery(name, { namespace: i.namespace, host: i.host }), ...svc } : svc;
  }
  if (options.strict && unsupported.length > 0) {
    throw new InvalidConfigError('fromIstio', `unsupported fields: ${unsupported.map((u) => `${u.path} (${u.message})`).join('; ')}`);
  }
  return { services: out, unsupported };
}
