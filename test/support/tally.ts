/** Sequential requests through a dispatcher, counted by a response header (which backend answered). */
import { request, type Dispatcher } from 'undici';

export async function tallyBy(dispatcher: Dispatcher, url: string, n: number, header = 'x-backend'): Promise<Record<string, number>> {
  const by: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await request(url, { dispatcher });
    await r.body.dump();
    const name = String(r.headers[header]);
    by[name] = (by[name] ?? 0) + 1;
  }
  return by;
}
