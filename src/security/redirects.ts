/**
 * `mesh.fetch` follows redirects itself so credentials go only where the caller addressed them.
 *
 * By default (`redirects: 'same-origin'`) a redirect is followed only within the origin that was
 * called — the same service, or the same pass-through host; a redirect elsewhere is returned to
 * the caller as the 3xx response it is. With `redirects: 'any'`, a redirect to another origin is
 * followed with Authorization, Cookie and Proxy-Authorization removed (as browsers and undici's
 * fetch do for Authorization). At most 20 redirects, as the fetch standard says. The caller's own
 * `redirect: 'manual' | 'error'` is honoured as given.
 *
 * Method and body follow the fetch standard: 303 (and 301/302 after a POST) become a GET without
 * a body; 307/308 resend method and body — when the body can be sent again (string, bytes,
 * URLSearchParams); a streamed body is never replayed, so such a redirect is returned instead.
 */
import { fetch as undiciFetch, Headers, type Dispatcher, type RequestInfo, type RequestInit, type Response } from 'undici';

export type RedirectPolicy = 'same-origin' | 'any';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIALS = ['authorization', 'cookie', 'proxy-authorization'];
const MAX_REDIRECTS = 20;

function replayable(body: unknown): boolean {
  return body == null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer || body instanceof URLSearchParams;
}

export async function meshFetch(
  dispatcher: Dispatcher,
  policy: RedirectPolicy,
  input: RequestInfo,
  init: RequestInit = {},
): Promise<Response> {
  if (init.redirect !== undefined && init.redirect !== 'follow') return undiciFetch(input, { ...init, dispatcher });
  let url: URL;
  let method: string;
  let body = init.body;
  let headers: Headers;
  if (typeof input === 'string' || input instanceof URL) {
    url = new URL(String(input));
    method = (init.method ?? 'GET').toUpperCase();
    headers = new Headers(init.headers);
  } else {
    // A Request object: followable by hand only without a body (a body would be a consumed stream).
    if (input.body !== null || init.body != null) return undiciFetch(input, { ...init, redirect: 'manual', dispatcher });
    url = new URL(input.url);
    method = (init.method ?? input.method).toUpperCase();
    headers = new Headers(init.headers ?? input.headers);
    init = { signal: input.signal, ...init };
  }
  for (let hop = 0; ; hop++) {
    const res = await undiciFetch(url, { ...init, method, body, headers, redirect: 'manual', dispatcher });
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || location === null || hop === MAX_REDIRECTS) return res;
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      return res;
    }
    const crossOrigin = next.origin !== url.origin;
    if (crossOrigin && policy !== 'any') return res;
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      if (method !== 'HEAD') method = 'GET';
      body = null;
      headers = new Headers(headers);
      for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(h);
    } else if (!replayable(body)) {
      return res;
    }
    if (crossOrigin) {
      headers = new Headers(headers);
      for (const h of CREDENTIALS) headers.delete(h);
    }
    await res.body?.cancel();
    url = next;
  }
}
