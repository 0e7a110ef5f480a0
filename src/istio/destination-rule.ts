/**
 * DestinationRule → a service's balancer, pools, outlier detection, TLS and subsets, field by field;
 * a host's several rules merged as pilot merges them (rule-merge.ts).
 */
import type { ServiceConfig, BalancerConfig } from '../service/config.js';
import type { SubsetConfig } from '../layers/route.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { put, type Doc, type Obj } from './doc.js';
import type { ServiceTable } from './services.js';
import { portNumber } from './destinations.js';
import type { Identity } from './identity.js';
import type { RuleMerge } from './rule-merge.js';

/** Whether `workloadSelector` (`{ matchLabels }`) selects this process: true, false, or why it is not known. */
function selectsMe(v: unknown, doc: Doc, identity: Identity): boolean | { why: string } {
  if (v === undefined) return true;
  const path = 'spec.workloadSelector';
  let want: Record<string, string> = {};
  doc.fields(doc.obj(v, path), path, { matchLabels: (x, xp) => (want = doc.record(x, xp, (y, yp) => doc.str(y, yp))) });
  const mine = identity.labels();
  if (!mine.known) return { why: mine.why };
  return Object.entries(want).every(([k, x]) => Object.hasOwn(mine.value, k) && mine.value[k] === x);
}
import { connectionPool, outlierDetection, tls, type Scope } from './traffic-policy.js';
import { loadBalancer } from './load-balancer.js';

const NOT_A_SUBSET = (what: string): string => `a subset's ${what} is not supported: meshlet applies it per service`;

/** Where the parts of a `portLevelSettings` entry go: the port's service (services.ts). */
type PortInto = (port: number, part: string) => ServiceConfig;

/** `trafficPolicy` of the rule (scope 'service', with `ports` for its portLevelSettings) or of a subset. */
function trafficPolicy(tp: Obj, doc: Doc, path: string, scope: Scope, into: ServiceConfig | SubsetConfig<BalancerConfig>, ports?: PortInto): void {
  const handlers: Record<string, (v: unknown, p: string) => void> = {
    loadBalancer: (v, p) => {
      const lb = loadBalancer(doc.obj(v, p), doc, p, scope);
      if (lb.balancer !== undefined) into.balancer = lb.balancer;
      // A subset's loadBalancer replaces the rule's whole (Istio's MergeTrafficPolicy): without a
      // balancer of its own, the subset has Istio's default, not the service's.
      else if (scope === 'subset') into.balancer = 'least-request';
      if (scope === 'service') {
        const svc = into as ServiceConfig;
        if (lb.localityLb !== undefined) svc.localityLb = lb.localityLb;
        if (lb.slowStart !== undefined) svc.slowStart = lb.slowStart;
      }
    },
    connectionPool: (v, p) => {
      const cp = connectionPool(doc.obj(v, p), doc, p, scope);
      if (cp.limits !== undefined) into.limits = { ...into.limits, ...cp.limits };
      if (cp.pool !== undefined) (into as ServiceConfig).pool = { ...(into as ServiceConfig).pool, ...cp.pool };
    },
    portLevelSettings:
      ports === undefined
        ? doc.reportAs("a subset's per-port policies are not supported: the port's service takes the rule's")
        : (v, p) => doc.list(v, p).forEach((e, i) => portSettings(doc.obj(e, `${p}[${i}]`), doc, `${p}[${i}]`, ports)),
    tunnel: doc.reportAs('tunnelling (HTTP CONNECT to a proxy) is not supported'),
    proxyProtocol: doc.reportAs('the PROXY protocol is not supported'),
  };
  if (scope === 'service') {
    const svc = into as ServiceConfig;
    Object.assign(handlers, {
      outlierDetection: (v: unknown, p: string) => {
        const od = outlierDetection(doc.obj(v, p), doc, p);
        svc.outlierDetection = od.outlierDetection;
        svc.panicThreshold = od.panicThreshold;
      },
      tls: (v: unknown, p: string) => {
        const t = tls(doc.obj(v, p), doc, p);
        if (t !== undefined) svc.tls = t;
        else delete svc.tls;
      },
      retryBudget: (v: unknown, p: string) => {
        const budget: { percent?: number } = {};
        doc.fields(doc.obj(v, p), p, {
          percent: (x, xp) => (budget.percent = doc.percent(x, xp)),
          minRetryConcurrency: doc.reportAs("meshlet's retry budget is a share of requests over time, with retries per second as its floor, not concurrent retries"),
          budgetInterval: doc.reportAs('the retry budget counts over a 10 s window'),
        });
        svc.retry = { ...(svc.retry || {}), budget };
      },
    });
  } else {
    for (const k of ['outlierDetection', 'tls', 'retryBudget']) handlers[k] = doc.reportAs(NOT_A_SUBSET(k));
  }
  doc.fields(tp, path, handlers);
}

/**
 * One `portLevelSettings` entry: its loadBalancer, connectionPool, outlierDetection and tls, read
 * as the rule's are, into the service of its port, where each replaces the rule's (services.ts).
 */
function portSettings(e: Obj, doc: Doc, path: string, ports: PortInto): void {
  if (e.port === undefined) doc.bad(`${path}.port`, 'required');
  const port = portNumber(e.port, doc, `${path}.port`);
  const parts: Record<string, (v: unknown, p: string) => void> = { port: () => {} };
  for (const part of ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls']) {
    parts[part] = (v) => trafficPolicy({ [part]: v }, doc, path, 'service', ports(port, part));
  }
  doc.fields(e, path, parts);
}

/** One entry of `subsets`: its labels and trafficPolicy. */
function subset(so: Obj, doc: Doc, sp: string): SubsetConfig<BalancerConfig> {
  const out: SubsetConfig<BalancerConfig> = { labels: {} };
  doc.fields(so, sp, {
    name: () => {},
    labels: (l, lp) => (out.labels = doc.record(l, lp, (x, xp) => doc.str(x, xp))),
    trafficPolicy: (t, tp) => trafficPolicy(doc.obj(t, tp), doc, tp, 'subset', out),
  });
  return out;
}

/**
 * A DestinationRule; with a `workloadSelector`, only when it selects this process (identity.ts):
 * a rule for other workloads is left out, as their sidecars alone take it. Rules are read in
 * pilot's order and merged into the host's service (rule-merge.ts): a later rule adds subsets of
 * new names and a trafficPolicy only when no earlier one had one; what it loses is reported.
 */
export function destinationRule(spec: Obj, doc: Doc, table: ServiceTable, identity: Identity, merge: RuleMerge): void {
  const selects = selectsMe(spec.workloadSelector, doc, identity);
  if (selects === false) return;
  const ref = table.names.ref(spec.host, doc, 'spec.host');
  const name = table.names.of(ref).name;
  if (!merge.admit(name, spec, doc)) return;
  const svc = table.service(ref, spec.host as string);
  const ports: PortInto = (port, part) => table.portSettings(ref, spec.host as string, port, part);
  doc.fields(spec, 'spec', {
    host: () => {},
    trafficPolicy: (v, p) => {
      if (merge.takePolicy(name, doc)) trafficPolicy(doc.obj(v, p), doc, p, 'service', svc, ports);
    },
    subsets: (v, p) => {
      const subsets: Record<string, SubsetConfig<BalancerConfig>> = svc.subsets ?? {};
      const mine = new Set<string>();
      doc.list(v, p).forEach((s, i) => {
        const sp = `${p}[${i}]`;
        const so = doc.obj(s, sp);
        if (typeof so.name !== 'string') doc.bad(`${sp}.name`, `expected a subset name, got ${describeValue(so.name)}`);
        if (mine.has(so.name)) doc.bad(`${sp}.name`, `subset "${so.name}" is defined twice`);
        mine.add(so.name);
        if (merge.takeSubset(name, so.name, doc, sp)) put(subsets, so.name, subset(so, doc, sp));
      });
      svc.subsets = subsets;
    },
    exportTo: (v, p) => {
      const to = doc.list(v, p);
      if (!(to.length === 1 && to[0] === '*')) doc.unsupported(p, 'applied for every caller: meshlet does not scope a rule to namespaces');
    },
    workloadSelector: (_v, p) => {
      if (selects !== true) doc.unsupported(p, `applied whatever the workload: ${selects.why}`);
    },
  });
}
