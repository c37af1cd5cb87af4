/**
 * Questions for an operator: scene resets (`rig.reset: operator`) and verdicts (`--judge operator`),
 * answered over MQTT (mosquitto, with mosquitto_pub as the operator's client) and on a real
 * terminal (the CLI under a pseudo-terminal made by util-linux `script`).
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NONDETERMINISTIC_COLUMNS } from '../reports/columns.ts';
import { readCsv, runCli, simRigFile, tempDir } from './helpers.ts';
import { haveMosquitto, publish, retained, startBroker, watch, type Broker } from './mqtt-broker.ts';

const mqttTest = haveMosquitto || process.env['CI'] === 'true' ? test.serial : test.serial.skip;
const haveScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const stable = (rows: Record<string, string>[]): Record<string, string>[] => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !NONDETERMINISTIC_COLUMNS.has(k))));

/** Answers each prompt as it appears, with `answer(prompt)` (a command body), as the operator user. */
function operatorBot(broker: Broker, answer: (prompt: Record<string, unknown>) => Record<string, unknown> | Record<string, unknown>[]): { prompts: Record<string, unknown>[]; stop: () => void } {
  const sub = watch(broker, 'dexhil/+/prompt', 'operator');
  const prompts: Record<string, unknown>[] = [];
  let seen = 0;
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await sleep(20);
      for (; seen < sub.lines.length; seen++) {
        const line = sub.lines[seen]!;
        const payload = line.slice(line.indexOf(' ') + 1);
        if (!line.includes(' ') || payload === '' || payload === '(null)') continue; // the empty retained message that clears a prompt
        const p = JSON.parse(payload) as Record<string, unknown>;
        prompts.push(p);
        const a = answer(p);
        for (const [i, body] of (Array.isArray(a) ? a : [a]).entries()) await publish(broker, `dexhil/${String(p['rig'])}/cmd`, JSON.stringify({ v: 1, id: `q${prompts.length}.${i}`, by: 'qa', ...body }), 'operator');
      }
    }
  })();
  return {
    prompts,
    stop: () => {
      stopped = true;
      sub.stop();
    },
  };
}

mqttTest('--judge operator over MQTT: a verdict is asked only when every stage is done; a fail verdict fails the trial with the operator label; the simulated world stands still while it waits', async (t) => {
  const broker = await startBroker(true);
  const replies = watch(broker, 'dexhil/+/cmd/reply', 'operator');
  await replies.ready;
  const mqtt = ['--mqtt', broker.url, '--mqtt-user', 'rig', '--mqtt-password-file', broker.passwordFile('rig')];
  let bot: ReturnType<typeof operatorBot> | undefined;
  try {
    const plain = tempDir('judge-sensors');
    const r0 = await runCli(['run', '-s', 'zipper', '-n', '8', '--seed', '4', '-o', plain, '-q', ...mqtt]);
    t.is(r0.code, 0, r0.err);
    // The operator fails trial 3, first sending a verdict without `pass` and one naming another
    // trial (both refused), and passes the rest.
    bot = operatorBot(broker, (p) =>
      p['trial'] === 3
        ? [{ cmd: 'verdict', label: 'no pass field' }, { cmd: 'verdict', pass: true, trial: 99 }, { cmd: 'verdict', pass: false, label: 'Teeth gap at the top', trial: 3 }]
        : { cmd: 'verdict', pass: true, trial: p['trial'] },
    );
    await sleep(300);
    const judged = tempDir('judge-operator');
    const r1 = await runCli(['run', '-s', 'zipper', '-n', '8', '--seed', '4', '-o', judged, '-q', '--judge', 'operator', ...mqtt]);
    t.is(r1.code, 0, r1.err);
    const sensors = readCsv(path.join(plain, 'trials.csv'));
    const operator = readCsv(path.join(judged, 'trials.csv'));
    const done = sensors.filter((r) => r['outcome'] === 'pass').map((r) => Number(r['trial']));
    t.true(done.includes(3), 'seed 4: zipper trial 3 passes on the sensors (the case this test needs)');
    t.deepEqual(bot.prompts.map((p) => p['trial']), done, 'asked exactly for the trials whose stages were all done');
    t.like(bot.prompts[0], { v: 1, type: 'prompt', kind: 'verdict', scenario: 'zipper', answer_on: 'dexhil/sim-bench/cmd' });
    const three = operator.find((r) => r['trial'] === '3')!;
    t.like(three, { outcome: 'fail', success: '0', failure_label: 'operator:teeth-gap-at-the-top', fault_domain: 'task' });
    // Up to and including trial 3, the run is the sensors-judged run but for that verdict: waiting
    // for the answers moved no simulated time. (A failed trial ends with the rig held, so the
    // trials after it run differently.)
    const upTo3 = (rows: Record<string, string>[]) => stable(rows).filter((r) => Number(r['trial']) <= 3).map((r) => (r['trial'] === '3' && 'outcome' in r ? { ...r, outcome: '', success: '', failure_label: '', fault_domain: '', first_attempt_success: '' } : r));
    t.true(done.filter((x) => x < 3).length >= 1, 'a verdict was waited for before trial 3');
    t.deepEqual(upTo3(operator), upTo3(sensors));
    t.deepEqual(upTo3(readCsv(path.join(judged, 'steps.csv'))), upTo3(readCsv(path.join(plain, 'steps.csv'))));
    await sleep(300);
    const got = replies.messages('reply');
    const three3 = bot.prompts.findIndex((p) => p['trial'] === 3) + 1;
    t.regex(String(got.find((m) => m['id'] === `q${three3}.0`)?.['error']), /a verdict needs "pass"/);
    t.regex(String(got.find((m) => m['id'] === `q${three3}.1`)?.['error']), /the question is about trial 3, not 99/);
    t.like(got.find((m) => m['id'] === `q${three3}.2`), { ok: true, detail: 'verdict: fail (operator:teeth-gap-at-the-top)' });
    t.is(got.filter((m) => m['ok'] === true).length, bot.prompts.length, 'one accepted answer per question');
    t.is(retained(broker, 'dexhil/sim-bench/prompt', 'operator'), undefined, 'no prompt left once answered');
  } finally {
    bot?.stop();
    replies.stop();
    await broker.stop();
  }
});

mqttTest('rig.reset: operator over MQTT: each trial waits for reset-done; a skipped reset makes that trial an error (reset-failed), not a failure', async (t) => {
  const broker = await startBroker(true);
  const dir = tempDir('reset-operator');
  const bot = operatorBot(broker, (p) => (p['trial'] === 2 ? { cmd: 'reset-done', skip: true, trial: 2 } : { cmd: 'reset-done' }));
  try {
    await sleep(300);
    const r = await runCli(['run', '--rig', simRigFile(dir, 'operator-reset', { reset: 'operator' }), '-s', 'fold-fabric', '-n', '3', '-o', path.join(dir, 'run'), '-q', '--mqtt', broker.url, '--mqtt-user', 'rig', '--mqtt-password-file', broker.passwordFile('rig')]);
    t.is(r.code, 0, r.err);
    t.deepEqual(bot.prompts.map((p) => [p['kind'], p['trial']]), [['reset', 1], ['reset', 2], ['reset', 3]]);
    t.regex(String(bot.prompts[0]!['question']), /Reset the fabric scene for fold-fabric trial 1 \(initial condition [0-9a-f]{8}\)/);
    const rows = readCsv(path.join(dir, 'run', 'trials.csv'));
    t.like(rows[1], { trial: '2', outcome: 'error', failure_label: 'reset-failed', fault_domain: 'rig' });
    t.true(rows[0]!['outcome'] !== 'error' && rows[2]!['outcome'] !== 'error', JSON.stringify(rows.map((x) => x['outcome'])));
  } finally {
    bot.stop();
    await broker.stop();
  }
});

test('operator questions with nowhere to ask them (no terminal, no MQTT) stop the run before any device opens', async (t) => {
  const dir = tempDir('judge-nowhere');
  let r = await runCli(['run', '-s', 'zipper', '-n', '2', '-o', path.join(dir, 'a'), '--judge', 'operator']);
  t.is(r.code, 2);
  t.regex(r.err, /zipper is judged by an operator, but there is no terminal \(stdin is not one\) and no MQTT command topic/);
  r = await runCli(['run', '--rig', simRigFile(dir, 'operator-reset', { reset: 'operator' }), '-s', 'zipper', '-n', '2', '-o', path.join(dir, 'b')]);
  t.is(r.code, 2);
  t.regex(r.err, /has rig\.reset: operator, but there is no terminal/);
  t.false(existsSync(path.join(dir, 'b', 'manifest.json')), 'stopped before the run folder got a manifest');
});

(haveScript ? test : test.skip)('on a terminal: the verdict prompt takes pass and fail <words>, asks again on anything else, and the answers become the outcomes', async (t) => {
  const dir = tempDir('judge-terminal');
  const cmd = `${process.execPath} bin/dexhil.js run -s zipper -n 6 --seed 4 -o ${dir} -q --judge operator`;
  // `script` runs the CLI on a new pseudo-terminal and relays our pipe to it as typed input.
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const answers: string[] = [];
  let asked = 0;
  let finished = false;
  void exit.then(() => (finished = true));
  const deadline = Date.now() + 60_000;
  while (!finished && Date.now() < deadline) {
    await sleep(20);
    const prompts = screen.split('Verdict? pass, or fail <what is wrong>: ').length - 1;
    if (prompts > asked) {
      asked = prompts;
      const answer = asked === 1 ? 'maybe' : asked === 2 ? 'fail slider jammed' : 'pass';
      answers.push(answer);
      child.stdin.write(`${answer}\n`);
    }
  }
  t.is(await exit, 0, screen);
  t.regex(screen, /'maybe'\? zipper trial \d+/, 'an unknown answer is asked again');
  const rows = readCsv(path.join(dir, 'trials.csv'));
  const failed = rows.filter((r) => r['failure_label'] === 'operator:slider-jammed');
  t.is(failed.length, 1, screen);
  t.is(failed[0]!['outcome'], 'fail');
  t.true(answers.length >= 3, answers.join(','));
});
