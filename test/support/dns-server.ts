/**
 * A real DNS server on 127.0.0.1 for discovery tests, built on dns2, whose answers the test
 * changes at run time: A / AAAA records with TTLs, SRV records, NXDOMAIN, SERVFAIL, REFUSED, or
 * no reply at all (a timeout). UDP and TCP listen on the same port, so an answer too big for UDP
 * (TC bit) is fetched again over TCP, as c-ares does against a real server.
 *
 * Traps (dns2 3.1.1, reference/kubernetes-dns.md §6.5):
 * - `server.listen({ tcp: { port: 0, address } })` ignores the address and binds `::`; this
 *   helper binds UDP on port 0, then TCP on that same port at 127.0.0.1 (retrying on a clash).
 * - SRV targets written with name compression come back from c-ares as EBADRESP; answers are
 *   therefore encoded without compression (legal, just longer).
 */
import type { AddressInfo, Socket } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;

/** Encode without name compression: a writer whose name table is not a Map disables it. */
function uncompressed(this: InstanceType<typeof Packet>): Buffer {
  const writer = new (Packet as unknown as { Writer: new () => { names?: unknown } }).Writer();
  writer.names = {};
  return (Packet.prototype.toBuffer as (w: unknown) => Buffer).call(this, writer);
}

export interface AddressRecord {
  address: string;
  /** Seconds. @default 30 */
  ttl?: number;
}

export interface SrvAnswer {
  target: string;
  port: number;
  /** @default 10 */
  priority?: number;
  /** @default 10 */
  weight?: number;
  ttl?: number;
}

export type Rcode = 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';

/** What the server says about one name. A name with records of other types only gets NODATA. */
export type Answer =
  | {
      a?: AddressRecord[];
      aaaa?: AddressRecord[];
      srv?: SrvAnswer[];
      /** A sloppy server: answer A and AAAA questions with both kinds of records. */
      mixFamilies?: boolean;
      /** Fail questions of one type only, e.g. `{ AAAA: 'SERVFAIL' }`. */
      fail?: Partial<Record<'A' | 'AAAA' | 'SRV', Rcode>>;
    }
  | { rcode: Rcode }
  | { noReply: true }
  /** A reply that is not a DNS message: the header promises one answer record, and the packet ends after the question. */
  | { malformed: true }
  /** An alias: the answer carries the CNAME chain as a recursive server would, followed through the zone (a loop stops at the first repeat). */
  | { cname: string };

export interface Query {
  type: string;
  name: string;
  transport: 'udp' | 'tcp';
  /** `performance.now()` when it arrived. */
  at: number;
  /** Replies held (`holdReplies`) when it arrived: the client's other queries still in flight. */
  heldBefore: number;
}

export interface TestDns {
  /** `127.0.0.1:port`, for `servers: [...]`. */
  readonly server: string;
  readonly port: number;
  /** Answers by lower-case name; unknown names get NXDOMAIN. Change at any time. */
  readonly zone: Map<string, Answer>;
  /** Queries received, in order. */
  readonly queries: Query[];
  /**
   * The query types whose replies are held, not sent (`held` counts them: the client's queries in
   * flight); setting it to an empty list sends every held reply and lets later ones through.
   */
  holdReplies: readonly string[];
  /** Replies held now. */
  readonly held: number;
  /** Stop both listeners and drop open TCP connections. Idempotent. */
  close(): Promise<void>;
}

type Resource = Record<string, unknown>;

function answer(zone: Map<string, Answer>, q: { name: string; type: number }, type: string, seen = new Set<string>()): { rcode?: number; answers: Resource[]; malformed?: true } | null {
  const found = zone.get(q.name.toLowerCase());
  if (found === undefined) return { rcode: Packet.RCODE.NXDOMAIN, answers: [] };
  if ('noReply' in found) return null;
  if ('malformed' in found) return { answers: [], malformed: true };
  if ('cname' in found) {
    const alias: Resource = { name: q.name, class: Packet.CLASS.IN, type: Packet.TYPE.CNAME, ttl: 30, domain: found.cname };
    seen.add(q.name.toLowerCase());
    if (seen.has(found.cname.toLowerCase())) return { answers: [alias] };
    const rest = answer(zone, { name: found.cname, type: q.type }, type, seen);
    return rest === null ? null : { ...(rest.rcode === undefined ? {} : { rcode: rest.rcode }), answers: [alias, ...rest.answers] };
  }
  if ('rcode' in found) return { rcode: Packet.RCODE[found.rcode], answers: [] };
  const failed = found.fail?.[type as 'A' | 'AAAA' | 'SRV'];
  if (failed !== undefined) return { rcode: Packet.RCODE[failed], answers: [] };
  const base = { name: q.name, class: Packet.CLASS.IN };
  const answers: Resource[] = [];
  const wantA = q.type === Packet.TYPE.A || (found.mixFamilies === true && q.type === Packet.TYPE.AAAA);
  const wantAAAA = q.type === Packet.TYPE.AAAA || (found.mixFamilies === true && q.type === Packet.TYPE.A);
  if (wantA) for (const r of found.a ?? []) answers.push({ ...base, type: Packet.TYPE.A, ttl: r.ttl ?? 30, address: r.address });
  if (wantAAAA) for (const r of found.aaaa ?? []) answers.push({ ...base, type: Packet.TYPE.AAAA, ttl: r.ttl ?? 30, address: r.address });
  if (q.type === Packet.TYPE.SRV) {
    for (const r of found.srv ?? []) {
      answers.push({ ...base, type: Packet.TYPE.SRV, ttl: r.ttl ?? 30, priority: r.priority ?? 10, weight: r.weight ?? 10, port: r.port, target: r.target });
    }
  }
  return { answers };
}

/** Start a server on 127.0.0.1 (UDP and TCP on one free port). */
export async function startDns(): Promise<TestDns> {
  const zone = new Map<string, Answer>();
  const queries: Query[] = [];
  const sockets = new Set<Socket>();
  const held: (() => void)[] = [];
  let holding: readonly string[] = [];

  const handle: dns2.DnsHandler = (request, send, client) => {
    const q = request.questions[0];
    if (!q) return;
    const transport = 'remoteAddress' in client && 'setNoDelay' in client ? 'tcp' : 'udp';
    const type = Object.entries(Packet.TYPE).find(([, v]) => v === q.type)?.[0] ?? String(q.type);
    queries.push({ type, name: q.name.toLowerCase(), transport, at: performance.now(), heldBefore: held.length });
    const result = answer(zone, q, type);
    if (result === null) return;
    const res = Packet.createResponseFromRequest(request);
    res.toBuffer = result.malformed
      ? function (this: InstanceType<typeof Packet>): Buffer {
          const b = Buffer.from(uncompressed.call(this));
          b.writeUInt16BE(1, 6); // ANCOUNT 1, and no answer follows
          return b;
        }
      : uncompressed;
    if (result.rcode !== undefined) res.header.rcode = result.rcode;
    res.answers.push(...(result.answers as unknown as typeof res.answers));
    if (holding.includes(type)) held.push(() => void send(res));
    else void send(res);
  };

  // Bind UDP on port 0, then TCP on the same port; a clash on TCP (rare) means trying again.
  for (let attempt = 1; ; attempt++) {
    const udp = dns2.createUDPServer(handle);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: 0, address: '127.0.0.1' }, () => resolve());
    });
    const port = (udp.address() as AddressInfo).port;
    const tcp = dns2.createTCPServer(handle);
    tcp.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!listening) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      if (attempt >= 10) throw new Error('dns-server: no port free for both UDP and TCP on 127.0.0.1 after 10 tries');
      continue;
    }
    let closed: Promise<void> | null = null;
    return {
      server: `127.0.0.1:${port}`,
      port,
      zone,
      queries,
      get holdReplies() {
        return holding;
      },
      set holdReplies(types: readonly string[]) {
        holding = types;
        if (types.length === 0) for (const release of held.splice(0)) release();
      },
      get held() {
        return held.length;
      },
      close() {
        closed ??= Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy();
            tcp.close(() => resolve());
          }),
        ]).then(() => undefined);
        return closed;
      },
    };
  }
}
