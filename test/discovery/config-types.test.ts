/**
 * The exported config types of the built-in sources: what they accept type-checks and parses;
 * a misspelled option or a unit-less duration string fails `tsc` (the `@ts-expect-error` lines
 * are checked by `npx tsc --noEmit`, which covers test/).
 */
import { expect, test } from 'vitest';
import type { BuiltinDiscoveryConfig } from '../../src/discovery/builtins.js';
import { dnsDiscovery } from '../../src/discovery/dns.js';
import { dnsSrvDiscovery } from '../../src/discovery/dns-srv.js';
import { kubernetesDiscovery } from '../../src/discovery/kubernetes.js';
import { staticDiscovery } from '../../src/discovery/static.js';

const definitions = { dns: dnsDiscovery, 'dns-srv': dnsSrvDiscovery, kubernetes: kubernetesDiscovery, static: staticDiscovery };

test('every typed config parses, and the types reject misspelled options', () => {
  const configs: BuiltinDiscoveryConfig[] = [
    { type: 'dns', host: 'web.test', port: 80, keepForMs: '30s', minRefreshMs: 500, family: 4 },
    { type: 'dns', host: 'web.test', port: 80, keepForMs: '1m30s', maxRefreshMs: '1h2m3s', timeoutMs: '1.5s' }, // compound strings type-check too
    { type: 'dns-srv', name: '_http._tcp.web.test', refreshMs: '30s', timeoutMs: 300 },
    { type: 'kubernetes', service: 'web', port: 'http', apiServer: 'http://127.0.0.1:6443', watchTimeoutMs: '5m' },
    { type: 'static', endpoints: ['http://127.0.0.1:8080', { url: 'http://127.0.0.2:8080', weight: 2 }] },
  ];
  for (const { type, ...options } of configs) expect(() => definitions[type].parseOptions!(options, 'd')).not.toThrow();

  // @ts-expect-error a misspelled option
  const typo: BuiltinDiscoveryConfig = { type: 'dns', host: 'web.test', port: 80, keepforMs: 1 };
  // @ts-expect-error a duration string needs a unit
  const unitless: BuiltinDiscoveryConfig = { type: 'dns', host: 'web.test', port: 80, keepForMs: '30' };
  // @ts-expect-error an option of another source
  const crossed: BuiltinDiscoveryConfig = { type: 'dns-srv', name: '_http._tcp.web.test', host: 'web.test' };
  // @ts-expect-error a required option missing
  const missing: BuiltinDiscoveryConfig = { type: 'kubernetes', service: 'web' };
  expect([typo, unitless, crossed, missing]).toHaveLength(4);
});
