/**
 * Ctrl-C and kill: SIGINT or SIGTERM stops the run safely (the arm held, then its motors disabled
 * on close), flushes the reports, marks the run aborted and exits 130 or 143; a second Ctrl-C
 * while stopping still ends safely.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readCsv, tempDir } from './helpers.ts';

const BIN = path.resolve('bin/dexhil.js');

async function interrupted(signals: NodeJS.Signals[]): Promise<{ code: number | null; stderr: string; dir: string }> {
  const dir = path.join(tempDir('signal'), 'run');
  const child = spawn(process.execPath, [BIN, 'run', '-q', '-s', 'zipper', '-n', '500', '--trace', 'on', '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Signal once a few trials are on disk.
  const trials = path.join(dir, 'trials.csv');
  for (let i = 0; i < 600 && !(existsSync(trials) && readFileSync(trials, 'utf8').split('\n').length > 4); i++) await new Promise((r) => setTimeout(r, 20));
  for (const s of signals) {
    child.kill(s);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { code: await exited, stderr, dir };
}

function checkStoppedSafely(t: import('ava').ExecutionContext, dir: string): void {
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { status: string };
  t.is(manifest.status, 'aborted');
  const rows = readCsv(path.join(dir, 'trials.csv'));
  t.true(rows.length >= 3 && rows.length < 500);
  t.is(new Set(rows.map((r) => r['trial'])).size, rows.length, 'no trial twice');
  t.true(rows.slice(0, -1).every((r) => r['outcome'] !== 'aborted'), 'only the trial in progress is aborted');
  t.true(existsSync(path.join(dir, 'devices.csv')), 'devices.csv written at the end');
  // The arm's last frames: every motor disabled when the rig closed.
  const tail = readFileSync(path.join(dir, 'traces/arm.log'), 'utf8').trimEnd().split('\n').slice(-40);
  const disabled = new Set(tail.flatMap((l) => /^\(\S+\) arm 00([1-7])#FFFFFFFFFFFFFFFD$/.exec(l)?.[1] ?? []));
  t.is(disabled.size, 7, 'arm motors disabled on the way out');
}

test('SIGINT: exit 130, run aborted, reports flushed, arm disabled', async (t) => {
  const r = await interrupted(['SIGINT']);
  t.is(r.code, 130, r.stderr);
  t.regex(r.stderr, /SIGINT: stopping after holding the rig; trials done so far are kept/);
  checkStoppedSafely(t, r.dir);
});

test('SIGTERM: exit 143, same safe stop', async (t) => {
  const r = await interrupted(['SIGTERM']);
  t.is(r.code, 143, r.stderr);
  checkStoppedSafely(t, r.dir);
});

test('a second Ctrl-C while stopping still ends safely, never as a kill', async (t) => {
  const r = await interrupted(['SIGINT', 'SIGINT']);
  t.is(r.code, 130, r.stderr);
  // On the simulated rig the stop may be over before the second signal lands: then it is ignored.
  t.log(/SIGINT again, still stopping safely/.test(r.stderr) ? 'second SIGINT arrived while stopping' : 'second SIGINT arrived after the stop');
  checkStoppedSafely(t, r.dir);
});
