/**
 * A real DNS server on 127.0.0.1 (UDP, port 0) for discovery tests, built on dns2, whose answers
 * the test changes at run time: A / AAAA records with TTLs, SRV records, NXDOMAIN, SERVFAIL, or no
 * reply at all (a timeout).
 *
 * Trap (dns2 3.1.1): SRV targets written with name compression come back from c-ares as
 * EBADRESP; answers are therefore encoded without compression (legal, just longer).
 */
import dns2 from 'dns2';

const { Packet } = dns2 as unknown as {
  Packet: {
    TYPE: Record<string, number>;
    CLASS: Record<string, number>;
    RCODE?: Record<string, number>;
    createResponseFromRequest(req: unknown): { answers: unknown[]; header: { rcode: number }; toBuffer(w?: unknown): Buffer };
    prototype: { toBuffer(this: unknown, w?: unknown): Buffer };
    Writer: new () => { names?: unknown };
  };
};

/** Encode without name compression: a writer whose name table is not a Map disables it. */
function uncompressed(this: unknown): Buffer {
  const writer = new Packet.Writer();
  writer.names = {};
  return Packet.prototype.toBuffer.call(this, writer);
}

export type Answer =
  | { a: { address: string; ttl?: number }[]; aaaa?: { address: string; ttl?: number }[] }
  | { srv: { target: string; port: number; priority?: number; weight?: number; ttl?: number }[] }
  | { rcode: 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' }
  | { noReply: true };

export interface TestDns {
  /** `127.0.0.1:port`, for `servers: [...]`. */
  readonly server: string;
  /** Answers by lower-case name; unknown names get NXDOMAIN. */
  readonly zone: Map<string, Answer>;
  /** Queries received, as `TYPE name`. */
  readonly queries: string[];
  close(): Promise<void>;
}

const RCODE = { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 };

export async function startDns(): Promise<TestDns> {
  const zone = new Map<string, Answer>();
  const queries: string[] = [];
  const server = (dns2 as unknown as { createServer(o: object): { listen(o: object): Promise<{ udp: { port: number } }>; close(): Promise<void> } }).createServer({
    udp: true,
    handle(request: { questions: { name: string; type: number }[] }, send: (r: unknown) => void) {
      const q = request.questions[0]!;
      const name = q.name.toLowerCase();
      const type = Object.entries(Packet.TYPE).find(([, v]) => v === q.type)?.[0] ?? String(q.type);
      queries.push(`${type} ${name}`);
      const res = Packet.createResponseFromRequest(request);
      res.toBuffer = uncompressed;
      const answer = zone.get(name);
      if (answer && 'noReply' in answer) return;
      if (!answer) res.header.rcode = RCODE.NXDOMAIN;
      else if ('rcode' in answer) res.header.rcode = RCODE[answer.rcode];
      else if ('srv' in answer && q.type === Packet.TYPE.SRV) {
        for (const r of answer.srv) {
          res.answers.push({ name: q.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: r.ttl ?? 30, priority: r.priority ?? 10, weight: r.weight ?? 10, port: r.port, target: r.target });
        }
      } else if ('a' in answer) {
        const list = q.type === Packet.TYPE.A ? answer.a : q.type === Packet.TYPE.AAAA ? (answer.aaaa ?? []) : [];
        for (const r of list) res.answers.push({ name: q.name, type: q.type, class: Packet.CLASS.IN, ttl: r.ttl ?? 30, address: r.address });
      }
      send(res);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  return { server: `127.0.0.1:${addresses.udp.port}`, zone, queries, close: () => server.close() };
}
