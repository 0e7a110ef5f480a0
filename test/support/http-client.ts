/**
 * `node:http` requests for tests, as promises: the status, headers and body of the response, or
 * the error the ClientRequest (or its response) emitted, as it was emitted.
 */
import http from 'node:http';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The socket the request went over (to tell an in-process connection from a TCP one). */
  socket: unknown;
}

/** Send a request (with `body`, if given) and read the whole response. Rejects with the emitted error. */
export function httpRequest(url: string, options: http.RequestOptions = {}, body?: string | Buffer): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), socket: req.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The error a request fails with (rejects if it succeeds). */
export async function httpError(url: string, options: http.RequestOptions = {}, body?: string | Buffer): Promise<Error & { code?: string }> {
  const r = await httpRequest(url, options, body).then(
    (res) => ({ ok: res }),
    (err: Error) => ({ err }),
  );
  if ('ok' in r) throw new Error(`expected ${url} to fail, got ${r.ok.status} ${r.ok.body}`);
  return r.err as Error & { code?: string };
}
