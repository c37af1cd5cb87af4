/**
 * Crash safety: `dexhil run` killed with SIGKILL at a random moment, then `--resume`: every
 * requested trial exactly once, every row on disk before the kill unchanged, the details of the
 * trial that did not finish cut. And the repair of torn files on its own.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prepareResume } from '../harness/resume.ts';
import { readCsv, tempDir } from './helpers.ts';

const BIN = path.resolve('bin/dexhil.js');

/** Runs dexhil and kills it with SIGKILL once `when` says so (polled every few ms). */
function killWhen(args: string[], when: (elapsedMs: number) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    const t0 = Date.now();
    const poll = setInterval(() => {
      if (when(Date.now() - t0)) child.kill('SIGKILL');
    }, 3);
    child.once('exit', () => {
      clearInterval(poll);
      resolve();
    });
  });
}

const rowsOn = (file: string): number => Math.max(0, wholeLines(file).split('\n').length - 2);

/** The rows of a file that ended with a newline (what a crash cannot have torn). */
function wholeLines(file: string): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

for (const label of ['at a random time', 'after a random number of trials'] as const) {
  test(`kill -9 ${label}, then --resume: each trial once, earlier rows unchanged`, async (t) => {
    const dir = path.join(tempDir('resume'), 'run');
    // Trials a scenario (zipper and toilet-paper). At a random time: anywhere from start-up (a few
    // tenths of a second) on, in a run long enough (several seconds) that most kills land in it;
    // or mid-run, once k trials are on disk.
    const trials = label === 'at a random time' ? 100 : 25;
    const trialsFile = path.join(dir, 'trials.csv');
    const atMs = 150 + Math.floor(Math.random() * 2000);
    const atRows = 1 + Math.floor(Math.random() * (2 * trials - 2));
    await killWhen(['run', '-q', '-s', 'zipper', 'toilet-paper', '-n', String(trials), '--out', dir], (ms) => (label === 'at a random time' ? ms >= atMs : rowsOn(trialsFile) >= atRows));
    t.log(`killed ${label === 'at a random time' ? `after ${atMs} ms` : `at ${atRows} trials`} with ${rowsOn(trialsFile)} trials on disk`);
    const before = wholeLines(path.join(dir, 'trials.csv'));
    const r = spawnSync(process.execPath, [BIN, 'run', '--resume', dir, '-q'], { encoding: 'utf8' });
    if (!existsSync(path.join(dir, 'manifest.json'))) {
      // Killed before the run folder had its manifest: nothing to resume, and it says so.
      t.is(r.status, 2);
      t.regex(r.stderr, /has no manifest\.json; it is not a run folder/);
      return;
    }
    t.is(r.status, 0, r.stderr);
    const after = readFileSync(path.join(dir, 'trials.csv'), 'utf8');
    // A header torn by the kill is written anew; otherwise every whole row stays as it was.
    if (before.split('\n').length > 2) t.true(after.startsWith(before), 'rows on disk before the kill are unchanged');
    const rows = readCsv(path.join(dir, 'trials.csv'));
    t.is(rows.length, 2 * trials);
    t.is(new Set(rows.map((x) => `${x['scenario']}#${x['trial']}`)).size, 2 * trials, 'no trial twice');
    for (const s of ['zipper', 'toilet-paper']) t.deepEqual(rows.filter((x) => x['scenario'] === s).map((x) => Number(x['trial'])).sort((a, b) => a - b), Array.from({ length: trials }, (_, i) => i + 1));
    // Steps: each attempt of each finished trial once, none of a trial that is not in trials.csv.
    const steps = readCsv(path.join(dir, 'steps.csv'));
    const keys = steps.map((x) => `${x['scenario']}#${x['trial']}#${x['stage_index']}#${x['attempt']}`);
    t.is(new Set(keys).size, keys.length, 'no step row twice');
    const trialKeys = new Set(rows.map((x) => `${x['scenario']}#${x['trial']}`));
    t.true(steps.every((x) => trialKeys.has(`${x['scenario']}#${x['trial']}`)));
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { status: string; resumed: { trials_on_disk: number }[] };
    t.is(manifest.status, 'complete');
    t.is(manifest.resumed.length, 1);
  });
}

test('a torn last line and the details of an unfinished trial are cut; the rest is kept byte for byte', (t) => {
  const dir = tempDir('torn');
  const runDir = path.join(dir, 'run');
  const r = spawnSync(process.execPath, [BIN, 'run', '-q', '-s', 'smoke', '-n', '3', '--out', runDir], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const trialsFile = path.join(runDir, 'trials.csv');
  const stepsFile = path.join(runDir, 'steps.csv');
  const trials = readFileSync(trialsFile, 'utf8');
  const lines = trials.split('\n');
  // Trial 3's row torn halfway; its steps complete (they are written first).
  const kept = lines.slice(0, 3).join('\n') + '\n';
  writeFileSync(trialsFile, kept + lines[3]!.slice(0, 40));
  const steps = readFileSync(stepsFile, 'utf8');
  const resume = prepareResume(runDir);
  t.is(readFileSync(trialsFile, 'utf8'), kept);
  t.deepEqual([...resume.done.get('smoke')!], [1, 2]);
  t.true(resume.repairs.some((x) => /trials\.csv: cut a torn last line/.test(x)), resume.repairs.join('\n'));
  t.true(resume.repairs.some((x) => /steps\.csv: cut \d+ rows? of the trial that did not finish/.test(x)), resume.repairs.join('\n'));
  const stepsAfter = readFileSync(stepsFile, 'utf8');
  t.true(steps.startsWith(stepsAfter));
  t.true(readCsv(stepsFile).every((x) => x['trial'] !== '3'));
});

test('--resume refuses other run settings and folders that are not runs (exit 2)', (t) => {
  const dir = tempDir('resume-bad');
  const r = spawnSync(process.execPath, [BIN, 'run', '--resume', dir, '--trials', '5'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /--resume continues a run with its own settings; --trials cannot be given with it/);
  const r2 = spawnSync(process.execPath, [BIN, 'run', '--resume', dir], { encoding: 'utf8' });
  t.is(r2.status, 2);
  t.regex(r2.stderr, /has no manifest\.json; it is not a run folder/);
});
