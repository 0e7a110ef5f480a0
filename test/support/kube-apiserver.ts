/**
 * A Kubernetes API server for tests, on 127.0.0.1 port 0, speaking the real wire format for what
 * meshlet reads (shapes from the Kubernetes API reference; reference/kubernetes-dns.md §8.1):
 * EndpointSlices (discovery.k8s.io/v1), Pods and Services (v1) with list (kind …List, metadata
 * .resourceVersion, items without kind) and watch (chunked NDJSON `{type, object}` events ADDED /
 * MODIFIED / DELETED / BOOKMARK / ERROR), one global resourceVersion counter, label selectors
 * (`a=b,c=d`), bookmarks when asked, streams ended at timeoutSeconds, a bounded history — a
 * watch from before it gets 410 Gone, as an ERROR event or as HTTP 410 (switchable) — and 401
 * without the bearer token. Knobs: drop every watch, send a malformed line, refuse everything.
 *
 * Misbehaviour on purpose (issue 11): end every watch at once after its headers (`watchMode:
 * 'end-at-once'`), hold every watch a while and then drop its connection, send an ERROR event or
 * end it cleanly (`watchCut`), answer every watch with 410 (`goneAlways`, as an ERROR event or
 * HTTP 410 per `goneMode`), refuse everything with a body that echoes the request's headers,
 * Authorization included (`echoHeaders`, as a Status or as plain text), answer every list and get
 * 200 with a body that is not JSON (`answer200`: a proxy's HTML page) — objects of any shape can
 * be stored with `apply`, malformed ones included; a request can be left unanswered (`hang`).
 *
 * Istio's DestinationRules and VirtualServices (networking.istio.io, CRDs) are served the same way
 * at each version of `istioVersions`; a version not in it answers 404, as an API server without it.
 * Every object gets `metadata.creationTimestamp` when it is created (from `now`, in whole seconds)
 * and keeps it when it is replaced, as a real API server's objects do.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

type Kind = 'endpointslices' | 'pods' | 'services' | 'nodes' | 'destinationrules' | 'virtualservices';
const API: Record<Kind, { apiVersion: string; kind: string }> = {
  endpointslices: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
  pods: { apiVersion: 'v1', kind: 'Pod' },
  services: { apiVersion: 'v1', kind: 'Service' },
  // Cluster-scoped: stored and watched under the namespace '' (apply('nodes', '', …)).
  nodes: { apiVersion: 'v1', kind: 'Node' },
  // Istio's CRDs: served at every version in `istioVersions` (the apiVersion answered is the one asked for).
  destinationrules: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule' },
  virtualservices: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' },
};

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string; creationTimestamp: string; labels?: Record<string, string> };
  [k: string]: unknown;
}
interface Event {
  rv: number;
  kind: Kind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

export interface KubeApiServer {
  readonly url: string;
  /** Required bearer token (undefined: none required). */
  token: string | undefined;
  /** The Authorization header of every request, in order (undefined when none was sent). */
  readonly authorizations: (string | undefined)[];
  /** How a too-old resourceVersion is answered. */
  goneMode: 'event' | 'http';
  /** Refuse every request with this status (e.g. 503), or null. */
  failWith: number | null;
  /** `'end-at-once'`: every watch answers 200, flushes its headers and ends with no event. */
  watchMode: 'normal' | 'end-at-once';
  /**
   * End every watch `afterMs` after it opened (on the server's timers: fake ones in tests that
   * fake them), well before its timeoutSeconds: `drop` destroys the connection mid-stream, `error`
   * sends an ERROR event (a Status with code 500) and ends the stream, `end` ends it cleanly.
   */
  watchCut: { afterMs: number; how: 'drop' | 'error' | 'end' } | null;
  /** Answer every watch with 410 Gone (the way `goneMode` says), whatever its resourceVersion. */
  goneAlways: boolean;
  /**
   * Refuse every request with this status and a body that echoes the request headers (a proxy
   * that shows what it got): as a Kubernetes Status whose message holds them, or as plain text.
   */
  echoHeaders: { status: number; as: 'status' | 'text' } | null;
  /**
   * Never answer a request whose `METHOD path` (no query) matches: it gets no headers, its
   * connection stays open until the client gives up or the server closes. null: answer all.
   */
  hang: RegExp | null;
  /** Answer every request but a watch 200 with this body and Content-Type (not JSON, say), or null. */
  answer200: { contentType: string; body: string } | null;
  /** The networking.istio.io versions served (others answer 404, as an API server without them). @default v1, v1beta1, v1alpha3 */
  istioVersions: string[];
  /** Requests seen, as `METHOD path?query`. */
  readonly requests: string[];
  /**
   * The clock `metadata.creationTimestamp` is read from when an object is created (kept when it is
   * replaced), written as the API server writes it: RFC 3339 in whole seconds, UTC. @default Date.now
   */
  now: () => number;
  apply(kind: Kind, namespace: string, object: { metadata: { name: string; labels?: Record<string, string> } } & Record<string, unknown>): void;
  remove(kind: Kind, namespace: string, name: string): void;
  /** Forget history older than now: a watch from an older resourceVersion gets 410. */
  compact(): void;
  /** Close every open watch stream abruptly. */
  dropWatches(): void;
  /** Write a raw line to every open watch stream (of `kind` only, when given). */
  sendRaw(line: string, kind?: Kind): void;
  /** Write raw bytes, no newline added, to every open watch stream. */
  writeRaw(data: string | Buffer): void;
  /** End every open watch stream cleanly (as at its timeoutSeconds). */
  endWatches(): void;
  readonly watchers: number;
  /** Bookmarks written so far (real wire format: only metadata.resourceVersion). */
  readonly bookmarksSent: number;
  /** The current resourceVersion. */
  readonly resourceVersion: string;
  close(): Promise<void>;
}

function matches(selector: string | null, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split(/==?/);
    return (labels ?? {})[k!.trim()] === v?.trim();
  });
}

/** Start the server; with `tls` it serves HTTPS with that certificate and key. */
export async function startKubeApi(options: { tls?: { cert: string; key: string } } = {}): Promise<KubeApiServer> {
  let rv = 1000;
  let floor = rv;
  const store = new Map<string, Obj>(); // `${kind}/${ns}/${name}`
  const history: Event[] = [];
  const watches = new Set<{ res: http.ServerResponse; kind: Kind; ns: string; selector: string | null; apiVersion: string }>();
  const requests: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  let bookmarksSent = 0;

  const withKind = (kind: Kind, o: Obj, apiVersion = API[kind].apiVersion): object => ({ ...API[kind], apiVersion, ...o });

  function emit(e: Event): void {
    history.push(e);
    if (history.length > 1000) floor = history.shift()!.rv;
    for (const w of watches) {
      if (w.kind === e.kind && w.ns === e.object.metadata.namespace && matches(w.selector, e.object.metadata.labels)) {
        w.res.write(JSON.stringify({ type: e.type, object: withKind(e.kind, e.object, w.apiVersion) }) + '\n');
      }
    }
  }

  const status = (res: http.ServerResponse, code: number, reason: string, message: string): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  };

  const api: KubeApiServer = {
    url: '',
    token: undefined,
    authorizations: [],
    goneMode: 'event',
    failWith: null,
    watchMode: 'normal',
    watchCut: null,
    goneAlways: false,
    echoHeaders: null,
    answer200: null,
    hang: null,
    istioVersions: ['v1', 'v1beta1', 'v1alpha3'],
    requests,
    now: Date.now,
    apply(kind, ns, object) {
      const key = `${kind}/${ns}/${object.metadata.name}`;
      const existed = store.get(key);
      // Set by the server at creation and kept by every update, whatever the client sends.
      const creationTimestamp = existed?.metadata.creationTimestamp ?? new Date(Math.floor(api.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
      const o = { ...object, metadata: { ...object.metadata, namespace: ns, uid: `uid-${object.metadata.name}`, creationTimestamp, resourceVersion: String(++rv) } } as Obj;
      store.set(key, o);
      emit({ rv, kind, type: existed !== undefined ? 'MODIFIED' : 'ADDED', object: o });
    },
    remove(kind, ns, name) {
      const key = `${kind}/${ns}/${name}`;
      const o = store.get(key);
      if (!o) return;
      store.delete(key);
      emit({ rv: ++rv, kind, type: 'DELETED', object: { ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } } });
    },
    compact() {
      floor = rv;
      history.length = 0;
    },
    dropWatches() {
      for (const w of watches) w.res.socket?.destroy();
      watches.clear();
    },
    sendRaw(line, kind) {
      for (const w of watches) if (kind === undefined || w.kind === kind) w.res.write(line + '\n');
    },
    writeRaw(data) {
      for (const w of watches) w.res.write(data);
    },
    endWatches() {
      for (const w of watches) w.res.end();
    },
    get watchers() {
      return watches.size;
    },
    get bookmarksSent() {
      return bookmarksSent;
    },
    get resourceVersion() {
      return String(rv);
    },
    close: () =>
      new Promise((resolve) => {
        for (const w of watches) w.res.end();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (api.hang?.test(`${req.method} ${url.pathname}`)) return;
    if (api.failWith !== null) return status(res, api.failWith, 'InternalError', 'refusing for the test');
    if (api.echoHeaders !== null) {
      const seen = Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`).join('\n');
      if (api.echoHeaders.as === 'status') return status(res, api.echoHeaders.status, 'InternalError', `proxy error; request headers were:\n${seen}`);
      res.writeHead(api.echoHeaders.status, { 'content-type': 'text/plain' });
      res.end(`upstream said no. You sent:\n${seen}\n`);
      return;
    }
    if (api.answer200 !== null && url.searchParams.get('watch') !== '1' && url.searchParams.get('watch') !== 'true') {
      res.writeHead(200, { 'content-type': api.answer200.contentType });
      res.end(api.answer200.body);
      return;
    }
    api.authorizations.push(req.headers.authorization);
    if (api.token !== undefined && req.headers.authorization !== `Bearer ${api.token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    // Discovery documents, enough for kubectl.
    if (url.pathname === '/api') return json(res, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (url.pathname === '/apis') {
      const istio = api.istioVersions.map((v) => ({ groupVersion: `networking.istio.io/${v}`, version: v }));
      const groups: object[] = [{ name: 'discovery.k8s.io', versions: [{ groupVersion: 'discovery.k8s.io/v1', version: 'v1' }], preferredVersion: { groupVersion: 'discovery.k8s.io/v1', version: 'v1' } }];
      if (istio.length > 0) groups.push({ name: 'networking.istio.io', versions: istio, preferredVersion: istio[0] });
      return json(res, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    }
    const group = /^\/apis\/networking\.istio\.io\/([^/]+)$/.exec(url.pathname);
    if (group && api.istioVersions.includes(group[1]!)) {
      const verbs = ['get', 'list', 'watch'];
      return json(res, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: `networking.istio.io/${group[1]}`,
        resources: [
          { name: 'destinationrules', singularName: 'destinationrule', namespaced: true, kind: 'DestinationRule', shortNames: ['dr'], verbs },
          { name: 'virtualservices', singularName: 'virtualservice', namespaced: true, kind: 'VirtualService', shortNames: ['vs'], verbs },
        ],
      });
    }
    if (url.pathname === '/apis/discovery.k8s.io/v1')
      return json(res, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'discovery.k8s.io/v1', resources: [{ name: 'endpointslices', singularName: 'endpointslice', namespaced: true, kind: 'EndpointSlice', verbs: ['get', 'list', 'watch'] }] });
    if (url.pathname === '/api/v1')
      return json(res, { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'] }, { name: 'services', singularName: 'service', namespaced: true, kind: 'Service', verbs: ['get', 'list', 'watch'] }, { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['get', 'list', 'watch'] }] });
    const m =
      url.pathname.match(/^\/(?:api\/v1|apis\/discovery\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(endpointslices|pods|services)(?:\/([^/]+))?$/) ??
      url.pathname.match(/^\/apis\/networking\.istio\.io\/([^/]+)\/namespaces\/([^/]+)\/(destinationrules|virtualservices)(?:\/([^/]+))?$/) ??
      url.pathname.match(/^\/api\/v1\/()(nodes)(?:\/([^/]+))?$/);
    if (!m) return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const istio = m.length === 5;
    if (istio && !api.istioVersions.includes(m[1]!)) return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const [ns, kind, name] = (istio ? m.slice(2) : m.slice(1)) as unknown as [string, Kind, string | undefined];
    const apiVersion = istio ? `networking.istio.io/${m[1]}` : API[kind].apiVersion;
    if (name) {
      const o = store.get(`${kind}/${ns}/${name}`);
      return o ? json(res, withKind(kind, o, apiVersion)) : status(res, 404, 'NotFound', `${kind} "${name}" not found`);
    }
    const selector = url.searchParams.get('labelSelector');
    const items = [...store.entries()].filter(([k, o]) => k.startsWith(`${kind}/${ns}/`) && matches(selector, o.metadata.labels)).map(([, o]) => o);
    if (url.searchParams.get('watch') !== '1' && url.searchParams.get('watch') !== 'true') {
      return json(res, { kind: `${API[kind].kind}List`, apiVersion, metadata: { resourceVersion: String(rv) }, items });
    }
    // watch
    const from = url.searchParams.get('resourceVersion');
    if (api.goneAlways || (from !== null && from !== '0' && Number(from) < floor)) {
      if (api.goneMode === 'http') return status(res, 410, 'Expired', `too old resource version: ${from} (${floor})`);
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${floor})`, reason: 'Expired', code: 410 } }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (api.watchMode === 'end-at-once') {
      res.end();
      return;
    }
    const w = { res, kind, ns, selector, apiVersion };
    if (from === null || from === '0') for (const o of items) res.write(JSON.stringify({ type: 'ADDED', object: withKind(kind, o, apiVersion) }) + '\n');
    else for (const e of history) if (e.rv > Number(from) && e.kind === kind && e.object.metadata.namespace === ns && matches(selector, e.object.metadata.labels)) res.write(JSON.stringify({ type: e.type, object: withKind(kind, e.object, apiVersion) }) + '\n');
    watches.add(w);
    const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true' ? setInterval(() => {
          bookmarksSent++;
          res.write(JSON.stringify({ type: 'BOOKMARK', object: { ...API[kind], apiVersion, metadata: { resourceVersion: String(rv) } } }) + '\n');
        }, 200) : null;
    const timeout = setTimeout(() => res.end(), Number(url.searchParams.get('timeoutSeconds') ?? 1800) * 1000);
    const cutAs = api.watchCut;
    const cut = cutAs
      ? setTimeout(() => {
          watches.delete(w); // at once: a client that re-watches quickly must not find this one still counted
          if (cutAs.how === 'drop') res.socket?.destroy();
          else if (cutAs.how === 'end') res.end();
          else res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'an internal error occurred', reason: 'InternalError', code: 500 } }) + '\n');
        }, cutAs.afterMs)
      : null;
    const done = (): void => {
      watches.delete(w);
      if (bookmarks) clearInterval(bookmarks);
      clearTimeout(timeout);
      if (cut) clearTimeout(cut);
    };
    res.on('close', done);
    res.on('finish', done);
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (api as { url: string }).url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An EndpointSlice of `service` with the given endpoints on the named port `http`. */
export function slice(
  name: string,
  service: string,
  endpoints: { ip: string; ready?: boolean | null; terminating?: boolean; zone?: string; pod?: string; node?: string }[],
  port: number,
  addressType: 'IPv4' | 'IPv6' = 'IPv4',
): { metadata: { name: string; labels: Record<string, string> } } & Record<string, unknown> {
  return {
    metadata: { name, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType,
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ...(e.ready === null ? {} : { ready: e.ready ?? true }), ...(e.terminating ? { terminating: true, serving: true } : {}) },
      ...(e.zone ? { zone: e.zone } : {}),
      nodeName: e.node ?? 'node-1',
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod, namespace: 'default' } } : {}),
    })),
  };
}
