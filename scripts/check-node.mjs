// Fails with a readable message when npm scripts run on a Node older than 22 (the machines here
// ship Node 20; `npm ci` installs Node 24 as a devDependency — unless --ignore-scripts was used).
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(
    `meshlet needs Node.js 22 or 24; this is ${process.version}.\n` +
      'Run `npm ci` (without --ignore-scripts): it installs Node 24 from the npm registry into node_modules/.bin.',
  );
  process.exit(1);
}
