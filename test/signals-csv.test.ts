import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { HarnessEvent, RunInfo, TrialRecord } from '../harness/events.ts';
import type { Rig } from '../harness/rig.ts';
import { toCsv } from '../reports/csv-recorder.ts';
import { parseSignals, readSignalSeries, scanSignals } from '../reports/run-data.ts';
import { round4, SIGNAL_COLUMNS, SignalRecorder, tenths, timeCell } from '../reports/signals.ts';
import fc from 'fast-check';

type Wrench = { fx: number; fy: number; fz: number; tx: number; ty: number; tz: number; rxMs: number };
type HandState = { tipForceN: number[]; rxMs: number };

/** A rig with one F/T sensor and a hand whose samples the test pushes. */
function fakeRig() {
  const ft = new Set<(w: Wrench) => void>();
  const hand = new Set<(h: HandState) => void>();
  const rig = {
    sensors: [{ name: 'wrist_ft', mount: 'wrist', driver: { onSample: (l: (w: Wrench) => void) => (ft.add(l), () => ft.delete(l)) } }],
    hand: { name: 'hand', onState: (l: (h: HandState) => void) => (hand.add(l), () => hand.delete(l)) },
    onReconnect: () => () => undefined,
  };
  return {
    rig: rig as unknown as Rig,
    wrench: (w: Wrench) => ft.forEach((l) => l(w)),
    grip: (h: HandState) => hand.forEach((l) => l(h)),
  };
}

test('signals.csv: the rows of a trial around its events, as toCsv writes them (quoted run id, negative values), read back by a CSV parser', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-signals-'));
  const { rig, wrench, grip } = fakeRig();
  const rec = new SignalRecorder(dir, rig);
  const runId = 'run,"odd"';
  const emit = (e: HarnessEvent): void => rec.listener(e);
  emit({ type: 'run-start', run: { runId } as RunInfo });
  wrench({ fx: 9, fy: 9, fz: 9, tx: 0, ty: 0, tz: 0, rxMs: 50 }); // before the trial: not recorded
  emit({ type: 'trial-start', scenario: 'zipper', trial: 3, icId: 'ab', tMs: 100 });
  const expected: (string | number)[][] = [];
  for (let k = 0; k < 40; k++) {
    const at = 100 + k * 100;
    wrench({ fx: 3, fy: 4, fz: 0, tx: 0, ty: 0.3, tz: 0.4, rxMs: at });
    grip({ tipForceN: [-0.25 - k / 1000, 0.1, 0, 0, 0], rxMs: at + 7.25 });
  }
  // One correction 1.5 s in: rows from 0 (2 s before, clipped) to 2.5 s (1 s after).
  emit({ type: 'correction', record: { tMs: 1500 } as never });
  for (let k = 0; k < 40; k++) {
    const t0 = k * 100 + 7.25;
    const grip = -0.25 - k / 1000 + 0.1;
    if (t0 <= 2500) expected.push([runId, 'zipper', 3, t0.toFixed(1), 'hand.grip_n', Number(grip.toFixed(4))]);
  }
  for (const name of ['wrist_ft.force_n', 'wrist_ft.torque_nm']) {
    for (let k = 0; k < 40; k++) if (k * 100 <= 2500) expected.push([runId, 'zipper', 3, (k * 100).toFixed(1), name, name.endsWith('force_n') ? 5 : 0.5]);
  }
  emit({ type: 'trial-end', record: { outcome: 'pass', durationMs: 4000 } as TrialRecord });
  emit({ type: 'run-end', runId, tMs: 5000, wallMs: 0, aborted: false });
  const text = readFileSync(path.join(dir, 'signals.csv'), 'utf8');
  t.is(text, toCsv([[...SIGNAL_COLUMNS], ...expected]));
  const rows = parse(text, { columns: true }) as Record<string, string>[];
  t.is(rows.length, expected.length);
  t.is(rows[0]!['run_id'], runId);
  t.is(rows[0]!['value'], '-0.15');
  t.deepEqual(rows.filter((r) => Number(r['t_ms']) > 2500), [], 'nothing after 1 s past the last event');
});

test('report signals: a signals.csv cut by position gives what the CSV parser gives; torn and blank lines are left out; a quoted file takes the parser', (t) => {
  const head = `${SIGNAL_COLUMNS.join(',')}\n`;
  const body = [
    'r1,zipper,1,0.0,hand.grip_n,0.5',
    'r1,zipper,1,10.0,hand.grip_n,-0.25',
    'r1,zipper,1,0.0,wrist_ft.force_n,5',
    'r1,zipper,1,1.0,wrist_ft.force_n2,6', // a channel whose name starts with the last one's
    '',
    'r1,zipper,12,0.0,wrist_ft.force_n,7', // not wanted; starts like trial 1's lead
    'r1,zipper,2,0.0,,1', // an empty channel name
    'r1,zipper,2,5.5,wrist_ft.force_n,2,9', // seven cells
    'r1,zipper,2,6.5,wrist_ft.force_n,2.5',
    'r1,fold-fabric,1,0.0,wrist_ft.force_n,3',
    'r1,zipper,1,20.0,hand.grip_n,0.75', // trial 1 again, after others
    'r1,zipper,2,7.5,wrist', // torn last line
  ].join('\n');
  const wanted = new Set(['zipper#1', 'zipper#2']);
  const plain = head + body;
  const expected = new Map([
    ['zipper#1', new Map([['hand.grip_n', [[0, 0.5], [0.01, -0.25], [0.02, 0.75]]], ['wrist_ft.force_n', [[0, 5]]], ['wrist_ft.force_n2', [[0.001, 6]]]])],
    ['zipper#2', new Map([['', [[0, 1]]], ['wrist_ft.force_n', [[0.0065, 2.5]]]])],
  ]);
  t.deepEqual(scanSignals(plain, wanted), expected);
  t.deepEqual(parseSignals(plain, wanted), expected);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-signals-read-'));
  const file = path.join(dir, 'signals.csv');
  writeFileSync(file, plain);
  t.deepEqual(readSignalSeries(file, wanted), expected);
  // The same rows with a quoted run id (a comma in it) and CRLF line ends: the parser's way.
  writeFileSync(file, (head + body.replace(/^r1,/gm, '"r,1",')).replace(/\n/g, '\r\n'));
  t.deepEqual(readSignalSeries(file, wanted), expected);
  t.deepEqual(readSignalSeries(path.join(dir, 'none.csv'), wanted), new Map());
});

test('report signals: both readers agree on a recorded signals.csv (random trials, channels and values)', (t) => {
  const rand = (() => {
    let s = 7;
    return () => ((s = Math.imul(s, 48271) % 2147483647) & 0x7fffffff) / 2147483647;
  })();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-signals-agree-'));
  const { rig, wrench, grip } = fakeRig();
  const rec = new SignalRecorder(dir, rig);
  const emit = (e: HarnessEvent): void => rec.listener(e);
  emit({ type: 'run-start', run: { runId: 'run-7' } as RunInfo });
  for (let trial = 1; trial <= 30; trial++) {
    const scenario = rand() < 0.5 ? 'zipper' : 'fold-fabric';
    emit({ type: 'trial-start', scenario, trial, icId: 'ab', tMs: trial * 10_000 });
    for (let k = 0; k < 50; k++) {
      const at = trial * 10_000 + k * 40 + rand() * 10;
      wrench({ fx: rand() * 20 - 10, fy: rand() - 0.5, fz: -rand() * 1e-5, tx: rand(), ty: 0, tz: -rand(), rxMs: at });
      if (rand() < 0.5) grip({ tipForceN: [rand() * 3, -rand(), 0, 0, 1e-7], rxMs: at + 1 });
    }
    if (rand() < 0.6) emit({ type: 'correction', record: { tMs: trial * 10_000 + 1000 } as never });
    emit({ type: 'trial-end', record: { outcome: rand() < 0.3 ? 'fail' : 'pass', durationMs: 2000 } as TrialRecord });
  }
  emit({ type: 'run-end', runId: 'run-7', tMs: 0, wallMs: 0, aborted: false });
  const text = readFileSync(path.join(dir, 'signals.csv'), 'utf8');
  const wanted = new Set([...text.matchAll(/^run-7,([^,]+),(\d+),/gm)].map((m) => `${m[1]}#${m[2]}`).filter(() => rand() < 0.7));
  t.true(wanted.size > 5);
  const scanned = scanSignals(text, wanted);
  t.is(scanned.size, wanted.size);
  t.deepEqual(scanned, parseSignals(text, wanted));
});

test('signals.csv numbers: timeCell(tenths()) and round4() give what toFixed(1) and Number(toFixed(4)) give, halves and near-halves included', (t) => {
  const viaTenths = (x: number): [string, number] => {
    const n = tenths(x);
    const cell = timeCell(x, n);
    return [cell, n >= 0 ? n / 10 : Number(cell)];
  };
  const check = (x: number): void => {
    t.deepEqual(viaTenths(x), [x.toFixed(1), Number(x.toFixed(1))], String(x));
    for (const v of [x, -x]) {
      const want = Number(v.toFixed(4));
      t.true(Object.is(round4(v), want), `${v}: ${round4(v)} against ${want}`);
    }
  };
  // Exact halves and their neighbours one ulp away, where the product's rounding could tip over.
  for (let k = 0; k < 2000; k++) {
    for (const x of [k / 10 + 0.05, k / 1e4 + 0.00005, (k * 7919) / 1e4 + 0.00005, k * 12.34 + 0.05]) {
      for (const y of [x, x + x * Number.EPSILON, x - x * Number.EPSILON]) check(y);
    }
  }
  for (const x of [0, -0, 1e-9, 0.04999999, 0.05, 0.15, 0.25, 1.45, 2.675, 1e8, 99999999.95, 1e9, 1e12, 1e21, 1e22, Number.NaN, Infinity]) check(x);
  fc.assert(fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (x) => check(x)), { numRuns: 20000 });
  fc.assert(fc.property(fc.integer({ min: 0, max: 10_000_000 }), (n) => check(n / 1e4 + 0.00005)), { numRuns: 20000 });
});
