import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';
import { tempDir } from './helpers.ts';
import { parse } from 'csv-parse/sync';
import { correctionRow, stepRow, trialRow } from '../reports/columns.ts';
import { CsvRecorder, toCsv } from '../reports/csv-recorder.ts';
import type { AttemptRecord, TrialRecord } from '../harness/events.ts';

const ctx = { runId: 'run-1', rigId: 'sim-bench', rigMode: 'arm=sim;hand=sim', firmware: 'arm=1.4.2;hand==cmd|calc' };

test('CSV rows match the golden file and read back with a CSV parser', (t) => {
  const rows = [
    trialRow(ctx, { scenario: 'zipper', scenarioVersion: '1.0.0', trial: 1, icId: '00c0ffee', seed: 7, outcome: 'fail', success: false, firstAttemptSuccess: false, stagesReached: 3, stagesTotal: 5, rubricScore: 0.6, failureLabel: 'snag-unrecovered', faultDomain: 'task', corrections: { 'snag-recovery': 3, realign: 1 }, startMs: 0, durationMs: 12345.67, timeoutMs: 120000, peakForceN: 17.251, wallStartMs: 0, wallMs: 12.5 }, 'arm.log:29-1596;hand.serial.txt:7-308'),
    stepRow(ctx, { scenario: 'zipper', trial: 1, stage: 'pull', stageIndex: 3, attempt: 1, startMs: 5000, durationMs: 4000, outcome: 'failed', failureLabel: 'snag-unrecovered', measurements: [{ name: 'pull.peak_force', value: 17.251, unit: 'N', max: 22, ok: true }] }),
    correctionRow(ctx, { scenario: 'zipper', trial: 1, stage: 'pull', attempt: 1, tMs: 6000, kind: 'snag-recovery', triggerCheck: 'wrist.fx', triggerValue: 16.4, triggerUnit: 'N', actor: 'scenario', recovered: false, durationMs: 900 }),
  ];
  const text = toCsv(rows);
  t.is(text, readFileSync('test/fixtures/golden-rows.csv', 'utf8'));
  const back = parse(text, { relax_column_count: true }) as string[][];
  t.is(back.length, 3);
  t.is(back[0]![17], 'realign=1;snag-recovery=3');
  t.is(back[0]![21], 'arm=1.4.2;hand==cmd|calc');
});

test('cells that start like a spreadsheet formula are escaped', (t) => {
  const back = parse(toCsv([['=HYPERLINK("x")', '+1', '-2', '@SUM(A1)', 'plain']])) as string[][];
  t.deepEqual(back[0], ["'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)", 'plain']);
});

test('device strings that look like spreadsheet formulas reach devices.csv escaped', async (t) => {
  const dir = tempDir('untrusted');
  const profile = YAML.parse(readFileSync('fixtures/profiles/default.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
  // (No commas: the line protocol separates fields with them, so a device cannot send one.)
  profile['hand']!['model'] = "=cmd|' /C calc'!A0";
  profile['ft']!['serialPrefix'] = '@SUM(A1)';
  writeFileSync(path.join(dir, 'profile.yaml'), YAML.stringify(profile));
  const out = path.join(dir, 'run');
  await runPlan({ rigFile: DEFAULT_RIG, profileFile: path.join(dir, 'profile.yaml'), scenarios: [findScenario('smoke')!], trials: 1, seed: 1, outDir: out, epochMs: 0 });
  const rows = parse(readFileSync(path.join(out, 'devices.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  t.is(rows.find((r) => r['device'] === 'hand')!['model'], "'=cmd|' /C calc'!A0");
  t.true(rows.filter((r) => r['kind'] === 'ft').every((r) => r['serial']!.startsWith("'@SUM(A1)")));
});

test('trial rows wait up to syncEveryMs to go to disk together, always after their details, and all by the close', async (t) => {
  const dir = tempDir('sync');
  const trial = (n: number): TrialRecord => ({ scenario: 'zipper', scenarioVersion: '1.0.0', trial: n, icId: 'ic', seed: 7, outcome: 'pass', success: true, firstAttemptSuccess: true, stagesReached: 1, stagesTotal: 1, rubricScore: 1, failureLabel: '', faultDomain: '', corrections: {}, startMs: 0, durationMs: 10, timeoutMs: 1000, peakForceN: 1, wallStartMs: 0, wallMs: 1 });
  const step = (n: number): AttemptRecord => ({ scenario: 'zipper', trial: n, stage: 'pull', stageIndex: 0, attempt: 1, startMs: 0, durationMs: 10, outcome: 'done', failureLabel: '', measurements: [] });
  const rowsIn = (file: string): number[] => (parse(readFileSync(path.join(dir, file), 'utf8'), { columns: true }) as Record<string, string>[]).map((r) => Number(r['trial']));
  const write = (csv: CsvRecorder, n: number): void => csv.writeTrial(ctx, trial(n), [step(n)], []);

  const each = new CsvRecorder(path.join(dir), () => '', false);
  each.start(ctx);
  write(each, 1);
  write(each, 2);
  t.deepEqual(rowsIn('trials.csv'), [1, 2], 'by default each trial row is on disk when the trial is written');
  each.close();

  // Windows of 400 ms: a loaded machine can pause this test for tens of milliseconds between writes.
  const batched = new CsvRecorder(dir, () => '', true, 400);
  batched.start(ctx);
  write(batched, 3); // the first goes at once
  write(batched, 4);
  write(batched, 5);
  t.deepEqual(rowsIn('trials.csv'), [1, 2, 3]);
  t.deepEqual(rowsIn('steps.csv'), [1, 2, 3, 4, 5], 'details are written at once');
  // The timer's sync (due 400 ms after the first row; later on a loaded machine), then 400 ms
  // more, so that the next row goes at once.
  for (const until = Date.now() + 5000; rowsIn('trials.csv').length < 5 && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(rowsIn('trials.csv'), [1, 2, 3, 4, 5], 'held rows go to disk by the timer');
  await new Promise((resolve) => setTimeout(resolve, 450));
  write(batched, 6); // long enough since the last sync: at once
  write(batched, 7);
  t.deepEqual(rowsIn('trials.csv'), [1, 2, 3, 4, 5, 6]);
  batched.close();
  t.deepEqual(rowsIn('trials.csv'), [1, 2, 3, 4, 5, 6, 7], 'the close writes what is held');
});

test('a held sync that fails in its timer (the file went away under it) fails the next write, not silently', async (t) => {
  const dir = tempDir('sync-fail');
  const trial = (n: number): TrialRecord => ({ scenario: 'zipper', scenarioVersion: '1.0.0', trial: n, icId: 'ic', seed: 7, outcome: 'pass', success: true, firstAttemptSuccess: true, stagesReached: 1, stagesTotal: 1, rubricScore: 1, failureLabel: '', faultDomain: '', corrections: {}, startMs: 0, durationMs: 10, timeoutMs: 1000, peakForceN: 1, wallStartMs: 0, wallMs: 1 });
  const csv = new CsvRecorder(dir, () => '', false, 400);
  csv.start(ctx);
  csv.writeTrial(ctx, trial(1), [], []);
  csv.writeTrial(ctx, trial(2), [], []); // held for the timer
  // The recorder's file descriptors swapped for one no file has: the timer's fsync fails with
  // EBADF. (Closing them would not do: the other tests of this process open files meanwhile and
  // may be given the same numbers, and the fsync would then succeed on their files.)
  const fds = (csv as unknown as { fds: Record<string, number> }).fds;
  const real = { ...fds };
  for (const name of Object.keys(fds)) fds[name] = 2 ** 31 - 1;
  // The timer fires 400 ms after the first row, later on a loaded machine.
  const failed = (): boolean => (csv as unknown as { lateFailure: unknown }).lateFailure !== undefined;
  for (const until = Date.now() + 5000; !failed() && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(failed(), 'the timer kept its failure');
  // Files usable again: only the failure the timer kept can fail the next write.
  Object.assign(fds, real);
  t.throws(() => csv.writeTrial(ctx, trial(3), [], []), { code: 'EBADF' });
  csv.writeTrial(ctx, trial(4), [], []);
  csv.close();
});
