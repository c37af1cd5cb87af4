/**
 * Trial blocks (harness/blocks.ts): a simulated run cut into blocks of 25 trials, each on a
 * simulated rig of its own, run on one thread or several. The files must not depend on the
 * number of threads, and a resumed run must give back exactly the rows it lost.
 */
import test from 'ava';
import { parse } from 'csv-parse/sync';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BLOCK_TRIALS, blockSeed, planBlocks } from '../harness/blocks.ts';
import { prepareResume } from '../harness/resume.ts';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { NONDETERMINISTIC_COLUMNS } from '../reports/columns.ts';
import { writeRunReport } from '../reports/html.ts';
import { findScenario } from '../scenarios/index.ts';
import { readCsv, tempDir } from './helpers.ts';

const FILES = ['trials.csv', 'steps.csv', 'corrections.csv', 'signals.csv'];
const scenarios = ['zipper', 'toilet-paper'].map((n) => findScenario(n)!);

/** A file's rows without run id and wall-clock cells, in (scenario, trial) order, as JSON lines. */
function stable(file: string): string[] {
  const rows = readCsv(file).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !NONDETERMINISTIC_COLUMNS.has(k) && k !== 'run_id')));
  const key = (r: Record<string, string>): string => `${r['scenario']}#${String(r['trial']).padStart(6, '0')}`;
  // Stable sort: rows of one trial keep their order.
  return rows.map((r, i) => ({ r, i })).sort((a, b) => (key(a.r) < key(b.r) ? -1 : key(a.r) > key(b.r) ? 1 : a.i - b.i)).map(({ r }) => JSON.stringify(r));
}

test('blocks: each scenario in blocks of 25 trials, the last one shorter, in plan order', (t) => {
  const blocks = planBlocks(['a', 'b'], 60);
  t.is(BLOCK_TRIALS, 25);
  t.deepEqual(blocks.map((b) => [b.index, b.scenario, b.n, b.first, b.last]), [
    [0, 'a', 0, 1, 25], [1, 'a', 1, 26, 50], [2, 'a', 2, 51, 60],
    [3, 'b', 0, 1, 25], [4, 'b', 1, 26, 50], [5, 'b', 2, 51, 60],
  ]);
  t.deepEqual(planBlocks(['a'], 0), []);
  // Each block's rig has its own seed; the same block, the same seed.
  t.is(blockSeed(1, 'a', 0), blockSeed(1, 'a', 0));
  t.is(new Set([blockSeed(1, 'a', 0), blockSeed(1, 'a', 1), blockSeed(1, 'b', 0), blockSeed(2, 'a', 0)]).size, 4);
});

test('the files are the same on one thread and on three, and the manifest says how the run went', async (t) => {
  const plan = { rigFile: DEFAULT_RIG, scenarios, trials: 30, seed: 5, epochMs: 0 };
  const one = tempDir('blocks-1');
  const three = tempDir('blocks-3');
  const r1 = await runPlan({ ...plan, outDir: one, jobs: 1 });
  const r3 = await runPlan({ ...plan, outDir: three, jobs: 3 });
  for (const f of FILES) t.deepEqual(stable(path.join(three, f)), stable(path.join(one, f)), f);
  // Rows are written in plan order, not as threads finish.
  t.deepEqual(readCsv(path.join(three, 'trials.csv')).map((r) => `${r['scenario']}#${r['trial']}`), scenarios.flatMap((s) => Array.from({ length: 30 }, (_, i) => `${s.name}#${i + 1}`)));
  t.is(r3.simSeconds, r1.simSeconds);
  t.deepEqual(r3.summary.summaries(), r1.summary.summaries());
  const manifest = JSON.parse(readFileSync(path.join(three, 'manifest.json'), 'utf8')) as { status: string; settings: { block_trials: number }; trial_blocks: { trials: number; blocks: number; threads: number }; sim_seconds: number };
  t.is(manifest.status, 'complete');
  t.is(manifest.settings.block_trials, 25);
  t.deepEqual(manifest.trial_blocks, { trials: 25, blocks: 4, threads: 3 });
  // devices.csv sums every block rig's link counters.
  const devices = readCsv(path.join(three, 'devices.csv'));
  t.deepEqual(devices, readCsv(path.join(one, 'devices.csv')).map((d, i) => ({ ...d, run_id: devices[i]!['run_id']! })));
  t.true(devices.every((d) => Number(d['rx']) > 0));
});

test('a resumed run gives back exactly the rows it lost, even with gaps, and the others stay as they were', async (t) => {
  const plan = { rigFile: DEFAULT_RIG, scenarios, trials: 30, seed: 9, epochMs: 0 };
  const whole = tempDir('blocks-whole');
  await runPlan({ ...plan, outDir: whole });
  // The run as an abort or a crash can leave it: some trials on disk, with gaps, the rest lost.
  const cut = tempDir('blocks-cut');
  cpSync(whole, cut, { recursive: true });
  // Every third trial is lost, with its rows in every file (a trial's rows are written together).
  const lost = (scenario: string, trial: string): boolean => scenarios.some((s) => s.name === scenario) && Number(trial) % 3 === 2;
  for (const f of FILES) {
    const file = path.join(cut, f);
    const records = parse(readFileSync(file, 'utf8'), { columns: true, raw: true }) as { record: Record<string, string>; raw: string }[];
    const header = readFileSync(file, 'utf8').split('\n')[0]!;
    writeFileSync(file, [header, ...records.filter((r) => !lost(r.record['scenario']!, r.record['trial']!)).map((r) => r.raw.replace(/\n$/, ''))].join('\n') + '\n');
  }
  const kept = readCsv(path.join(cut, 'trials.csv'));
  t.is(kept.length, 40);
  const manifestFile = path.join(cut, 'manifest.json');
  writeFileSync(manifestFile, JSON.stringify({ ...JSON.parse(readFileSync(manifestFile, 'utf8')), status: 'running' }));
  const resume = prepareResume(cut);
  t.is(resume.records.length, 40);
  t.deepEqual(resume.repairs, []);
  const r = await runPlan({ ...plan, resume, outDir: cut });
  t.false(r.aborted);
  for (const f of FILES) t.deepEqual(stable(path.join(cut, f)), stable(path.join(whole, f)), f);
});

test('a scenario that is not the registry\'s own runs in this thread, as it was given, whatever --jobs says', async (t) => {
  // Same stages as zipper under another name: worker threads and the bundled block code could not find it by name.
  const own = { ...findScenario('zipper')!, name: 'zipper-own' };
  const out = path.join(tempDir('blocks-own'), 'run');
  const r = await runPlan({ rigFile: DEFAULT_RIG, scenarios: [own], trials: 30, seed: 3, outDir: out, epochMs: 0, jobs: 2 });
  t.false(r.aborted);
  const rows = readCsv(path.join(out, 'trials.csv'));
  t.is(rows.length, 30);
  t.true(rows.every((x) => x['scenario'] === 'zipper-own'));
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { status: string; trial_blocks: { threads: number } };
  t.is(manifest.status, 'complete');
  t.is(manifest.trial_blocks.threads, 1);
});

test('every block runs on the rig files as the run loaded them (config, profile, cell, KCD): files edited during the run change nothing', async (t) => {
  // A copy of the sim rig with its profile and cell beside it.
  const files = tempDir('blocks-edit-files');
  cpSync(path.dirname(DEFAULT_RIG), path.join(files, 'rigs'), { recursive: true });
  cpSync(path.resolve(path.dirname(DEFAULT_RIG), '../profiles'), path.join(files, 'profiles'), { recursive: true });
  cpSync(path.resolve(path.dirname(DEFAULT_RIG), '../cell.yaml'), path.join(files, 'cell.yaml'));
  const rigFile = path.join(files, 'rigs', path.basename(DEFAULT_RIG));
  const kcd = path.join(files, 'arm.kcd');
  cpSync(path.resolve(path.dirname(DEFAULT_RIG), '../can/arm.kcd'), kcd);
  writeFileSync(rigFile, readFileSync(rigFile, 'utf8').replace(/(\n  arm:\n)/, '$1    kcd: ../arm.kcd\n'));
  const plan = { rigFile, scenarios: [findScenario('zipper')!], trials: 60, seed: 8, epochMs: 0 };
  const untouched = tempDir('blocks-edit-a');
  await runPlan({ ...plan, outDir: untouched, jobs: 2 });

  const edited = tempDir('blocks-edit-b');
  let done = 0;
  await runPlan({
    ...plan,
    outDir: edited,
    jobs: 2,
    listeners: [
      (e) => {
        // After the first trial: the profile says the zipper's teeth never engage; the rig file
        // and the CAN database break.
        if (e.type !== 'trial-end' || ++done !== 1) return;
        writeFileSync(kcd, '<NetworkDefinition>');
        const profile = path.join(files, 'profiles', 'default.yaml');
        writeFileSync(profile, readFileSync(profile, 'utf8').replace(/teeth_engage: [0-9.]+/, 'teeth_engage: 0'));
        writeFileSync(rigFile, 'rig: [not a rig\n');
      },
    ],
  });
  t.is(done, 60);
  for (const f of FILES) t.deepEqual(stable(path.join(edited, f)), stable(path.join(untouched, f)), f);
});

for (const [how, extra] of [['in blocks', { jobs: 2 }], ['on one rig (--trace on)', { trace: 'on' as const }]] as const) {
  test(`report.html of a run ${how}, drawn from the plots the run kept, is byte for byte the one drawn from its signals.csv`, async (t) => {
    const dir = tempDir('blocks-report');
    await runPlan({ rigFile: DEFAULT_RIG, scenarios, trials: 30, seed: 6, epochMs: 0, outDir: dir, ...extra });
    const fromRun = readFileSync(path.join(dir, 'report.html'), 'utf8');
    t.true(readCsv(path.join(dir, 'signals.csv')).length > 1000, 'the run has signals to draw');
    t.regex(fromRun, /wrist_ft\.force_n/);
    writeRunReport(dir); // as `dexhil report` re-renders it: from the files
    const fromFiles = readFileSync(path.join(dir, 'report.html'), 'utf8');
    // Compared by hand: a diff of two megabyte strings would take the test's whole time.
    let at = 0;
    while (at < fromRun.length && fromRun[at] === fromFiles[at]) at++;
    t.true(at === fromRun.length && at === fromFiles.length, `the pages differ from character ${at}: ${JSON.stringify(fromRun.slice(at, at + 80))} against ${JSON.stringify(fromFiles.slice(at, at + 80))}`);
  });
}
