// The harness's code as one bundle per entry point, built with esbuild from the TypeScript sources
// and kept in node_modules/.cache/dexhil/ until a source changes. `dexhil` runs from it (bin/dexhil.js),
// and trial blocks run from it in worker threads (harness/block-pool.ts). Why: loading the sources
// through tsx takes about a second at every start, and the code so loaded runs slower than the
// same code bundled (README, "Architecture").
//
// Plain JavaScript, because it runs before any TypeScript can be loaded. Types: bin/bundle.d.ts.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The entry points, by name: the bundle has `<name>.mjs` for each, sharing chunks of common code. */
export const ENTRIES = { cli: 'harness/cli.ts', 'block-worker': 'harness/block-worker.ts' };
/** Beside node_modules, so the bundles' package imports resolve as the sources' do. */
const CACHE = process.env.DEXHIL_CACHE_DIR ?? path.join(ROOT, 'node_modules', '.cache', 'dexhil');
const INDEX = path.join(CACHE, 'bundle.json');
/** How long a bundle of earlier code is kept. */
const KEEP_OLD_MS = 3600_000;
// Not written out whole: the plugin below would rewrite this very text when the bundler itself is bundled.
const META_URL = /\bimport\.meta\.url\b/g;

/** Content hash of the files a bundle was built from; undefined when one of them is gone. */
function hashInputs(inputs) {
  const h = createHash('sha256');
  try {
    for (const file of inputs) h.update(file).update('\0').update(readFileSync(path.join(ROOT, file))).update('\0');
  } catch {
    return undefined;
  }
  return h.digest('hex');
}

/** The bundle that is up to date with the sources, if there is one. */
function upToDate() {
  let index;
  try {
    index = JSON.parse(readFileSync(INDEX, 'utf8'));
  } catch {
    return undefined;
  }
  if (index?.entries === undefined || !Array.isArray(index.inputs) || hashInputs(index.inputs) !== index.inputsHash) return undefined;
  // Its files may have gone (removed by hand, or by an older dexhil sharing the folder): build again.
  if (!Object.values(index.entries).every((file) => existsSync(path.join(CACHE, index.dir, file)))) return undefined;
  return index;
}

async function build() {
  const esbuild = await import('esbuild');
  // Each module keeps its own `import.meta.url`, so files found relative to it (the KCD file, the
  // socketcan addon, the report's client script) are found as when the sources run through tsx.
  const ownUrl = {
    name: 'own-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => ({
        contents: (await readFile(args.path, 'utf8')).replace(META_URL, JSON.stringify(pathToFileURL(args.path).href)),
        loader: args.path.endsWith('.ts') ? 'ts' : 'js',
      }));
    },
  };
  // This module stays outside the bundle: the bundled CLI shares bin/dexhil.js's instance, and so
  // its bundle, instead of checking the sources a second time.
  const thisModule = {
    name: 'bundle-module-outside',
    setup(b) {
      b.onResolve({ filter: /bundle\.js$/ }, (args) => {
        const file = path.resolve(args.resolveDir, args.path);
        return file === fileURLToPath(import.meta.url) ? { path: pathToFileURL(file).href, external: true } : undefined;
      });
    },
  };
  const out = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(ENTRIES).map(([out, file]) => ({ in: file, out })),
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // npm packages go into the bundle too, but for those loaded only when needed or that carry
    // native code (and this module's bundler).
    external: ['mqtt', 'serialport', 'socketcan', 'tsx', 'tsx/*', 'esbuild'],
    // Their CommonJS code calls require() for Node's own modules: an ESM chunk has none of its own.
    banner: { js: `import { createRequire as __dexhilRequire } from 'node:module'; const require = __dexhilRequire(${'import.meta'}.url);` },
    outExtension: { '.js': '.mjs' },
    outdir: 'out',
    write: false,
    metafile: true,
    logLevel: 'silent',
    define: { DEXHIL_BUNDLED: 'true' },
    plugins: [thisModule, ownUrl],
  });
  // This file too: a change in how bundles are made makes a new one.
  const inputs = [...new Set([...Object.keys(out.metafile.inputs), path.relative(ROOT, fileURLToPath(import.meta.url))])].sort();
  const codeHash = createHash('sha256');
  for (const f of out.outputFiles) codeHash.update(path.basename(f.path)).update(f.contents);
  const name = codeHash.digest('hex').slice(0, 16);
  const dir = path.join(CACHE, name);
  mkdirSync(CACHE, { recursive: true });
  // Written beside, then renamed into place: a run never loads a half-written bundle.
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const f of out.outputFiles) writeFileSync(path.join(tmp, path.basename(f.path)), f.contents);
  try {
    renameSync(tmp, dir);
  } catch {
    // Another process put the same bundle there first.
    rmSync(tmp, { recursive: true, force: true });
  }
  const index = { dir: name, entries: Object.fromEntries(Object.keys(ENTRIES).map((e) => [e, `${e}.mjs`])), inputs, inputsHash: hashInputs(inputs) };
  writeFileSync(`${INDEX}.${process.pid}.tmp`, `${JSON.stringify(index, null, 2)}\n`);
  renameSync(`${INDEX}.${process.pid}.tmp`, INDEX);
  // Bundles of earlier code go once they are an hour old: a run started from one loads its worker
  // threads and lazy chunks from it in its first seconds, and needs it no more. So do the
  // single-file worker bundles that versions before this one wrote.
  for (const old of readdirSync(CACHE)) {
    if (old === name || !/^([0-9a-f]{16}|block-worker-[0-9a-f]{16}\.mjs)$/.test(old)) continue;
    const file = path.join(CACHE, old);
    if (Date.now() - statSync(file, { throwIfNoEntry: false })?.mtimeMs > KEEP_OLD_MS) rmSync(file, { recursive: true, force: true });
  }
  return index;
}

let current;

/**
 * The bundle's entry points as file URLs, building the bundle first when a source changed since
 * it was built (about 0.2 s). Rejects when it cannot be built or written.
 */
export function bundle() {
  current ??= Promise.resolve()
    .then(() => upToDate() ?? build())
    .then((index) => Object.fromEntries(Object.entries(index.entries).map(([e, file]) => [e, pathToFileURL(path.join(CACHE, index.dir, file))])));
  current.catch(() => {
    current = undefined;
  });
  return current;
}
