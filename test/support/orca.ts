/**
 * A protobuf writer for ORCA load reports (`xds.data.orca.v3.OrcaLoadReport`) and helpers that
 * make the headers a backend sends, for tests of the parser and of balancers that read reports.
 * Written from the wire-format spec, separately from src/load/orca-proto.ts (the reader), and
 * checked against a report serialized by Envoy's own protobuf library (test/load/orca.test.ts).
 */
export interface ReportInput {
  cpuUtilization?: number;
  memUtilization?: number;
  rps?: number;
  requestCost?: Record<string, number>;
  utilization?: Record<string, number>;
  rpsFractional?: number;
  eps?: number;
  namedMetrics?: Record<string, number>;
  applicationUtilization?: number;
}

export class ProtoWriter {
  readonly #bytes: number[] = [];

  varint(v: number): this {
    let n = v;
    while (n >= 0x80) {
      this.#bytes.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    this.#bytes.push(n);
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  double(field: number, v: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.tag(field, 1);
    this.#bytes.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    this.#bytes.push(...data);
    return this;
  }

  raw(...bytes: number[]): this {
    this.#bytes.push(...bytes);
    return this;
  }

  finish(): Buffer {
    return Buffer.from(this.#bytes);
  }
}

/** The serialized report; fields written in field-number order, maps as one entry per key. */
export function encodeReport(r: ReportInput): Buffer {
  const w = new ProtoWriter();
  const map = (field: number, m: Record<string, number> | undefined): void => {
    for (const [k, v] of Object.entries(m ?? {})) w.bytes(field, new ProtoWriter().bytes(1, Buffer.from(k, 'utf8')).double(2, v).finish());
  };
  if (r.cpuUtilization !== undefined) w.double(1, r.cpuUtilization);
  if (r.memUtilization !== undefined) w.double(2, r.memUtilization);
  if (r.rps !== undefined) w.tag(3, 0).varint(r.rps);
  map(4, r.requestCost);
  map(5, r.utilization);
  if (r.rpsFractional !== undefined) w.double(6, r.rpsFractional);
  if (r.eps !== undefined) w.double(7, r.eps);
  map(8, r.namedMetrics);
  if (r.applicationUtilization !== undefined) w.double(9, r.applicationUtilization);
  return w.finish();
}

/** The `endpoint-load-metrics` header value in the TEXT format. */
export function textReport(r: { cpuUtilization?: number; applicationUtilization?: number; rpsFractional?: number; eps?: number; namedMetrics?: Record<string, number> }): string {
  const parts: string[] = [];
  if (r.cpuUtilization !== undefined) parts.push(`cpu_utilization:${r.cpuUtilization}`);
  if (r.applicationUtilization !== undefined) parts.push(`application_utilization:${r.applicationUtilization}`);
  if (r.rpsFractional !== undefined) parts.push(`rps_fractional:${r.rpsFractional}`);
  if (r.eps !== undefined) parts.push(`eps:${r.eps}`);
  for (const [k, v] of Object.entries(r.namedMetrics ?? {})) parts.push(`named_metrics.${k}:${v}`);
  return `TEXT ${parts.join(', ')}`;
}
