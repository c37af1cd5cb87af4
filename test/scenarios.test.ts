import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NONDETERMINISTIC_COLUMNS, TRIAL_COLUMNS } from '../reports/columns.ts';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { SCENARIOS, findScenario } from '../scenarios/index.ts';
import { readCsv, tempDir } from './helpers.ts';

const scenario = (n: string) => findScenario(n)!;

for (const s of SCENARIOS) {
  test(`${s.name} runs end to end on the simulated rig and writes consistent CSVs`, async (t) => {
    const dir = tempDir(s.name);
    const r = await runPlan({ rigFile: DEFAULT_RIG, scenarios: [s], trials: 6, seed: 11, outDir: dir });
    const trials = readCsv(path.join(dir, 'trials.csv'));
    const steps = readCsv(path.join(dir, 'steps.csv'));
    const corrections = readCsv(path.join(dir, 'corrections.csv'));
    t.is(trials.length, 6);
    t.deepEqual(Object.keys(trials[0]!), [...TRIAL_COLUMNS]);
    for (const row of trials) {
      t.true(['pass', 'fail', 'error', 'timeout', 'aborted'].includes(row['outcome']!));
      t.is(row['success'], row['outcome'] === 'pass' ? '1' : '0');
      t.is(row['rig_mode'], 'arm=sim;hand=sim;wrist_ft=sim;table_ft=sim');
      t.regex(row['firmware']!, /arm=1\.4\.2;hand=2\.3\.1;wrist_ft=3\.0\.4/);
      const n = Number(row['corrections_total']);
      t.is(corrections.filter((c) => c['trial'] === row['trial']).length, n);
      t.true(steps.some((st) => st['trial'] === row['trial']) || row['failure_label'] === 'reset-failed');
    }
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    t.is(manifest['status'], 'complete');
    t.is(manifest['clock'], 'virtual');
    t.is(r.clockKind, 'virtual');
  });
}

function stripNondeterministic(file: string): string {
  const rows = readCsv(file);
  return JSON.stringify(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !NONDETERMINISTIC_COLUMNS.has(k)))));
}

test('determinism: same seed, identical reports apart from run id and wall-clock columns; other seed differs', async (t) => {
  const plan = { rigFile: DEFAULT_RIG, scenarios: [scenario('zipper'), scenario('toilet-paper')], trials: 8 };
  const [a, b, c] = [tempDir('det-a'), tempDir('det-b'), tempDir('det-c')];
  await runPlan({ ...plan, seed: 7, outDir: a });
  await runPlan({ ...plan, seed: 7, outDir: b });
  await runPlan({ ...plan, seed: 8, outDir: c });
  for (const f of ['trials.csv', 'steps.csv', 'corrections.csv']) {
    t.is(stripNondeterministic(path.join(a, f)), stripNondeterministic(path.join(b, f)), f);
  }
  t.not(stripNondeterministic(path.join(a, 'trials.csv')), stripNondeterministic(path.join(c, 'trials.csv')));
  // Same seed, same initial conditions: the pairing key for comparisons.
  t.deepEqual(readCsv(path.join(a, 'trials.csv')).map((r) => r['ic_id']), readCsv(path.join(b, 'trials.csv')).map((r) => r['ic_id']));
});

test('a scenario whose devices are missing is skipped with the reason', async (t) => {
  const dir = tempDir('arm-only');
  const r = await runPlan({ rigFile: path.resolve('fixtures/rigs/arm-only.yaml'), scenarios: [scenario('smoke'), scenario('zipper')], trials: 2, seed: 1, outDir: dir });
  t.deepEqual(r.summary.skipped, [{ scenario: 'zipper', reason: 'rig sim-arm-only has no hand' }]);
  t.is(readCsv(path.join(dir, 'trials.csv')).length, 2);
  const hand = await runPlan({ rigFile: path.resolve('fixtures/rigs/hand-only.yaml'), scenarios: [scenario('smoke')], trials: 1, seed: 1, outDir: tempDir('hand-only') });
  t.is(hand.summary.summaries()[0]?.pass, 1);
});

test('realism: on the default rig and profile, each task scenario succeeds in more than 50% and fewer than 98% of 200 trials, with at least 3 kinds of correction, some recovered and some not', async (t) => {
  const tasks = ['fold-fabric', 'zipper', 'toilet-paper'];
  const dir = tempDir('realism');
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: tasks.map(scenario), trials: 200, seed: 1, outDir: dir });
  const trials = readCsv(path.join(dir, 'trials.csv'));
  const corrections = readCsv(path.join(dir, 'corrections.csv'));
  for (const name of tasks) {
    const rows = trials.filter((r) => r['scenario'] === name);
    t.is(rows.length, 200, name);
    const rate = rows.filter((r) => r['success'] === '1').length / rows.length;
    t.true(rate > 0.5 && rate < 0.98, `${name}: success rate ${rate}`);
    const own = corrections.filter((c) => c['scenario'] === name);
    const kinds = new Set(own.map((c) => c['kind']));
    t.true(kinds.size >= 3, `${name}: correction kinds ${[...kinds].join(', ')}`);
    t.true(own.some((c) => c['recovered'] === '1') && own.some((c) => c['recovered'] === '0'), `${name}: recovered and unrecovered corrections`);
  }
});
