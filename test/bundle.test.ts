import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readCsv, tempDir } from './helpers.ts';
import { NONDETERMINISTIC_COLUMNS } from '../reports/columns.ts';

const execFileP = promisify(execFile);

/** Runs bin/dexhil.js in a fresh process with extra environment; never rejects. */
async function dexhil(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await execFileP(process.execPath, ['bin/dexhil.js', ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** A bundle cache of the test's own (inside the project, so the bundle's package imports resolve). */
function testCache(t: { teardown(fn: () => void): void }): string {
  const dir = path.resolve('node_modules', '.cache', `dexhil-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the CLI runs from a bundle built from the sources, kept until a source changes', async (t) => {
  const cache = testCache(t);
  const fromSources = await dexhil(['list'], { DEXHIL_FROM_SOURCES: '1' });
  const first = await dexhil(['list'], { DEXHIL_CACHE_DIR: cache });
  t.is(first.code, 0, first.err);
  t.is(first.out, fromSources.out);
  t.is(first.err, '');
  const indexFile = path.join(cache, 'bundle.json');
  const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { dir: string; entries: Record<string, string>; inputs: string[]; inputsHash: string };
  for (const file of Object.values(index.entries)) t.true(existsSync(path.join(cache, index.dir, file)), file);
  t.true(index.inputs.includes('harness/cli.ts') && index.inputs.includes('drivers/arm/codec.ts'));

  // Up to date: the next start builds nothing.
  const built = statSync(indexFile).mtimeMs;
  t.is((await dexhil(['list'], { DEXHIL_CACHE_DIR: cache })).code, 0);
  t.is(statSync(indexFile).mtimeMs, built);

  // A bundle whose files are gone is built again, without a word.
  rmSync(path.join(cache, index.dir), { recursive: true, force: true });
  const rebuilt = await dexhil(['list'], { DEXHIL_CACHE_DIR: cache });
  t.is(rebuilt.code, 0, rebuilt.err);
  t.is(rebuilt.err, '');
  t.is(rebuilt.out, fromSources.out);
  t.true(existsSync(path.join(cache, index.dir, 'cli.mjs')));

  // A source that changed (its content no longer hashes as recorded) makes the next start build again.
  writeFileSync(indexFile, JSON.stringify({ ...index, inputsHash: 'stale' }));
  const again = await dexhil(['list'], { DEXHIL_CACHE_DIR: cache });
  t.is(again.code, 0, again.err);
  t.is(again.out, fromSources.out);
  t.is((JSON.parse(readFileSync(indexFile, 'utf8')) as { inputsHash: string }).inputsHash, index.inputsHash);
});

test('where the bundle cannot be written, the CLI says so and runs from the sources', async (t) => {
  // A file where the cache folder should be: the folder cannot be made.
  // On a fresh clone nothing may have made node_modules/.cache yet: make it here, not rely on another test.
  const blocked = `${testCache(t)}-file`;
  mkdirSync(path.dirname(blocked), { recursive: true });
  writeFileSync(blocked, 'not a folder\n');
  t.teardown(() => rmSync(blocked, { force: true }));
  const r = await dexhil(['list'], { DEXHIL_CACHE_DIR: blocked });
  t.is(r.code, 0, r.err);
  t.regex(r.err, /dexhil: running from the TypeScript sources \(slower to start\): the bundled code could not be built or loaded: .*(EEXIST|ENOTDIR)/);
  t.regex(r.out, /^zipper v/m);
});

test('a simulated run gives the same rows from the bundle as from the sources, with worker threads or without', async (t) => {
  const cache = testCache(t);
  const run = async (env: Record<string, string>, jobs: string): Promise<Record<string, string>[]> => {
    const out = tempDir('bundle-run');
    const r = await dexhil(['run', '--scenario', 'zipper,toilet-paper', '--trials', '30', '--seed', '5', '--jobs', jobs, '--out', out, '--quiet'], env);
    t.is(r.code, 0, r.err);
    t.notRegex(r.err, /running from the TypeScript sources|run through tsx/);
    return readCsv(path.join(out, 'steps.csv')).map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !NONDETERMINISTIC_COLUMNS.has(k))));
  };
  const sources = await run({ DEXHIL_FROM_SOURCES: '1' }, '1');
  t.is(sources.length > 60, true);
  t.deepEqual(await run({ DEXHIL_CACHE_DIR: cache }, '1'), sources);
  t.deepEqual(await run({ DEXHIL_CACHE_DIR: cache }, '2'), sources);
});
