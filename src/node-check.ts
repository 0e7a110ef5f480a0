/**
 * Fails the import of meshlet on a Node.js older than 22.19, with a message that says which lines
 * are supported (tested): 22 (22.19 or later) and 24. Without it, Node 20 crashes inside undici 8 at load
 * ("Cannot read properties of undefined (reading 'bind')"), which names neither meshlet nor Node.
 *
 * It must run before undici is evaluated. In ESM every import of a module is evaluated before its
 * body, and the bundle imports undici, so this file is built on its own (dist/node-check.mjs and
 * .js, see tsup.config.mts) and loaded by the first line of each bundle. It imports nothing.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  const error = new Error(
    `meshlet (the meshletjs package) supports Node.js 22 (22.19 or later) and 24; this is Node.js ${process.version}. ` +
      'Upgrade Node.js to run it.',
  );
  (error as Error & { code: string }).code = 'ERR_MESHLET_UNSUPPORTED_NODE';
  throw error;
}
export {};
