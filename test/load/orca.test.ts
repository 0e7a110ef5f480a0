import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { LoadReportReader, readLoadReport, type LoadReport } from '../../src/load/orca.js';
import { encodeReport, ProtoWriter } from '../support/orca.js';

type Headers = Record<string, string | string[] | undefined>;

function report(headers: Headers): LoadReport {
  const r = readLoadReport(headers);
  if (r?.type !== 'report') throw new Error(`expected a report, got ${JSON.stringify(r)}`);
  return r.report;
}

/** The fields of Envoy's orca_parser_test exampleOrcaLoadReport, as proto3 JSON names. */
const EXAMPLE = {
  cpuUtilization: 0.7,
  applicationUtilization: 0.8,
  memUtilization: 0.9,
  eps: 2,
  rpsFractional: 1000,
  namedMetrics: { foo: 123, bar: 0.2 },
};

const b64 = (b: Buffer): string => b.toString('base64');

describe('readLoadReport: the formats Envoy reads', () => {
  test('no load header: no report', () => {
    expect(readLoadReport({})).toBeNull();
    expect(readLoadReport({ 'content-type': 'text/plain' })).toBeNull();
  });

  test('TEXT: comma-separated name:value pairs, named metrics under named_metrics.', () => {
    const r = report({ 'endpoint-load-metrics': 'TEXT cpu_utilization:0.7,application_utilization:0.8,mem_utilization:0.9,rps_fractional:1000,eps:2,named_metrics.foo:123,named_metrics.bar:0.2' });
    expect(r).toMatchObject(EXAMPLE);
    expect({ ...r.namedMetrics }).toEqual({ foo: 123, bar: 0.2 });
    expect(r.rps).toBe(0);
    expect({ ...r.utilization }).toEqual({});
  });

  test('TEXT: whitespace around pairs, names and values is ignored; exponents are numbers', () => {
    expect(report({ 'endpoint-load-metrics': 'TEXT cpu_utilization: 0.5 ,  rps_fractional :1e3' })).toMatchObject({ cpuUtilization: 0.5, rpsFractional: 1000 });
  });

  test('JSON: proto3 JSON with proto field names or lowerCamelCase, numbers as strings, null as default', () => {
    const proto = report({ 'endpoint-load-metrics': 'JSON {"cpu_utilization": 0.7, "application_utilization": 0.8, "mem_utilization": 0.9, "rps_fractional": 1000, "eps": 2, "named_metrics": {"foo": 123, "bar": 0.2}}' });
    expect(proto).toMatchObject(EXAMPLE);
    const camel = report({ 'endpoint-load-metrics': 'JSON {"cpuUtilization": "0.25", "rpsFractional": 10, "rps": "7", "utilization": {"disk": 0.5}, "requestCost": {"bytes": 3487}, "eps": null}' });
    expect(camel).toMatchObject({ cpuUtilization: 0.25, rpsFractional: 10, rps: 7, eps: 0 });
    expect({ ...camel.utilization }).toEqual({ disk: 0.5 });
    expect({ ...camel.requestCost }).toEqual({ bytes: 3487 });
  });

  test('BIN: base64 of the serialized protobuf, padded or not', () => {
    const bytes = encodeReport(EXAMPLE);
    expect(report({ 'endpoint-load-metrics': `BIN ${b64(bytes)}` })).toMatchObject(EXAMPLE);
    expect(report({ 'endpoint-load-metrics': `BIN ${b64(bytes).replace(/=+$/, '')}` })).toMatchObject(EXAMPLE);
  });

  test('a report serialized by Envoy\'s protobuf library (its parser fuzz corpus, valid_bin) decodes to what Envoy says it holds', () => {
    const value = 'CZqZmZmZmdk/MQAAAAAAAElAQg4KA2ZvbxEAAAAAAADgPw==';
    for (const headers of [{ 'endpoint-load-metrics-bin': value }, { 'endpoint-load-metrics': `BIN ${value}` }]) {
      const r = report(headers);
      expect(r).toMatchObject({ cpuUtilization: 0.4, rpsFractional: 50 });
      expect({ ...r.namedMetrics }).toEqual({ foo: 0.5 });
    }
    // The test writer produces the same bytes for the same report.
    expect(b64(encodeReport({ cpuUtilization: 0.4, rpsFractional: 50, namedMetrics: { foo: 0.5 } }))).toBe(value);
  });

  test('the older endpoint-load-metrics-bin header wins over endpoint-load-metrics (Envoy\'s precedence)', () => {
    const r = report({ 'endpoint-load-metrics': 'TEXT cpu_utilization:0.1', 'endpoint-load-metrics-bin': b64(encodeReport(EXAMPLE)) });
    expect(r.cpuUtilization).toBe(0.7);
  });

  test('a repeated header: the first value is read', () => {
    expect(report({ 'endpoint-load-metrics': ['TEXT cpu_utilization:0.3', 'TEXT cpu_utilization:0.9'] }).cpuUtilization).toBe(0.3);
  });

  test('a named metric called __proto__ or constructor is an ordinary metric', () => {
    const r = report({ 'endpoint-load-metrics': 'TEXT named_metrics.__proto__:1, named_metrics.constructor:2' });
    expect(Object.entries(r.namedMetrics)).toEqual([['__proto__', 1], ['constructor', 2]]);
  });

  test('protobuf: unknown fields are skipped, a repeated field keeps its last value, a map entry may lack key or value', () => {
    const entry = (w: ProtoWriter) => w.finish();
    const bytes = new ProtoWriter()
      .tag(20, 0).varint(300) // unknown varint
      .tag(21, 5).raw(1, 2, 3, 4) // unknown fixed32
      .bytes(22, Buffer.from('ignored')) // unknown length-delimited
      .double(1, 0.1)
      .double(1, 0.6) // repeated: the last wins
      .tag(6, 0).varint(5) // rps_fractional with the wrong wire type: skipped as unknown
      .bytes(8, entry(new ProtoWriter().double(2, 4))) // no key: ""
      .bytes(8, entry(new ProtoWriter().bytes(1, Buffer.from('k')))) // no value: 0
      .bytes(8, entry(new ProtoWriter().bytes(1, Buffer.from('k')).tag(3, 0).varint(1).double(2, 9))) // same key again, with an unknown field
      .finish();
    const r = report({ 'endpoint-load-metrics-bin': b64(bytes) });
    expect(r.cpuUtilization).toBe(0.6);
    expect(r.rpsFractional).toBe(0);
    expect({ ...r.namedMetrics }).toEqual({ '': 4, k: 9 });
  });

  test('a parsed report is frozen', () => {
    const r = report({ 'endpoint-load-metrics': 'TEXT named_metrics.rif:3' });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.namedMetrics)).toBe(true);
  });
});

describe('readLoadReport: a malformed report is returned as invalid, with why, never thrown', () => {
  const half = encodeReport(EXAMPLE).subarray(0, 20);
  const cases: [string, Headers, string][] = [
    ['an unknown format prefix', { 'endpoint-load-metrics': 'BAD random-value' }, 'unsupported format "BAD"'],
    ['an empty value', { 'endpoint-load-metrics': '' }, 'unsupported format'],
    ['a prefix without its space', { 'endpoint-load-metrics': 'TEXTcpu_utilization:1' }, 'unsupported format'],
    ['TEXT: a quoted value', { 'endpoint-load-metrics': 'TEXT cpu_utilization:"0.7"' }, 'not a decimal number'],
    ['TEXT: NaN', { 'endpoint-load-metrics': 'TEXT cpu_utilization:NaN' }, 'not a decimal number'],
    ['TEXT: infinity', { 'endpoint-load-metrics': 'TEXT cpu_utilization:inf' }, 'not a decimal number'],
    ['TEXT: a name given twice', { 'endpoint-load-metrics': 'TEXT cpu_utilization:0.7,cpu_utilization:0.8' }, 'given twice'],
    ['TEXT: a named metric given twice', { 'endpoint-load-metrics': 'TEXT named_metrics.foo:1,named_metrics.dup:1,named_metrics.dup:2' }, '"named_metrics.dup" is given twice'],
    ['TEXT: an unknown name', { 'endpoint-load-metrics': 'TEXT cpu_utilization:0.7,unsupported_metric:0.8' }, 'unknown metric "unsupported_metric"'],
    ['TEXT: an empty named metric', { 'endpoint-load-metrics': 'TEXT named_metrics.:123' }, 'empty name'],
    ['TEXT: not pairs', { 'endpoint-load-metrics': 'TEXT not-a-list-of-key-value-pairs' }, 'has no value'],
    ['TEXT: name=value (Envoy reads name:value only)', { 'endpoint-load-metrics': 'TEXT cpu_utilization=0.7' }, 'has no value'],
    ['TEXT: a trailing comma', { 'endpoint-load-metrics': 'TEXT cpu_utilization:0.7,' }, 'name is empty'],
    ['TEXT: a negative utilization', { 'endpoint-load-metrics': 'TEXT cpu_utilization:-0.5' }, 'cpu_utilization is -0.5'],
    ['TEXT: memory over 1', { 'endpoint-load-metrics': 'TEXT mem_utilization:1.5' }, 'mem_utilization is 1.5'],
    ['TEXT: negative eps', { 'endpoint-load-metrics': 'TEXT eps:-1' }, 'eps is -1'],
    ['JSON: not JSON', { 'endpoint-load-metrics': 'JSON not-a-valid-json-string' }, 'not JSON'],
    ['JSON: not closed', { 'endpoint-load-metrics': 'JSON {"cpu_utilization": "0.7"' }, 'not JSON'],
    ['JSON: an array', { 'endpoint-load-metrics': 'JSON [1]' }, 'not an object'],
    ['JSON: an unknown field', { 'endpoint-load-metrics': 'JSON {"cpu_utilization": 0.7, "unknown_field": 2}' }, 'unknown field "unknown_field"'],
    ['JSON: a prototype name as a field', { 'endpoint-load-metrics': 'JSON {"constructor": 1}' }, 'unknown field "constructor"'],
    ['JSON: a field under both names', { 'endpoint-load-metrics': 'JSON {"cpu_utilization": 0.7, "cpuUtilization": 0.8}' }, 'given twice'],
    ['JSON: a value of the wrong type', { 'endpoint-load-metrics': 'JSON {"eps": true}' }, 'field "eps" is not a number'],
    ['JSON: a map that is not an object', { 'endpoint-load-metrics': 'JSON {"named_metrics": [1]}' }, 'not an object'],
    ['JSON: a map value that is not a number', { 'endpoint-load-metrics': 'JSON {"named_metrics": {"a": "x"}}' }, '"named_metrics.a" is not a number'],
    ['JSON: a fractional uint64', { 'endpoint-load-metrics': 'JSON {"rps": 1.5}' }, 'field "rps" is not a number'],
    ['JSON: a utilization value over 1', { 'endpoint-load-metrics': 'JSON {"utilization": {"disk": 2}}' }, 'utilization.disk is 2'],
    ['BIN: truncated', { 'endpoint-load-metrics-bin': b64(half) }, 'truncated'],
    ['BIN: not base64', { 'endpoint-load-metrics-bin': 'not-a-valid-binary-proto' }, 'not base64'],
    ['BIN: a base64 length no encoder makes', { 'endpoint-load-metrics': 'BIN CZqZm' }, 'not base64'],
    ['BIN: empty', { 'endpoint-load-metrics-bin': '' }, 'empty'],
    ['BIN: prefix and nothing', { 'endpoint-load-metrics': 'BIN ' }, 'empty'],
    ['BIN: a group', { 'endpoint-load-metrics-bin': b64(new ProtoWriter().tag(10, 3).finish()) }, 'wire type 3'],
    ['BIN: field number 0', { 'endpoint-load-metrics-bin': b64(new ProtoWriter().tag(0, 1).raw(0, 0, 0, 0, 0, 0, 0, 0).finish()) }, 'field number 0'],
    ['BIN: a varint of 11 bytes', { 'endpoint-load-metrics-bin': b64(new ProtoWriter().tag(3, 0).raw(...Array(10).fill(0xff), 1).finish()) }, 'longer than 10 bytes'],
    ['BIN: a length past the end', { 'endpoint-load-metrics-bin': b64(new ProtoWriter().tag(8, 2).varint(50).raw(1).finish()) }, 'past the end'],
    ['BIN: a map key that is not UTF-8', { 'endpoint-load-metrics-bin': b64(new ProtoWriter().bytes(8, new ProtoWriter().bytes(1, Buffer.from([0xff, 0xfe])).finish()).finish()) }, 'not UTF-8'],
    ['BIN: NaN', { 'endpoint-load-metrics-bin': b64(encodeReport({ cpuUtilization: NaN })) }, 'cpu_utilization is NaN'],
    ['BIN: an infinite named metric', { 'endpoint-load-metrics-bin': b64(encodeReport({ namedMetrics: { x: Infinity } })) }, 'named_metrics.x is Infinity'],
  ];
  test.each(cases)('%s', (_name, headers, reason) => {
    const r = readLoadReport(headers);
    expect(r?.type).toBe('invalid');
    expect(r?.type === 'invalid' && r.reason).toContain(reason);
  });

  test('property: any header value, any bytes, never throw', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('', 'TEXT ', 'JSON ', 'BIN '), (s, prefix) => {
        const r = readLoadReport({ 'endpoint-load-metrics': prefix + s });
        expect(r).not.toBeNull();
      }),
      { seed: 12, numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(() => readLoadReport({ 'endpoint-load-metrics-bin': Buffer.from(bytes).toString('base64') })).not.toThrow();
      }),
      { seed: 13, numRuns: 1000 },
    );
  });

  test('property: a report written as protobuf reads back the same', () => {
    const util = fc.double({ min: 0, max: 1, noNaN: true });
    const metric = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.double({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 4 });
    fc.assert(
      fc.property(util, util, fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1e6, noNaN: true }), metric, (cpu, mem, qps, eps, named) => {
        const r = report({ 'endpoint-load-metrics': `BIN ${b64(encodeReport({ cpuUtilization: cpu, memUtilization: mem, rpsFractional: qps, eps, namedMetrics: named }))}` });
        expect(r).toMatchObject({ cpuUtilization: cpu, memUtilization: mem, rpsFractional: qps, eps });
        expect({ ...r.namedMetrics }).toEqual({ ...named });
      }),
      { seed: 14, numRuns: 300 },
    );
  });
});

describe('LoadReportReader: results remembered by header value', () => {
  test('the same value gives the same frozen result without a parse; the binary header keys apart and wins', () => {
    const reader = new LoadReportReader(4);
    const text = { 'endpoint-load-metrics': 'TEXT cpu_utilization:0.5, named_metrics.rif:2' };
    const a = reader.read({ ...text });
    const b = reader.read({ ...text });
    expect(a).toEqual({ type: 'report', report: expect.objectContaining({ cpuUtilization: 0.5, namedMetrics: { rif: 2 } }) });
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    const bin = Buffer.from(encodeReport({ cpuUtilization: 0.25 })).toString('base64');
    const both = reader.read({ ...text, 'endpoint-load-metrics-bin': bin });
    expect(both).toMatchObject({ type: 'report', report: { cpuUtilization: 0.25 } });
    // The same text in the other header is not confused with it.
    expect(reader.read({ 'endpoint-load-metrics': `bin ${bin}` })).toMatchObject({ type: 'invalid' });
    const bad = reader.read({ 'endpoint-load-metrics': 'TEXT cpu_utilization=1' });
    expect(reader.read({ 'endpoint-load-metrics': 'TEXT cpu_utilization=1' })).toBe(bad);
    expect(reader.read({})).toBeNull();
  });

  test('at most `max` values are kept', () => {
    const reader = new LoadReportReader(2);
    const first = reader.read({ 'endpoint-load-metrics': 'TEXT eps:1' });
    reader.read({ 'endpoint-load-metrics': 'TEXT eps:2' });
    reader.read({ 'endpoint-load-metrics': 'TEXT eps:3' });
    const again = reader.read({ 'endpoint-load-metrics': 'TEXT eps:1' });
    expect(again).toEqual(first);
    expect(again).not.toBe(first); // evicted, parsed again
  });
});
