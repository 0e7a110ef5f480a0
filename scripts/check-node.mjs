// Fails with a readable message when npm scripts run on a Node older than meshlet supports —
// 22.19 or later, or 24 (the same test as src/node-check.ts, which guards the import). The
// machines here ship Node 20; `npm ci` installs Node 24 as a devDependency (unless
// --ignore-scripts was used).
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(
    `meshlet needs Node.js 22 (22.19 or later) or 24; this is ${process.version}.\n` +
      'Run `npm ci` (without --ignore-scripts): it installs Node 24 from the npm registry into node_modules/.bin.',
  );
  process.exit(1);
}
