/**
 * `dexhil compare` end to end on simulated runs, its input errors, and the gate's false-alarm
 * probability computed exactly over every possible pair of outcomes.
 */
import test from 'ava';
import { readFileSync, writeFileSync, cpSync } from 'node:fs';
import path from 'node:path';
import { boschlooBWorse, holm } from '../analysis/stats.ts';
import { readCsv, runCli, tempDir } from './helpers.ts';

const runs = (async () => {
  const dir = tempDir('compare');
  const run = async (name: string, extra: string[]): Promise<string> => {
    const out = path.join(dir, name);
    const r = await runCli(['run', '-q', '-s', 'toilet-paper', 'zipper', '--out', out, ...extra]);
    if (r.code !== 0) throw new Error(`run ${name}: ${r.err}`);
    return out;
  };
  // The default trial count (20), as a QA user would run it.
  return {
    dir,
    base: await run('base', ['--seed', '1']),
    // Another seed, nothing else changed. The gate may call any such pair a regression with a
    // probability up to its alpha (0.05; computed exactly below); seeds 1 and 2 happen to be one
    // of those pairs on this simulation (toilet-paper 20/20 against 16/20), seeds 1 and 3 are not.
    base2: await run('base2', ['--seed', '3']),
    regression: await run('regression', ['--seed', '1', '--profile', 'fixtures/profiles/regression.yaml']),
  };
})();

test('the regression profile against the baseline: exit 1, naming toilet-paper; paired trials add McNemar; files written', async (t) => {
  const { dir, base, regression } = await runs;
  const outDir = path.join(dir, 'cmp');
  const r = await runCli(['compare', base, regression, '--out', outDir]);
  t.is(r.code, 1, r.out + r.err);
  t.regex(r.out, /^toilet-paper\s+REGRESSION\s/m);
  t.regex(r.out, /^zipper\s+(INCONCLUSIVE|NON-INFERIOR)\s/m);
  t.regex(r.out, /^REGRESSION in toilet-paper$/m);
  t.regex(r.out, /^toilet-paper .*\d+ vs \d+ of 20\)$/m, 'paired: same seed, same initial conditions');
  const rows = readCsv(path.join(outDir, 'compare.csv'));
  const tp = rows.find((x) => x['scenario'] === 'toilet-paper')!;
  t.is(tp['verdict'], 'REGRESSION');
  t.true(Number(tp['holm_p']) < 0.05 && Number(tp['a_rate']) > Number(tp['b_rate']));
  t.regex(readFileSync(path.join(outDir, 'compare.md'), 'utf8'), /^# dexhil compare: REGRESSION$/m);
  const json = JSON.parse(readFileSync(path.join(outDir, 'compare.json'), 'utf8')) as { regression: boolean; scenarios: { scenario: string; verdict: string }[] };
  t.true(json.regression);
});

test('two baseline runs with different seeds: no regression, exit 0, not paired (said)', async (t) => {
  const { base, base2 } = await runs;
  const r = await runCli(['compare', base, base2, '--json']);
  t.is(r.code, 0, r.out + r.err);
  const c = JSON.parse(r.out) as { regression: boolean; notes: string[]; scenarios: { verdict: string; paired: unknown }[] };
  t.false(c.regression);
  t.true(c.scenarios.every((s) => s.verdict === 'INCONCLUSIVE' || s.verdict === 'NON-INFERIOR' || s.verdict === 'IMPROVED'));
  t.true(c.scenarios.every((s) => s.paired === undefined));
  t.true(c.notes.some((n) => /not paired: .*seeds 1 and 3/.test(n)));
});

test('input errors exit 2 with a plain message: missing folder, different scenario versions, --paired on unpairable runs', async (t) => {
  const { dir, base, base2 } = await runs;
  const missing = await runCli(['compare', base, path.join(dir, 'nope')]);
  t.is(missing.code, 2);
  t.regex(missing.err, /run B: no run folder .*nope/);

  const other = path.join(dir, 'other-version');
  cpSync(base2, other, { recursive: true });
  const trials = path.join(other, 'trials.csv');
  writeFileSync(trials, readFileSync(trials, 'utf8').replace(/,zipper,1\.0\.0,/g, ',zipper,1.1.0,'));
  const versions = await runCli(['compare', base, other]);
  t.is(versions.code, 2);
  t.regex(versions.err, /scenario zipper: run A used version 1\.0\.0 and run B version 1\.1\.0; trials of different scenario versions are not comparable/);

  const unpaired = await runCli(['compare', base, base2, '--paired']);
  t.is(unpaired.code, 2);
  t.regex(unpaired.err, /--paired: the runs share no initial-condition ids \(seeds 1 and 3\)/);

  const badMargin = await runCli(['compare', base, base2, '--margin', '5']);
  t.is(badMargin.code, 2);
});

test('the gate\'s false-alarm probability, exactly over all outcomes of two equal builds, stays at or below alpha', (t) => {
  // One scenario, 20 trials a build: P(Boschloo p < 0.05) when both builds pass with the same rate.
  const n = 20;
  const pv: number[][] = Array.from({ length: n + 1 }, (_, a) => Array.from({ length: n + 1 }, (_, b) => boschlooBWorse(a, n, b, n)));
  const binom = (k: number, p: number): number => {
    let c = 1;
    for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
    return c * p ** k * (1 - p) ** (n - k);
  };
  for (const p of [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]) {
    let alarm = 0;
    for (let a = 0; a <= n; a++) for (let b = 0; b <= n; b++) if (pv[a]![b]! < 0.05) alarm += binom(a, p) * binom(b, p);
    t.true(alarm <= 0.05, `rate ${p}: false alarm ${alarm.toFixed(4)}`);
    t.log(`pass rate ${p}: P(REGRESSION | no difference) = ${alarm.toFixed(4)}`);
  }
  // Holm over several scenarios only makes each verdict harder to reach.
  t.deepEqual(holm([0.04, 0.5, 0.6]), [0.12, 1, 1]);
});
