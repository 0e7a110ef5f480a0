// A custom discovery source, as the README shows: endpoints come from a JSON file
// ({ "<service>": [{ "url": ..., "labels": {...} }, ...] }) that the runner rewrites whenever a
// replica starts, stops or moves. The file is polled, so atomic renames are seen too.
import { readFile } from 'node:fs/promises';
import { parseEndpointSpec } from 'meshletjs';

export const fileDiscovery = {
  create({ path, service }, ctx) {
    let last = '';
    const load = async () => {
      try {
        const text = await readFile(path, 'utf8');
        if (text === last) return;
        last = text;
        const list = JSON.parse(text)[service] ?? [];
        ctx.update(list.map((e, i) => parseEndpointSpec(e, `${path}:${service}[${i}]`)));
      } catch (err) {
        ctx.error(err); // unreadable or half-written: keep the last good set
      }
    };
    void load();
    const timer = setInterval(load, 100);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  },
};
