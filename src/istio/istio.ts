/**
 * `fromIstio(yaml)`: Istio DestinationRule and VirtualService documents (networking.istio.io
 * v1, v1beta1, v1alpha3) turned into meshlet service configuration that does what a sidecar does
 * with them. What maps, and how, is in the README; every field that does not map, or maps with
 * another meaning, is reported by path in `unsupported` — never silently dropped — and
 * `{ strict: true }` turns any such report into an error.
 *
 * Two passes: the hosts every document names first (names.ts decides each host's service name
 * from all of them), then the documents field by field — destination-rule.ts (with
 * traffic-policy.ts; a host's several rules in pilot's order, merged by rule-merge.ts) and
 * virtual-service.ts (with match.ts, destinations.ts, route-policy.ts; in pilot's order too);
 * doc.ts reads a document and reports what it does not take. Last, defaults.ts fills in Istio's
 * defaults where meshlet's own differ.
 */
import type { DiscoveryConfig, ServiceConfig } from '../service/config.js';
import { InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { Doc, isObj, put, type Obj } from './doc.js';
import { readYaml } from './yaml.js';
import { destinationRule } from './destination-rule.js';
import { virtualService } from './virtual-service.js';
import { destinationHosts } from './destinations.js';
import { checkSource, Identity, type SourceIdentity } from './identity.js';

export type { SourceIdentity } from './identity.js';
import { Names } from './names.js';
import { ServiceTable, type DiscoveryInfo } from './services.js';
import { withIstioDefaults } from './defaults.js';
import { compareRules, creationTime, RuleMerge, type RuleMeta } from './rule-merge.js';

export type { DiscoveryInfo } from './services.js';

export interface FromIstioOptions {
  /**
   * Where each service's endpoints come from; without it, add `discovery` yourself. `service` is
   * the meshlet service's name; `info.name` and `info.namespace` are its Kubernetes Service's;
   * `info.port`, for the service of one port of a host (`9080.reviews`), the endpoints' port.
   */
  discovery?: (service: string, info: DiscoveryInfo) => DiscoveryConfig;
  /**
   * The Kubernetes namespace this process runs in: short hosts of documents without
   * `metadata.namespace` are in it, and its services keep their short names (`reviews`; one of
   * another namespace is `reviews.staging`). @default none
   */
  namespace?: string;
  /** Throw InvalidConfigError listing every unsupported field instead of returning them. */
  strict?: boolean;
  /**
   * Who this process is, for `sourceLabels` and `sourceNamespace` in match blocks (and a
   * DestinationRule's `workloadSelector`): its labels (else the downward-API `labelsFile`,
   * default /etc/podinfo/labels) and namespace (else `namespace`, else `env.POD_NAMESPACE`).
   */
  source?: SourceIdentity;
}

export interface FromIstioResult {
  services: Record<string, ServiceConfig>;
  /** Fields meshlet does not support, or applies otherwise than Istio, by document and path. */
  unsupported: { path: string; message: string }[];
}

type Read = { kind: 'DestinationRule' | 'VirtualService'; spec: Obj; doc: Doc; order: RuleMeta };

/**
 * Convert Istio DestinationRule and VirtualService YAML into meshlet services, with Istio's
 * defaults where meshlet's own differ.
 * @throws InvalidConfigError on malformed documents (with the document and path; YAML errors with
 *   the line and column), or on any unsupported field when `strict` is set.
 */
export function fromIstio(yamlText: string, options: FromIstioOptions = {}): FromIstioResult {
  /** Each document's reports, in document order. */
  const byDocument: FromIstioResult['unsupported'][] = [];
  if (typeof yamlText !== 'string') throw new InvalidConfigError('fromIstio', `expected YAML text, got ${describeValue(yamlText)}`);
  checkOptions(options);
  const identity = new Identity(checkSource(options.source), options.namespace);
  const reads: Read[] = [];
  readYaml(yamlText).forEach((raw, i) => {
    if (raw === null) return;
    if (!isObj(raw)) throw new InvalidConfigError(`document ${i + 1}`, `expected a Kubernetes object, got ${describeValue(raw)}`);
    const kind = typeof raw.kind === 'string' ? raw.kind : undefined;
    const meta = isObj(raw.metadata) ? raw.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : `#${i + 1}`;
    const reports: FromIstioResult['unsupported'] = [];
    byDocument.push(reports);
    const doc = new Doc(`${kind ?? 'document'} ${name}`, reports, typeof meta.namespace === 'string' ? meta.namespace : undefined);
    if (typeof raw.apiVersion !== 'string' || !/^networking\.istio\.io\/(v1|v1beta1|v1alpha3)$/.test(raw.apiVersion)) {
      const version = typeof raw.apiVersion === 'string' ? raw.apiVersion : describeValue(raw.apiVersion);
      doc.unsupported('apiVersion', `${version} is not a networking.istio.io version meshlet reads`);
      return;
    }
    const spec = doc.obj(raw.spec, 'spec');
    // The namespace names hosts (`reviews.<namespace>.svc`) and services: a Kubernetes one, or none.
    if (meta.namespace !== undefined && !(typeof meta.namespace === 'string' && NAMESPACE.test(meta.namespace))) {
      doc.bad('metadata.namespace', `expected a Kubernetes namespace, got ${describeValue(meta.namespace)}`);
    }
    if (kind === 'DestinationRule' || kind === 'VirtualService') reads.push({ kind, spec, doc, order: ruleMeta(kind, spec, meta, doc, i) });
    else doc.unsupported('kind', `${kind === undefined ? describeValue(raw.kind) : kind} is not supported (DestinationRule and VirtualService are)`);
  });
  // First the hosts every document names, so that each host's service name is known (names.ts).
  const names = new Names(options.namespace);
  for (const { kind, spec, doc } of reads) {
    if (kind === 'DestinationRule') names.note(spec.host, doc.namespace);
    else {
      if (Array.isArray(spec.hosts)) for (const h of spec.hosts) names.note(h, doc.namespace);
      for (const h of destinationHosts(spec)) names.note(h, doc.namespace);
    }
  }
  const table = new ServiceTable(names);
  // DestinationRules in pilot's order, merged per host (rule-merge.ts); then the VirtualServices,
  // in pilot's order too (oldest, then name, then namespace), so that a newer VirtualService for a
  // host already routed adds its routes after the older one's, whatever its name or place.
  const inPilotOrder = (k: Read['kind']) => reads.filter((r) => r.kind === k).sort((a, b) => compareRules(a.order, b.order));
  const merge = new RuleMerge();
  for (const { spec, doc, order } of inPilotOrder('DestinationRule')) {
    table.at = order.index;
    destinationRule(spec, doc, table, identity, merge);
  }
  const routedBy = new Map<string, string>();
  for (const { spec, doc, order } of inPilotOrder('VirtualService')) {
    table.at = order.index;
    virtualService(spec, doc, table, identity, routedBy);
  }
  table.finish(); // the services of single ports, now that their hosts' rules are read
  const unsupported = byDocument.flat();
  const out: Record<string, ServiceConfig> = {};
  for (const [name, svc] of table.services) {
    const withDefaults = withIstioDefaults(svc);
    put(out, name, options.discovery ? { discovery: options.discovery(name, { ...table.info.get(name)! }), ...withDefaults } : withDefaults);
  }
  if (options.strict && unsupported.length > 0) {
    throw new InvalidConfigError('fromIstio', `unsupported fields: ${unsupported.map((u) => `${u.path} (${u.message})`).join('; ')}`);
  }
  return { services: out, unsupported };
}

/**
 * What orders a DestinationRule or VirtualService among the others of its host (rule-merge.ts);
 * a VirtualService has no workloadSelector (one written is reported as an unknown field).
 */
function ruleMeta(kind: Read['kind'], spec: Obj, meta: Obj, doc: Doc, index: number): RuleMeta {
  return {
    selector: kind === 'DestinationRule' && spec.workloadSelector !== undefined,
    created: creationTime(meta.creationTimestamp, doc),
    name: typeof meta.name === 'string' ? meta.name : '',
    namespace: doc.namespace ?? '',
    index,
  };
}

const OPTIONS = ['discovery', 'namespace', 'strict', 'source'];
/** A Kubernetes namespace: a DNS-1123 label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function checkOptions(options: unknown): void {
  if (!isObj(options)) throw new InvalidConfigError('fromIstio options', `expected an object, got ${describeValue(options)}`);
  for (const k of Object.keys(options)) {
    if (!OPTIONS.includes(k)) throw new InvalidConfigError(`fromIstio options.${k}`, `unknown option (expected ${OPTIONS.join(', ')})`);
  }
  if (options.discovery !== undefined && typeof options.discovery !== 'function') {
    throw new InvalidConfigError('fromIstio options.discovery', `expected a function, got ${describeValue(options.discovery)}`);
  }
  if (options.namespace !== undefined && (typeof options.namespace !== 'string' || !NAMESPACE.test(options.namespace))) {
    throw new InvalidConfigError('fromIstio options.namespace', `expected a Kubernetes namespace, got ${describeValue(options.namespace)}`);
  }
  if (options.strict !== undefined && typeof options.strict !== 'boolean') {
    throw new InvalidConfigError('fromIstio options.strict', `expected true or false, got ${describeValue(options.strict)}`);
  }
}
