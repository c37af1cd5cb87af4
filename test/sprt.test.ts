/**
 * The sequential test's operating characteristics, by simulation: 4,000 sequences of paired
 * trials per condition (seeded), at most 400 trials each, with the default design (0.9 -> 0.8,
 * alpha 0.05, power 0.8).
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCsv, runCli, tempDir } from './helpers.ts';
import { NONDETERMINISTIC_COLUMNS } from '../reports/columns.ts';
import { DEFAULT_SPRT, Sprt, sprtBounds } from '../analysis/sequential.ts';
import { trialsToDetect } from '../analysis/stats.ts';
import { Rng } from '../drivers/sim/rng.ts';

const SEQUENCES = 4000;
const MAX_TRIALS = 400;

function simulate(pA: number, pB: number, seed: number): { regression: number; noRegression: number; undecided: number; meanTrials: number } {
  const rng = new Rng(seed);
  let regression = 0;
  let noRegression = 0;
  let trials = 0;
  for (let s = 0; s < SEQUENCES; s++) {
    const sprt = new Sprt(DEFAULT_SPRT);
    let n = 0;
    while (n < MAX_TRIALS && sprt.decision === undefined) {
      n++;
      sprt.add(rng.float() < pA, rng.float() < pB);
    }
    trials += n;
    if (sprt.decision === 'regression') regression++;
    else if (sprt.decision === 'no regression') noRegression++;
  }
  return { regression: regression / SEQUENCES, noRegression: noRegression / SEQUENCES, undecided: (SEQUENCES - regression - noRegression) / SEQUENCES, meanTrials: trials / SEQUENCES };
}

test('design: theta1 and the boundaries of the default 0.9 -> 0.8 design', (t) => {
  const b = sprtBounds(DEFAULT_SPRT);
  t.true(Math.abs(b.theta1 - 0.18 / 0.26) < 1e-12);
  t.true(Math.abs(b.upper - Math.log(0.8 / 0.05)) < 1e-12);
  t.true(Math.abs(b.lower - Math.log(0.2 / 0.95)) < 1e-12);
  t.throws(() => sprtBounds({ ...DEFAULT_SPRT, p1: 0.95 }), { message: /needs p0 > p1/ });
});

test(`false alarms at most alpha + 0.01 and power at least 0.75 over ${SEQUENCES} sequences each, with fewer trials than the fixed-sample test`, (t) => {
  const fixed = trialsToDetect(DEFAULT_SPRT.p0, DEFAULT_SPRT.p1, DEFAULT_SPRT.alpha, DEFAULT_SPRT.power)!;
  for (const [p, seed] of [[0.9, 1], [0.8, 2], [0.95, 3]] as const) {
    const h0 = simulate(p, p, seed);
    t.log(`no difference at ${p}: regression ${h0.regression.toFixed(4)}, no regression ${h0.noRegression.toFixed(4)}, undecided ${h0.undecided.toFixed(4)}, mean trials ${h0.meanTrials.toFixed(1)}`);
    t.true(h0.regression <= DEFAULT_SPRT.alpha + 0.01, `false alarm rate ${h0.regression} at ${p}`);
  }
  const h1 = simulate(0.9, 0.8, 4);
  t.log(`0.9 -> 0.8: regression ${h1.regression.toFixed(4)}, no regression ${h1.noRegression.toFixed(4)}, undecided ${h1.undecided.toFixed(4)}, mean trials ${h1.meanTrials.toFixed(1)}; fixed-sample test of the same power: ${fixed} trials a build`);
  t.true(h1.regression >= DEFAULT_SPRT.power - 0.05, `power ${h1.regression}`);
  t.true(h1.meanTrials < fixed, `mean ${h1.meanTrials} vs fixed ${fixed}`);
  const h0 = simulate(0.9, 0.9, 5);
  t.true(h0.meanTrials < fixed, `mean ${h0.meanTrials} vs fixed ${fixed}`);
});

test('run --baseline --stop-when-decided: the regression build stops early with REGRESSION (exit 1), recorded in the manifest', async (t) => {
  const dir = tempDir('sprt-run');
  const base = path.join(dir, 'base');
  t.is((await runCli(['run', '-q', '-s', 'toilet-paper', '-n', '60', '--seed', '4', '--out', base])).code, 0);
  const cand = path.join(dir, 'cand');
  const r = await runCli(['run', '-q', '-s', 'toilet-paper', '-n', '60', '--seed', '4', '--out', cand, '--profile', 'fixtures/profiles/regression.yaml', '--baseline', base, '--stop-when-decided']);
  t.is(r.code, 1, r.out + r.err);
  const m = /^toilet-paper: sequential test decided REGRESSION after (\d+) trials \(upper boundary; /m.exec(r.out);
  t.truthy(m, r.out);
  const stoppedAt = Number(m![1]);
  t.true(stoppedAt < 60);
  t.is(readCsv(path.join(cand, 'trials.csv')).length, stoppedAt);
  const manifest = JSON.parse(readFileSync(path.join(cand, 'manifest.json'), 'utf8')) as { sequential: { rule: string; design: { p0: number; p1: number; upper: number }; scenarios: { scenario: string; decision: string; trials: number; llr: number }[] } };
  t.regex(manifest.sequential.rule, /Wald SPRT on discordant pairs/);
  t.is(manifest.sequential.design.p0, 0.9);
  t.deepEqual(manifest.sequential.scenarios.map((q) => [q.scenario, q.decision, q.trials]), [['toilet-paper', 'regression', stoppedAt]]);
  t.true(manifest.sequential.scenarios[0]!.llr >= manifest.sequential.design.upper);
  // compare says the early stop is the verdict.
  const c = await runCli(['compare', base, cand]);
  t.regex(c.out, /run B stopped toilet-paper after \d+ trials when its sequential test decided "regression"/);

  // Resumed with its decision on disk: nothing more runs.
  const trialsFile = path.join(cand, 'trials.csv');
  const decided = readFileSync(trialsFile, 'utf8');
  writeFileSync(path.join(dir, 'decided.csv'), decided);
  t.is((await runCli(['run', '--resume', cand, '-q'])).code, 1);
  t.is(readFileSync(trialsFile, 'utf8'), decided);
  // Resumed with the last three trials lost: the trials on disk count first, and the test decides again at the same trial
  // (the same rows but for the wall clock's).
  const lines = decided.trimEnd().split('\n');
  writeFileSync(trialsFile, `${lines.slice(0, -3).join('\n')}\n`);
  t.is((await runCli(['run', '--resume', cand, '-q'])).code, 1);
  const stable = (file: string): Record<string, string>[] => readCsv(file).map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !NONDETERMINISTIC_COLUMNS.has(k))));
  t.deepEqual(stable(trialsFile), stable(path.join(dir, 'decided.csv')));
});

test('run --baseline refuses what cannot be paired: another seed, or --stop-when-decided alone (exit 2)', async (t) => {
  const dir = tempDir('sprt-bad');
  const base = path.join(dir, 'base');
  t.is((await runCli(['run', '-q', '-s', 'smoke', '-n', '2', '--seed', '4', '--out', base])).code, 0);
  const seed = await runCli(['run', '-q', '-s', 'smoke', '-n', '2', '--seed', '5', '--out', path.join(dir, 'b'), '--baseline', base, '--stop-when-decided']);
  t.is(seed.code, 2);
  t.regex(seed.err, /--baseline .* ran with seed 4, this run with seed 5: trials pair by initial condition only with the same seed \(hint: add --seed 4\)/);
  const alone = await runCli(['run', '-q', '-s', 'smoke', '-n', '2', '--stop-when-decided']);
  t.is(alone.code, 2);
  t.regex(alone.err, /--stop-when-decided needs --baseline/);
});
