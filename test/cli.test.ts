import test from 'ava';
import { readCsv, runCli, tempDir } from './helpers.ts';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

test('dexhil list shows every scenario with stages and success criteria', async (t) => {
  const { code, out } = await runCli(['list']);
  t.is(code, 0);
  for (const name of ['smoke', 'fold-fabric', 'zipper', 'toilet-paper']) t.regex(out, new RegExp(`^${name} v`, 'm'));
  t.regex(out, /success: slider pulled to the top stop/);
  t.regex(out, /2\. insert-pin \(timeout 30 s, 2 attempts\)/);
});

test('dexhil --version prints the version of package.json', async (t) => {
  const { code, out } = await runCli(['--version']);
  t.is(code, 0);
  t.is(out.trim(), (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
});

test('dexhil run writes the report folder and prints the summary', async (t) => {
  const dir = tempDir('cli');
  const { code, out } = await runCli(['run', '--scenario', 'zipper', '--trials', '3', '--seed', '7', '--out', dir, '--quiet']);
  t.is(code, 0);
  t.regex(out, /zipper\s+3\s+\d+\s+\d+/);
  t.regex(out, /simulated time [\d.]+ s, wall time/);
  t.is(readCsv(path.join(dir, 'trials.csv')).length, 3);
});

test('bad arguments exit 2 with a message', async (t) => {
  t.is((await runCli(['run', '--trials', 'zero'])).code, 2);
  t.is((await runCli(['run', '--scenario', 'nope', '--out', tempDir('nope')])).code, 2);
  t.is((await runCli(['run', '--rig', '/nonexistent.yaml'])).code, 2);
});

test('a reader that goes away (dexhil run | head -1) does not stop the run or lose rows', async (t) => {
  const dir = tempDir('epipe');
  const child = spawn(process.execPath, ['bin/dexhil.js', 'run', '--scenario', 'smoke', '--trials', '60', '--seed', '2', '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // Read the first line, then close our end of the pipe as `head -1` does.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.is(code, 0, stderr);
  t.notRegex(stderr, /EPIPE/);
  t.is(readCsv(path.join(dir, 'trials.csv')).length, 60);
});
