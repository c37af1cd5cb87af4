import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { HarnessEvent, RunInfo, TrialRecord } from '../harness/events.ts';
import type { Rig } from '../harness/rig.ts';
import { toCsv } from '../reports/csv-recorder.ts';
import { SIGNAL_COLUMNS, SignalRecorder } from '../reports/signals.ts';

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
