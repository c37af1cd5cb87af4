/**
 * Several rigs, one suite: `dexhil fleet serve` and three `dexhil fleet work` processes on
 * simulated rigs, through a real mosquitto on loopback (MQTT 5 shared subscriptions), watched by
 * mosquitto_sub. One worker is killed in the middle of a trial; the suite still completes with
 * every trial exactly once.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';
import { readCsv, runCli, simRigFile, tempDir } from './helpers.ts';
import { freePort, haveMosquitto, publish, retained, startBroker, watch } from './mqtt-broker.ts';

const mqttTest = haveMosquitto || process.env['CI'] === 'true' ? test.serial : test.serial.skip;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Proc {
  proc: ChildProcess;
  out: string;
  err: string;
  exit: Promise<number | null>;
}

function dexhil(args: string[]): Proc {
  const proc = spawn(process.execPath, ['bin/dexhil.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { proc, out: '', err: '', exit: new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? (sig === null ? null : 128)))) };
  proc.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  return p;
}

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

mqttTest('a coordinator and 3 simulated workers run a 3-scenario suite; a worker killed mid-trial has its trial handed to another; every trial is in the merged report exactly once', async (t) => {
  const broker = await startBroker();
  const dir = tempDir('fleet');
  const suiteFile = path.join(dir, 'suite.yaml');
  writeFileSync(suiteFile, ['suite: nightly', 'seed: 5', 'trials: 8', 'scenarios:', '  - fold-fabric', '  - zipper', '  - name: toilet-paper', '    trials: 6', ''].join('\n'));
  const results = watch(broker, 'dexhil/fleet/lab/results');
  await results.ready;
  const ids = ['rig-a', 'rig-b', 'rig-c'];
  const workers = new Map(ids.map((id) => [id, dexhil(['fleet', 'work', '--broker', broker.url, '--group', 'lab', ...(id === 'rig-a' ? ['--rig', simRigFile(dir, id, { id })] : ['--rig-id', id]), '-o', path.join(dir, `worker-${id}`)])]));
  const coordinator = dexhil(['fleet', 'serve', '--broker', broker.url, '--group', 'lab', '--suite', suiteFile, '-o', path.join(dir, 'merged')]);
  const msgs = (): Record<string, unknown>[] => results.messages('results');
  try {
    // The victim: caught (frozen with SIGSTOP) between taking a trial and sending its result, then killed.
    const victim = 'rig-b';
    const w = workers.get(victim)!;
    let orphan: string | undefined;
    await until('a few results', () => msgs().filter((m) => m['type'] === 'result').length >= 4);
    let seen = 0;
    while (orphan === undefined) {
      await until(`${victim} taking a trial`, () => msgs().filter((m) => m['type'] === 'taken' && m['rig'] === victim).length > seen);
      const taken = msgs().filter((m) => m['type'] === 'taken' && m['rig'] === victim);
      seen = taken.length;
      const job = taken.at(-1)!['job'] as string;
      w.proc.kill('SIGSTOP');
      await sleep(300);
      if (msgs().some((m) => m['type'] === 'result' && m['job'] === job)) w.proc.kill('SIGCONT');
      else orphan = job;
    }
    w.proc.kill('SIGKILL');
    t.is(await coordinator.exit, 0, coordinator.err);
    const rows = readCsv(path.join(dir, 'merged', 'trials.csv'));
    const keys = rows.map((r) => `${r['scenario']}/${r['trial']}`).sort();
    const expected = [...['fold-fabric', 'zipper'].flatMap((s) => Array.from({ length: 8 }, (_, i) => `${s}/${i + 1}`)), ...Array.from({ length: 6 }, (_, i) => `toilet-paper/${i + 1}`)].sort();
    t.deepEqual(keys, expected, 'every trial of the suite exactly once');
    t.true(rows.every((r) => ids.includes(r['rig_id']!)), 'the rig id on every row');
    t.true(rows.every((r) => r['seed'] === '5'));
    // The killed worker's trial was run to the end by another rig.
    const [, scenario, trial] = orphan.split('/').slice(-3);
    const redone = rows.find((r) => r['scenario'] === scenario && r['trial'] === trial)!;
    t.not(redone['rig_id'], victim, `${orphan} was done by ${redone['rig_id']}`);
    t.regex(coordinator.err, new RegExp(`${scenario} trial ${trial} was lost with ${victim}; offering it again`));
    // Each row is the result its rig sent (a client that is not ours saw it on the broker).
    for (const r of rows) {
      const sent = msgs().find((m) => m['type'] === 'result' && (m['job'] as string).endsWith(`/${r['scenario']}/${r['trial']}`) && m['rig'] === r['rig_id']);
      t.is((sent?.['record'] as { outcome?: string } | undefined)?.outcome, r['outcome'], `${r['scenario']}/${r['trial']}`);
    }
    const steps = readCsv(path.join(dir, 'merged', 'steps.csv'));
    t.deepEqual([...new Set(steps.map((s) => `${s['scenario']}/${s['trial']}`))].sort(), expected, 'the stage attempts of every trial, once');
    const manifest = JSON.parse(readFileSync(path.join(dir, 'merged', 'manifest.json'), 'utf8'));
    t.is(manifest.status, 'complete');
    t.true(manifest.fleet.reoffered >= 1);
    t.is(Object.values(manifest.fleet.workers as Record<string, number>).reduce((a, b) => a + b, 0), expected.length);
    t.regex(readFileSync(path.join(dir, 'merged', 'junit.xml'), 'utf8'), /<testsuites/);
    // A survivor keeps its own run folder with the trials it ran.
    const a = readCsv(path.join(dir, 'worker-rig-a', 'trials.csv'));
    t.is(a.length, rows.filter((r) => r['rig_id'] === 'rig-a').length + a.filter((r) => r['outcome'] === 'aborted').length);
    t.regex(coordinator.out, /workers: .*rig-a \d+/);
  } finally {
    results.stop();
    for (const w of workers.values()) w.proc.kill('SIGTERM');
    await Promise.all([...workers.values()].map((w) => w.exit));
    coordinator.proc.kill('SIGTERM');
    await broker.stop();
  }
  // A stopped worker ends as `dexhil run` does on SIGTERM, with its run folder complete.
  t.is(await workers.get('rig-a')!.exit, 143, workers.get('rig-a')!.err);
  t.regex(workers.get('rig-a')!.out, /trials taken/);
});

mqttTest('fleet serve with no broker says so once, keeps trying, and on Ctrl-C writes what it has (nothing) and exits 130', async (t) => {
  const port = await freePort();
  const dir = tempDir('fleet-nobroker');
  const suiteFile = path.join(dir, 'suite.yaml');
  writeFileSync(suiteFile, 'suite: s\nscenarios: [zipper]\ntrials: 3\n');
  const c = dexhil(['fleet', 'serve', '--broker', `mqtt://127.0.0.1:${port}`, '--suite', suiteFile, '-o', path.join(dir, 'out')]);
  await until('the connection error', () => c.err.includes('ECONNREFUSED'), 20_000);
  await sleep(1500); // a few retries
  c.proc.kill('SIGINT');
  t.is(await c.exit, 130, c.err);
  t.is(c.err.match(/ECONNREFUSED/g)?.length, 1, c.err);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'out', 'manifest.json'), 'utf8'));
  t.is(manifest.status, 'aborted');
  t.is(manifest.fleet.outstanding.length, 3);
  t.is(readCsv(path.join(dir, 'out', 'trials.csv')).length, 0);
});

mqttTest('a late second result for a trial (a slow worker, not a dead one) is counted and ignored: the trial is written once', async (t) => {
  const broker = await startBroker();
  const dir = tempDir('fleet-dup');
  // Real records to send back: two zipper trials run here.
  const records: { record: unknown; attempts: unknown[]; corrections: unknown[] }[] = [];
  let cur = { attempts: [] as unknown[], corrections: [] as unknown[] };
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [findScenario('zipper')!], trials: 2, seed: 9, outDir: path.join(dir, 'source'), epochMs: 0, listeners: [(e) => {
    if (e.type === 'attempt-end') cur.attempts.push(e.record);
    if (e.type === 'correction') cur.corrections.push(e.record);
    if (e.type === 'trial-end') {
      records.push({ record: e.record, ...cur });
      cur = { attempts: [], corrections: [] };
    }
  }] });
  const suiteFile = path.join(dir, 'suite.yaml');
  writeFileSync(suiteFile, 'suite: dup\nseed: 9\ntrials: 2\nscenarios: [zipper]\n');
  const jobs = watch(broker, 'dexhil/fleet/t/jobs');
  await jobs.ready;
  const pub = (topic: string, body: Record<string, unknown>, retain = false): Promise<number | null> =>
    new Promise((resolve) => spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-m', JSON.stringify({ v: 1, rig: 'slowpoke', ...body }), '-q', '1', ...(retain ? ['-r'] : [])], { stdio: 'ignore' }).on('exit', resolve));
  const coordinator = dexhil(['fleet', 'serve', '--broker', broker.url, '--group', 't', '--suite', suiteFile, '-o', path.join(dir, 'merged')]);
  try {
    // A worker made by hand with mosquitto_pub: free, takes each job, answers the first one twice.
    await pub('dexhil/slowpoke/status', { type: 'status', state: 'idle', fleet: { group: 't', busy: false } }, true);
    const context = { rig_mode: 'arm=sim', firmware: 'arm=1.4.2', clock: 'virtual', worker_run: 'by-hand' };
    for (let n = 1; n <= 2; n++) {
      await until(`job ${n}`, () => jobs.messages('jobs').length >= n, 20_000);
      const job = jobs.messages('jobs')[n - 1]!;
      t.like(job, { v: 1, type: 'job', scenario: 'zipper', trial: n, seed: 9 });
      const base = { job: job['job'], fleet_run: job['fleet_run'] };
      await pub('dexhil/fleet/t/results', { type: 'taken', ...base });
      await pub('dexhil/fleet/t/results', { type: 'result', ...base, context, ...records[n - 1]! });
      if (n === 1) await pub('dexhil/fleet/t/results', { type: 'result', ...base, context, ...records[0]! });
    }
    t.is(await coordinator.exit, 0, coordinator.err);
    const rows = readCsv(path.join(dir, 'merged', 'trials.csv'));
    t.deepEqual(rows.map((r) => [r['trial'], r['rig_id'], r['rig_mode']]), [['1', 'slowpoke', 'arm=sim'], ['2', 'slowpoke', 'arm=sim']]);
    t.deepEqual(rows.map((r) => r['outcome']), readCsv(path.join(dir, 'source', 'trials.csv')).map((r) => r['outcome']));
    t.is(JSON.parse(readFileSync(path.join(dir, 'merged', 'manifest.json'), 'utf8')).fleet.duplicates_ignored, 1);
    t.regex(coordinator.out, /duplicate results ignored: 1/);
  } finally {
    jobs.stop();
    coordinator.proc.kill('SIGTERM');
    await broker.stop();
  }
});

mqttTest('a worker ignores a malformed job with a notice, stays idle, and stops on SIGTERM (exit 143)', async (t) => {
  const broker = await startBroker();
  const dir = tempDir('fleet-badjob');
  const w = dexhil(['fleet', 'work', '--broker', broker.url, '--rig-id', 'sim-x', '-o', dir]);
  try {
    await until('the worker to be idle', () => retained(broker, 'dexhil/sim-x/status')?.['state'] === 'idle', 30_000);
    await publish(broker, 'dexhil/fleet/dexhil/jobs', 'this is not a job');
    await publish(broker, 'dexhil/fleet/dexhil/jobs', JSON.stringify({ v: 1, type: 'job', job: 'x', scenario: 'zipper' }));
    await until('two notices', () => (w.err.match(/ignored a malformed job/g) ?? []).length === 2, 20_000);
    t.regex(w.err, /ignored a malformed job on dexhil\/fleet\/dexhil\/jobs: not JSON/);
    t.like(retained(broker, 'dexhil/sim-x/status'), { state: 'idle', fleet: { group: 'dexhil', busy: false } });
  } finally {
    w.proc.kill('SIGTERM');
    t.is(await w.exit, 143, w.err);
    await broker.stop();
  }
});

test('a suite file with a bad field or an unknown scenario is refused naming the file and the field', async (t) => {
  const dir = tempDir('fleet-suite');
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'suite: s\ntrials: -2\nscenarios: [zipper]\n');
  let r = await runCli(['fleet', 'serve', '--broker', 'mqtt://127.0.0.1:1', '--suite', bad]);
  t.is(r.code, 2);
  t.regex(r.err, new RegExp(`${bad.replace(/[.]/g, '\\.')}:2: suite file field 'trials'`));
  writeFileSync(bad, 'suite: s\nscenarios: [zipper, tie-shoes]\n');
  r = await runCli(['fleet', 'serve', '--broker', 'mqtt://127.0.0.1:1', '--suite', bad]);
  t.is(r.code, 2);
  t.regex(r.err, /suite file field 'scenarios\.1': no scenario named 'tie-shoes'/);
  r = await runCli(['fleet', 'work', '--broker', 'mqtt://127.0.0.1:1', '--group', 'a/b']);
  t.is(r.code, 2);
  t.regex(r.err, /--group a\/b: letters, digits/);
  r = await runCli(['fleet', 'serve', '--suite', bad]);
  t.is(r.code, 2);
  t.regex(r.err, /--broker/);
});
