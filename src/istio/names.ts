/**
 * Which meshlet service an Istio host names — so that distinct hosts stay distinct services.
 *
 * A Kubernetes host (`reviews`, `reviews.prod`, `reviews.prod.svc`,
 * `reviews.prod.svc.cluster.local`) is the Service `reviews` of a namespace: the one it names, or,
 * for a short name, the document's `metadata.namespace`, else `fromIstio`'s `namespace` option
 * (Istio reads a short name in the rule's namespace). That service is named `reviews` when its
 * namespace is the option's — or, without the option, when the documents name `reviews` in no
 * other namespace — and `reviews.<namespace>` otherwise (with its other Kubernetes forms as
 * `hosts`). Any other host is a service named by the whole host (`api.stripe.com`). Such names
 * never collide: the first kind has one label, the second two, the third at least three.
 */
import { describe as describeValue } from '../core/endpoint-spec.js';
import { SERVICE_NAME } from '../service/service-config.js';
import type { Doc } from './doc.js';

/** What a host names: a Kubernetes Service of a namespace (undefined: not known), or another host. */
export type HostRef =
  | { readonly kind: 'kubernetes'; readonly service: string; readonly namespace: string | undefined }
  | { readonly kind: 'other'; readonly host: string };

/** How a service is named and addressed, and what `options.discovery` is told about it. */
export interface ServiceName {
  readonly name: string;
  /** For `namespaces` (a Kubernetes service named by its short name). */
  readonly namespace: string | undefined;
  /** For `hosts`: the Kubernetes forms its (dotted) name does not cover. */
  readonly hosts: readonly string[];
  /** The Kubernetes Service name, for a Kubernetes host. */
  readonly kubernetesName: string | undefined;
}

/** `host` parsed, or undefined when it is not a host name (the caller reports it). */
function parse(host: unknown, docNamespace: string | undefined, home: string | undefined): HostRef | undefined {
  if (typeof host !== 'string' || host === '' || host.includes('*')) return undefined;
  const h = host.toLowerCase().replace(/\.$/, '');
  const parts = h.split('.');
  const kubernetes = parts.length <= 2 || (parts[2] === 'svc' && (parts.length === 3 || parts.slice(3).join('.') === 'cluster.local'));
  if (!kubernetes) return { kind: 'other', host: h };
  return { kind: 'kubernetes', service: parts[0]!, namespace: parts[1] ?? docNamespace ?? home };
}

/**
 * A host is DNS labels — letters, digits and "-" — as Istio's ValidateWildcardDomain
 * (pkg/config/validation/agent/validation.go) takes in a VirtualService's `hosts`, a
 * destination's `host` and a DestinationRule's `host`: `reviews:9080` is refused (a destination's
 * port is its `port.number`). meshlet names a service by the host, with the same rule.
 */
function checkHostName(host: string, doc: Doc, path: string): void {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (SERVICE_NAME.test(h)) return;
  if (/:\d*$/.test(h)) doc.bad(path, `a host has no port: Istio refuses "${host}" (a destination's port is its port.number)`);
  doc.bad(path, `expected a host name (letters, digits, "-" and "."), got ${describeValue(host)}`);
}

export class Names {
  readonly #home: string | undefined;
  /** Per Kubernetes service name, the namespaces the documents name it in. */
  readonly #namespaces = new Map<string, Set<string>>();

  /** @param home `options.namespace`: this process's namespace, the one whose services keep their short names */
  constructor(home: string | undefined) {
    this.#home = home;
  }

  /** First pass: remember a host a document gives a service for (invalid ones are refused later). */
  note(host: unknown, docNamespace: string | undefined): void {
    const ref = parse(host, docNamespace, this.#home);
    if (ref?.kind !== 'kubernetes' || ref.namespace === undefined) return;
    const set = this.#namespaces.get(ref.service) ?? new Set();
    set.add(ref.namespace);
    this.#namespaces.set(ref.service, set);
  }

  /** `host` as a reference, or an InvalidConfigError at `path`. */
  ref(host: unknown, doc: Doc, path: string): HostRef {
    const ref = parse(host, doc.namespace, this.#home);
    if (ref === undefined) doc.bad(path, `expected a service host (no wildcards), got ${describeValue(host)}`);
    checkHostName(host as string, doc, path);
    if (ref.kind === 'other' || ref.namespace !== undefined) return ref;
    // A short name with no namespace known: the only namespace the documents name it in, if one.
    const seen = this.#namespaces.get(ref.service);
    return seen?.size === 1 ? { ...ref, namespace: [...seen][0] } : ref;
  }

  /** True when `a` and `b` are the same service. */
  same(a: HostRef, b: HostRef): boolean {
    return this.of(a).name === this.of(b).name;
  }

  of(ref: HostRef): ServiceName {
    if (ref.kind === 'other') return { name: ref.host, namespace: undefined, hosts: [], kubernetesName: undefined };
    const { service, namespace } = ref;
    const short =
      namespace === undefined ||
      (this.#home !== undefined ? namespace === this.#home : (this.#namespaces.get(service)?.size ?? 0) <= 1);
    if (short) return { name: service, namespace, hosts: [], kubernetesName: service };
    const name = `${service}.${namespace}`;
    return { name, namespace, hosts: [`${name}.svc`, `${name}.svc.cluster.local`], kubernetesName: service };
  }
}
