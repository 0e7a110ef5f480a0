// The README's samples are a test: every ```ts / ```js block is type-checked against the built
// package (dist/, made by `npm test`'s pretest build), and every self-contained one is run and
// must exit 0. A user who copies a sample gets code that compiles and does what it says.
//
// How a block is treated (markers are comments inside the block, so a reader sees them too):
//   - a complete module: type-checked as it is, then run with Node (type stripping) — unless the
//     line before the fence is `<!-- readme-test: not run — <reason> -->` (it needs servers,
//     files or a cluster that a test on loopback cannot provide);
//   - `// fragment (ServiceConfig) …`: fields of one service's config, checked inside
//     `const _: ServiceConfig = { … }`;
//   - `// fragment (services) …`: entries of `services`, checked as `MeshConfig['services']`;
//   - `// fragment (mesh) …`: code that uses the `mesh` of the Quick start, checked with
//     `declare const mesh: Mesh` in front;
//   - `// fragment (unchecked) …`: opts out entirely; only for a fragment that none of the above
//     can frame (the README must say so next to it).
// Fragments are type-checked but not run.
//
// The blocks are written to a scratch folder inside the repository (removed afterwards) so that
// `import … from 'meshletjs'` resolves exactly as for a user: through package.json `exports`
// (the package's self-reference) to dist/, types included; `undici` resolves from node_modules.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = process.cwd(); // vitest runs from the repository root
const built = existsSync(join(root, 'dist', 'index.d.mts'));

type Kind = 'module' | 'ServiceConfig' | 'services' | 'mesh' | 'unchecked';

interface Block {
  /** README line of the first code line (after the fence). */
  line: number;
  lang: 'ts' | 'js';
  code: string;
  kind: Kind;
  /** Why a complete module is not run, from `<!-- readme-test: not run — reason -->`. */
  notRun: string | undefined;
}

/** Every ```ts / ```js block of a markdown text, with its markers. */
function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```\s*(ts|typescript|js|javascript|mjs|mts)\s*$/.exec(lines[i]!);
    if (!fence) {
      if (/^```/.test(lines[i]!)) {
        // Skip other fenced blocks (sh, yaml, …) whole, so their contents are not read as fences.
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
      }
      continue;
    }
    const lang = /^(js|javascript|mjs)$/.test(fence[1]!) ? 'js' : 'ts';
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const notRun = before >= 0 ? /^<!--\s*readme-test:\s*not run\s*[—-]\s*(.+?)\s*-->$/.exec(lines[before]!.trim())?.[1] : undefined;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    const code = lines.slice(start, end).join('\n');
    const marker = /^\s*\/\/\s*fragment\s*\((\w+)\)/m.exec(code)?.[1];
    let kind: Kind = 'module';
    if (marker !== undefined) {
      if (!['ServiceConfig', 'services', 'mesh', 'unchecked'].includes(marker)) {
        throw new Error(`README.md:${start + 1}: unknown marker "fragment (${marker})"`);
      }
      kind = marker as Kind;
    }
    blocks.push({ line: start + 1, lang, code, kind, notRun });
    i = end;
  }
  return blocks;
}

/** The file a block is checked as, and how many lines were put in front of its code. */
function frame(b: Block): { text: string; prelude: number } {
  switch (b.kind) {
    case 'ServiceConfig':
      return { text: `import type { ServiceConfig } from 'meshletjs';\nexport const fragment: ServiceConfig = {\n${b.code}\n};\n`, prelude: 2 };
    case 'services':
      return { text: `import type { MeshConfig } from 'meshletjs';\nexport const fragment: MeshConfig['services'] = {\n${b.code}\n};\n`, prelude: 2 };
    case 'mesh':
      return { text: `import type { Mesh } from 'meshletjs';\ndeclare const mesh: Mesh;\n${b.code}\nexport {};\n`, prelude: 2 };
    default:
      return { text: `${b.code}\nexport {};\n`, prelude: 0 };
  }
}

const fileName = (b: Block) => `readme-line-${b.line}.${b.lang === 'ts' ? 'mts' : 'mjs'}`;

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = extractBlocks(readme);
const checked = blocks.filter((b) => b.kind !== 'unchecked');
const runnable = blocks.filter((b) => b.kind === 'module' && b.notRun === undefined);
let dir: string;

beforeAll(() => {
  // Inside the repository, so the package's self-reference (`meshletjs` → dist/) applies.
  dir = mkdtempSync(join(root, '.readme-test-'));
  for (const b of checked) writeFileSync(join(dir, fileName(b)), frame(b).text);
  for (const [name, lib] of LIBS) writeFileSync(
    join(dir, name),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        strict: true,
        noUncheckedIndexedAccess: true,
        allowJs: true,
        checkJs: true,
        skipLibCheck: true,
        noEmit: true,
      },
      include: ['*.mts', '*.mjs'],
    }),
  );
});

/** Node's own libs, and with the DOM's too (a project that also builds for the browser has it): its fetch types differ. */
const LIBS = [
  ['tsconfig.json', ['ES2023']],
  ['tsconfig.dom.json', ['ES2023', 'DOM']],
] as const;

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(built)('README samples', () => {
  test('the README has samples, and every marker is one this test knows', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    expect(runnable.length).toBeGreaterThanOrEqual(2);
    // Opting out is for fragments no frame fits; there are none today.
    expect(blocks.filter((b) => b.kind === 'unchecked').map((b) => `README.md:${b.line}`)).toEqual([]);
  });

  test.each(LIBS)('every ts/js block type-checks against the built package (strict, %s)', (config) => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    let out = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, config), '--pretty', 'false'], { cwd: dir, encoding: 'utf8' });
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? err);
    }
    // "readme-line-134.mts(17,3): error TS2304: …" → "README.md:150:3 TS2304 …"
    const byFile = new Map(checked.map((b) => [fileName(b), b]));
    const errors = out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^(readme-line-\d+\.m[tj]s)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(l);
        const b = m ? byFile.get(m[1]!) : undefined;
        if (!m || !b) return l;
        const line = b.line + Number(m[2]) - 1 - frame(b).prelude;
        return `README.md:${line}:${m[3]} ${m[4]} ${m[5]}`;
      });
    expect(errors, `README samples that do not compile:\n${errors.join('\n')}`).toEqual([]);
  }, 60_000);

  for (const b of runnable) {
    test(`the sample at README.md:${b.line} runs and exits 0`, async () => {
      const r = await promisify(execFile)(process.execPath, [join(dir, fileName(b))], { cwd: dir, encoding: 'utf8', timeout: 20_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code?: number | string; stderr?: string; killed?: boolean }) => ({
          code: err.killed ? 'timed out' : err.code,
          stderr: err.stderr ?? '',
        }),
      );
      expect(r, `README.md:${b.line}`).toEqual({ code: 0, stderr: expect.any(String) });
    }, 30_000);
  }
});
