/**
 * `npm run bench:compare`: how often `dexhil compare` cries wolf, and how often it catches the
 * regression profile, on the simulated rig at the default trial count.
 *
 *   - false alarms: pairs of runs of the same (default) profile with different seeds; the share
 *     where any scenario comes out REGRESSION (the gate's family-wise false-alarm rate);
 *   - power: the regression profile against the default, different seeds; the share where
 *     toilet-paper comes out REGRESSION.
 *
 * Environment: FA_PAIRS (default 40), FA_TRIALS (default 20), FA_SCENARIOS (default
 * toilet-paper,zipper,fold-fabric).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareRuns, loadRun } from '../analysis/compare.ts';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';

const PAIRS = Number(process.env['FA_PAIRS'] ?? 40);
const TRIALS = Number(process.env['FA_TRIALS'] ?? 20);
const SCENARIOS = (process.env['FA_SCENARIOS'] ?? 'toilet-paper,zipper,fold-fabric').split(',').map((n) => findScenario(n)!);
const REGRESSION = path.resolve('fixtures/profiles/regression.yaml');

const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-false-alarm-'));
const run = async (name: string, seed: number, profileFile?: string): Promise<string> => {
  const outDir = path.join(dir, name);
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: SCENARIOS, trials: TRIALS, seed, outDir, epochMs: 0, ...(profileFile === undefined ? {} : { profileFile }) });
  return outDir;
};

let falseAlarms = 0;
let detected = 0;
const verdicts = new Map<string, number>();
try {
  for (let i = 0; i < PAIRS; i++) {
    const a = await run(`a${i}`, 1000 + 3 * i);
    const b = await run(`b${i}`, 1001 + 3 * i);
    const r = await run(`r${i}`, 1002 + 3 * i, REGRESSION);
    const same = compareRuns(loadRun(a, 'A'), loadRun(b, 'B'));
    if (same.regression) falseAlarms++;
    for (const s of same.scenarios) verdicts.set(s.verdict, (verdicts.get(s.verdict) ?? 0) + 1);
    const reg = compareRuns(loadRun(a, 'A'), loadRun(r, 'B'));
    if (reg.scenarios.find((s) => s.scenario === 'toilet-paper')?.verdict === 'REGRESSION') detected++;
    process.stdout.write(`\rpair ${i + 1}/${PAIRS}: false alarms ${falseAlarms}, regression caught ${detected}`);
    for (const n of ['a', 'b', 'r']) rmSync(path.join(dir, `${n}${i}`), { recursive: true, force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\n${SCENARIOS.map((s) => s.name).join(', ')}, ${TRIALS} trials a scenario, ${PAIRS} pairs of runs with different seeds:`);
console.log(`  same build:       REGRESSION in any scenario in ${falseAlarms}/${PAIRS} (${((100 * falseAlarms) / PAIRS).toFixed(1)}%); verdicts ${[...verdicts].map(([v, n]) => `${v} ${n}`).join(', ')}`);
console.log(`  regression build: toilet-paper REGRESSION in ${detected}/${PAIRS} (${((100 * detected) / PAIRS).toFixed(1)}%)`);
