/**
 * Several DestinationRules for one host, merged as Istio merges them (istio/pilot,
 * pilot/pkg/model/push_context.go `sortConfigBySelectorAndCreationTime` and
 * pilot/pkg/model/destination_rule.go `mergeDestinationRule`).
 *
 * Order: rules with a `workloadSelector` first, then the oldest `metadata.creationTimestamp`,
 * then by name, then by namespace. A document without a timestamp counts as created at Go's zero
 * time (before any other), as a config without one does in pilot; documents equal on all of these
 * (the same name twice) keep their order in the text.
 *
 * Merge, in that order: the first rule's subsets, then each later rule's whose name is new (a name
 * already defined is ignored, as pilot ignores it with a DuplicatedSubsets metric); the top-level
 * `trafficPolicy` of the first rule that has one, whole (its portLevelSettings too), a later one
 * ignored. A workload's rules (their selector selects this process) are kept apart from the
 * others: the first such rule's selector wins, merged only with rules of the same selector (pilot
 * keeps differing selectors apart and gives the proxy the first that matches, sidecar.go
 * `DestinationRule`), and a rule without a selector merges into it only when its `exportTo` lists
 * "." — with ENABLE_ENHANCED_DESTINATIONRULE_MERGE (on by default) pilot merges rules only when
 * the new one's exportTo is a superset of the other's, and a workload's rule is exported to "."
 * alone. Whatever a later rule has that is ignored is reported, naming the rule that won.
 */
import { describe as describeValue } from '../core/endpoint-spec.js';
import { isObj, type Doc, type Obj } from './doc.js';

/**
 * What orders a DestinationRule document among the others of its host — and a VirtualService
 * among the others of its hosts (pilot's `sortConfigByCreationTime`: the same order without
 * selectors), for fromIstio reads both in pilot's order.
 */
export interface RuleMeta {
  readonly selector: boolean;
  /** `metadata.creationTimestamp` in ms since the epoch; -Infinity without one (Go's zero time). */
  readonly created: number;
  readonly name: string;
  readonly namespace: string;
  /** Its place in the text: the last tie-breaker. */
  readonly index: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** A document's `metadata.creationTimestamp` (RFC 3339, as the API server writes it) in ms; -Infinity when absent. */
export function creationTime(v: unknown, doc: Doc): number {
  if (v === undefined || v === null) return -Infinity;
  const ms = typeof v === 'string' && RFC3339.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) doc.bad('metadata.creationTimestamp', `expected an RFC 3339 time such as "2024-05-01T12:00:00Z", got ${describeValue(v)}`);
  return ms;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Pilot's order: with a workloadSelector first, then oldest, then name, then namespace (then text order). */
export function compareRules(a: RuleMeta, b: RuleMeta): number {
  if (a.selector !== b.selector) return a.selector ? -1 : 1;
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return byText(a.name, b.name) || byText(a.namespace, b.namespace) || a.index - b.index;
}

/** One host's rules merged so far. */
interface HostRules {
  /** The rule read first (the merged rule's own), and its selector's labels as a key when it has one. */
  first: { label: string; selector: string | undefined };
  policyFrom: string | undefined;
  /** Each subset name, with the rule that defined it. */
  subsets: Map<string, string>;
}

/** A workloadSelector's matchLabels as a key, equal for equal label sets. */
function selectorKey(spec: Obj): string | undefined {
  const ws = spec.workloadSelector;
  if (ws === undefined) return undefined;
  const labels = isObj(ws) && isObj(ws.matchLabels) ? ws.matchLabels : {};
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => byText(a, b)));
}

/** What the rule's exportTo lists, when it is a list of strings. */
const exportsTo = (spec: Obj, to: string): boolean => Array.isArray(spec.exportTo) && spec.exportTo.includes(to);

/** How a report names the rule that won: its label, with its namespace when it has one. */
export const named = (doc: Doc): string => (doc.namespace === undefined ? doc.label : `${doc.label} (namespace ${doc.namespace})`);

/** The DestinationRules of each service fromIstio makes, merged in the order they are read. */
export class RuleMerge {
  readonly #hosts = new Map<string, HostRules>();

  /**
   * Whether the rule `spec` (one that applies to this process) takes part in the merge for
   * `service`; when not, it is reported whole and left out.
   */
  admit(service: string, spec: Obj, doc: Doc): boolean {
    const selector = selectorKey(spec);
    const host = this.#hosts.get(service);
    if (host === undefined) {
      this.#hosts.set(service, { first: { label: named(doc), selector }, policyFrom: undefined, subsets: new Map() });
      return true;
    }
    const first = host.first;
    if (first.selector === undefined || first.selector === selector) return true;
    if (selector !== undefined) {
      doc.unsupported('spec', `not applied: ${first.label}, whose workloadSelector also selects this workload, comes first, and Istio gives a workload the first rule that selects it, merged only with rules of the same selector`);
      return false;
    }
    if (exportsTo(spec, '.')) return true;
    doc.unsupported('spec', `not applied to this workload: ${first.label} selects it by its workloadSelector, and Istio merges a rule without a selector into that one only when its exportTo lists "."`);
    return false;
  }

  /** True when the rule takes `spec.trafficPolicy`: no earlier rule of the host had one (else it is reported). */
  takePolicy(service: string, doc: Doc): boolean {
    const host = this.#hosts.get(service)!;
    if (host.policyFrom === undefined) {
      host.policyFrom = named(doc);
      return true;
    }
    doc.unsupported('spec.trafficPolicy', `ignored: ${host.policyFrom}, which comes first for this host, has a trafficPolicy, and Istio takes the first rule's whole`);
    return false;
  }

  /** True when the subset `name` is new for the host (else it is reported at `path`). */
  takeSubset(service: string, name: string, doc: Doc, path: string): boolean {
    const host = this.#hosts.get(service)!;
    const from = host.subsets.get(name);
    if (from === undefined) {
      host.subsets.set(name, named(doc));
      return true;
    }
    doc.unsupported(path, `ignored: subset "${name}" is defined by ${from}, which comes first for this host, and Istio keeps the first rule's`);
    return false;
  }
}
