/**
 * The protobuf wire format of one message, `xds.data.orca.v3.OrcaLoadReport` (cncf/xds
 * `xds/data/orca/v3/orca_load_report.proto`), decoded by hand: it is nine fields — doubles
 * (wire type 1, fixed64 little-endian), a deprecated uint64 (varint) and three `map<string,
 * double>` (length-delimited entries whose key is field 1, value field 2) — so a general
 * protobuf runtime (protobufjs, @bufbuild/protobuf) would be a dependency for a reader of a
 * hundred lines.
 *
 * As protobuf parsers do: fields may come in any order and repeat (the last value wins, a map
 * entry with a repeated key replaces the earlier one), unknown fields and fields with an
 * unexpected wire type are skipped, a missing map key is "" and a missing value 0. Truncated
 * input, a varint longer than 10 bytes, a group (wire types 3/4, long deprecated), wire types 6/7,
 * field number 0 or a key that is not UTF-8 make the message invalid.
 */

/** The decoded fields, proto3 defaults (0, empty maps) for those absent. Field names as in proto3 JSON. */
export interface OrcaFields {
  cpuUtilization: number;
  memUtilization: number;
  /** Deprecated uint64 `rps` (field 3). */
  rps: number;
  requestCost: Record<string, number>;
  utilization: Record<string, number>;
  rpsFractional: number;
  eps: number;
  namedMetrics: Record<string, number>;
  applicationUtilization: number;
}

/** A null-prototype record: a key such as `__proto__` is an ordinary key there. */
export function emptyMap(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

export function emptyFields(): OrcaFields {
  return {
    cpuUtilization: 0,
    memUtilization: 0,
    rps: 0,
    requestCost: emptyMap(),
    utilization: emptyMap(),
    rpsFractional: 0,
    eps: 0,
    namedMetrics: emptyMap(),
    applicationUtilization: 0,
  };
}

const DOUBLE_FIELDS: Readonly<Record<number, keyof OrcaFields>> = {
  1: 'cpuUtilization',
  2: 'memUtilization',
  6: 'rpsFractional',
  7: 'eps',
  9: 'applicationUtilization',
};
const MAP_FIELDS: Readonly<Record<number, 'requestCost' | 'utilization' | 'namedMetrics'>> = { 4: 'requestCost', 5: 'utilization', 8: 'namedMetrics' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown inside the decoder only; {@link decodeOrcaProto} turns it into a returned reason. */
class WireError extends Error {}

class Reader {
  pos: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  /** Where the message being read ends (a nested one while reading a map entry). */
  end: number;

  constructor(buf: Uint8Array, start: number, end: number) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  /** An unsigned varint as a double (exact up to 2^53; a length or tag beyond that is rejected by its caller). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.#buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new WireError('truncated double');
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** The end offset of a length-delimited field starting here (its length prefix consumed). */
  delimited(): number {
    const len = this.varint();
    if (len > this.end - this.pos) throw new WireError('length past the end of the message');
    return this.pos + len;
  }

  string(end: number): string {
    try {
      return utf8.decode(this.#buf.subarray(this.pos, end));
    } catch {
      throw new WireError('a map key is not UTF-8');
    } finally {
      this.pos = end;
    }
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        if (this.pos + 8 > this.end) throw new WireError('truncated fixed64');
        this.pos += 8;
        return;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        if (this.pos + 4 > this.end) throw new WireError('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0 || field > 0x1fffffff) throw new WireError(`invalid field number ${field}`);
    return [field, t % 8];
  }
}

/** One `map<string, double>` entry, from the reader's position to `end`. */
function mapEntry(r: Reader, end: number, into: Record<string, number>): void {
  let key = '';
  let value = 0;
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === 2) key = r.string(r.delimited());
    else if (field === 2 && wt === 1) value = r.double();
    else r.skip(wt);
  }
  r.end = outer;
  into[key] = value;
}

/** Decode a serialized OrcaLoadReport; a string says why it is invalid. */
export function decodeOrcaProto(bytes: Uint8Array): OrcaFields | string {
  const out = emptyFields();
  const r = new Reader(bytes, 0, bytes.length);
  try {
    while (r.pos < r.end) {
      const [field, wt] = r.tag();
      const double = DOUBLE_FIELDS[field];
      const map = MAP_FIELDS[field];
      if (double !== undefined && wt === 1) (out[double] as number) = r.double();
      else if (map !== undefined && wt === 2) mapEntry(r, r.delimited(), out[map]);
      else if (field === 3 && wt === 0) out.rps = r.varint();
      else r.skip(wt);
    }
  } catch (err) {
    if (err instanceof WireError) return err.message;
    throw err;
  }
  return out;
}
