/**
 * dexhil on MQTT against real brokers on loopback: mosquitto (started here on a free port,
 * watched and commanded with mosquitto_sub/mosquitto_pub, clients that are not ours) and the
 * in-process aedes broker. No mocked client.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Aedes } from 'aedes';
import type { HarnessEvent } from '../harness/events.ts';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';
import { readCsv, runCli, tempDir } from './helpers.ts';
import { freePort, haveMosquitto, publish, retained, startBroker, watch } from './mqtt-broker.ts';

const mqttTest = haveMosquitto || process.env['CI'] === 'true' ? test.serial : test.serial.skip;
const zipper = findScenario('zipper')!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

mqttTest('a run publishes status, run start/end, every trial, corrections and telemetry as versioned JSON; the final retained status says offline', async (t) => {
  const broker = await startBroker();
  try {
    const sub = watch(broker, 'dexhil/#');
    await sub.ready;
    const out = tempDir('mqtt-run');
    const notices: string[] = [];
    await runPlan({ rigFile: DEFAULT_RIG, scenarios: [zipper], trials: 6, seed: 2, outDir: out, epochMs: 0, mqtt: { url: broker.url, telemetryHz: 2 }, notice: (n) => notices.push(n) });
    await sleep(500);
    sub.stop();
    const rows = readCsv(path.join(out, 'trials.csv'));
    const trials = sub.messages('trial');
    t.deepEqual(trials.map((m) => [m['trial'], m['outcome'], m['failure_label']]), rows.map((r) => [Number(r['trial']), r['outcome'], r['failure_label']]));
    for (const m of [...trials, ...sub.messages('run'), ...sub.messages('status'), ...sub.messages('telemetry'), ...sub.messages('correction')]) t.is(m['v'], 1);
    t.is(sub.messages('correction').length, readCsv(path.join(out, 'corrections.csv')).length);
    const run = sub.messages('run');
    t.deepEqual(run.map((m) => m['event']), ['start', 'end']);
    t.is((run[1]!['mqtt'] as { dropped: number }).dropped, 0);
    const telemetry = sub.messages('telemetry');
    // 2 Hz of rig time: about twice the simulated seconds.
    const simS = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')).sim_seconds as number;
    t.true(Math.abs(telemetry.length - 2 * simS) <= 3, `${telemetry.length} telemetry messages for ${simS} s`);
    t.true(typeof (telemetry[0]!['values'] as Record<string, number>)['wrist_ft.force_n'] === 'number');
    const status = retained(broker, 'dexhil/sim-bench/status');
    t.like(status, { v: 1, type: 'status', state: 'offline', reason: 'the harness finished' });
    t.like(retained(broker, 'dexhil/sim-bench/run'), { event: 'end', status: 'complete' });
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    t.like(manifest.mqtt, { dropped: 0, url: broker.url });
    t.true(notices.some((n) => n.includes('operator commands are off')), notices.join('\n'));
  } finally {
    await broker.stop();
  }
});

mqttTest('SIGKILL of the harness: the broker publishes the retained offline status (the last will)', async (t) => {
  const broker = await startBroker();
  const child = spawn(process.execPath, ['bin/dexhil.js', 'run', '-s', 'zipper', '-n', '100000', '-o', tempDir('mqtt-kill'), '-q', '--mqtt', broker.url], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    // Wait until the rig says it is running.
    const deadline = Date.now() + 30_000;
    let status: Record<string, unknown> | undefined;
    while (Date.now() < deadline) {
      status = retained(broker, 'dexhil/sim-bench/status');
      if (status?.['state'] === 'running') break;
      await sleep(200);
    }
    t.like(status, { state: 'running' });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    let after: Record<string, unknown> | undefined;
    for (let i = 0; i < 25; i++) {
      after = retained(broker, 'dexhil/sim-bench/status');
      if (after?.['state'] === 'offline') break;
      await sleep(200);
    }
    t.like(after, { v: 1, type: 'status', state: 'offline', reason: 'connection lost (last will)' });
  } finally {
    child.kill('SIGKILL');
    await broker.stop();
  }
});

mqttTest('the broker stops mid-run: the run finishes, drops are counted, every trial row is on disk', async (t) => {
  const broker = await startBroker();
  const out = tempDir('mqtt-down');
  const notices: string[] = [];
  let ended = 0;
  const stopper = (e: HarnessEvent): void => {
    if (e.type === 'trial-end' && ++ended === 2) void broker.stop();
  };
  const r = await runPlan({ rigFile: DEFAULT_RIG, scenarios: [zipper], trials: 12, seed: 5, outDir: out, epochMs: 0, listeners: [stopper], mqtt: { url: broker.url, telemetryHz: 5 }, notice: (n) => notices.push(n) });
  t.false(r.aborted);
  t.is(readCsv(path.join(out, 'trials.csv')).length, 12);
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  t.is(manifest.status, 'complete');
  t.true(manifest.mqtt.dropped > 0, JSON.stringify(manifest.mqtt));
  t.true(notices.some((n) => /^MQTT: .*dropped/.test(n) && !n.includes(' 0 dropped')), notices.join('\n'));
});

mqttTest('no broker at all: the run goes on and says so once; bad MQTT options exit 2 naming the option', async (t) => {
  const port = await freePort(); // nothing listens there
  const out = tempDir('mqtt-none');
  const notices: string[] = [];
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [zipper], trials: 3, seed: 1, outDir: out, epochMs: 0, mqtt: { url: `mqtt://127.0.0.1:${port}` }, notice: (n) => notices.push(n) });
  t.is(readCsv(path.join(out, 'trials.csv')).length, 3);
  t.is(notices.filter((n) => n.includes('ECONNREFUSED')).length, 1, notices.join('\n'));
  const bad = await runCli(['run', '-n', '1', '-o', tempDir('mqtt-bad'), '--mqtt', 'not a url']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--mqtt not a url: not a URL/);
  const missing = await runCli(['run', '-n', '1', '-o', tempDir('mqtt-bad2'), '--mqtt', 'mqtt://127.0.0.1:1', '--mqtt-user', 'u', '--mqtt-password-file', '/nonexistent/pw']);
  t.is(missing.code, 2);
  t.regex(missing.err, /--mqtt-password-file \/nonexistent\/pw: no such file/);
  const orphan = await runCli(['run', '-n', '1', '--mqtt-user', 'u']);
  t.is(orphan.code, 2);
  t.regex(orphan.err, /--mqtt-user need --mqtt/);
});

mqttTest('operator commands over an authenticated connection: pause holds the next trial, malformed commands get a reply, resume, abort stops safely (exit 4)', async (t) => {
  const broker = await startBroker(true);
  try {
    const replies = watch(broker, 'dexhil/+/cmd/reply', 'operator');
    await replies.ready;
    // A client without credentials is refused by the broker: it cannot send commands.
    const anon = await publish(broker, 'dexhil/sim-bench/cmd', '{"v":1,"cmd":"abort"}');
    t.not(anon.status, 0, 'anonymous publish refused');
    // A wrong password: said once, and the run goes on without the broker.
    const wrong = path.join(tempDir('mqtt-wrong'), 'pw');
    writeFileSync(wrong, 'not-the-password\n');
    const notices: string[] = [];
    const outWrong = tempDir('mqtt-wrong-run');
    await runPlan({ rigFile: DEFAULT_RIG, scenarios: [zipper], trials: 2, seed: 1, outDir: outWrong, epochMs: 0, mqtt: { url: broker.url, user: 'rig', passwordFile: wrong }, notice: (n) => notices.push(n) });
    t.is(readCsv(path.join(outWrong, 'trials.csv')).length, 2);
    t.is(notices.filter((n) => n.includes('check --mqtt-user and --mqtt-password-file')).length, 1, notices.join('\n'));
    const out = tempDir('mqtt-cmd');
    const run = runCli(['run', '-s', 'zipper', '-n', '200', '-o', out, '-q', '--mqtt', broker.url, '--mqtt-user', 'rig', '--mqtt-password-file', broker.passwordFile('rig')]);
    let status: Record<string, unknown> | undefined;
    for (let i = 0; i < 150 && status?.['state'] !== 'running'; i++) {
      await sleep(100);
      status = retained(broker, 'dexhil/sim-bench/status', 'operator');
    }
    t.like(status, { state: 'running' });
    await publish(broker, 'dexhil/sim-bench/cmd', JSON.stringify({ v: 1, id: 'p1', cmd: 'pause', by: 'qa' }), 'operator');
    for (let i = 0; i < 100 && status?.['state'] !== 'paused'; i++) {
      await sleep(100);
      status = retained(broker, 'dexhil/sim-bench/status', 'operator');
    }
    t.like(status, { state: 'paused' });
    // While paused, no trial ends (once the one in progress when the pause came has).
    await sleep(700);
    const before = readCsv(path.join(out, 'trials.csv')).length;
    await sleep(1500);
    t.is(readCsv(path.join(out, 'trials.csv')).length, before, 'no trial ran while paused');
    await publish(broker, 'dexhil/sim-bench/cmd', 'pause please', 'operator');
    await publish(broker, 'dexhil/sim-bench/cmd', JSON.stringify({ v: 1, id: 'x9', cmd: 'explode' }), 'operator');
    await publish(broker, 'dexhil/sim-bench/cmd', JSON.stringify({ v: 1, id: 'r1', cmd: 'resume' }), 'operator');
    for (let i = 0; i < 100 && readCsv(path.join(out, 'trials.csv')).length <= before; i++) await sleep(100);
    t.true(readCsv(path.join(out, 'trials.csv')).length > before, 'trials run again after resume');
    await publish(broker, 'dexhil/sim-bench/cmd', JSON.stringify({ v: 1, id: 'a1', cmd: 'abort', by: 'qa' }), 'operator');
    const result = await run;
    t.is(result.code, 4, result.err);
    t.regex(result.err, /abort by mqtt:qa/);
    await sleep(300);
    replies.stop();
    const got = replies.messages('reply');
    t.like(got.find((m) => m['id'] === 'p1'), { ok: true, cmd: 'pause' });
    t.like(got.find((m) => m['id'] === null && m['ok'] === false), { v: 1 });
    t.regex(String(got.find((m) => m['id'] === null)?.['error']), /not JSON/);
    t.like(got.find((m) => m['id'] === 'x9'), { ok: false });
    t.regex(String(got.find((m) => m['id'] === 'x9')?.['error']), /cmd/);
    t.like(got.find((m) => m['id'] === 'r1'), { ok: true, cmd: 'resume' });
    t.like(got.find((m) => m['id'] === 'a1'), { ok: true, cmd: 'abort' });
    const rows = readCsv(path.join(out, 'trials.csv'));
    t.true(rows.length < 200);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    t.is(manifest.status, 'aborted');
    t.like(manifest.mqtt, { commands: 5, rejected: 2 });
  } finally {
    await broker.stop();
  }
});

test.serial('the in-process aedes broker serves too: every trial arrives', async (t) => {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle as (s: net.Socket) => void);
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const seen: string[] = [];
  broker.on('publish', (packet, client) => {
    if (client && packet.topic === 'dexhil/sim-bench/trial') seen.push(packet.payload.toString());
  });
  try {
    const out = tempDir('mqtt-aedes');
    await runPlan({ rigFile: DEFAULT_RIG, scenarios: [zipper], trials: 4, seed: 9, outDir: out, epochMs: 0, mqtt: { url: `mqtt://127.0.0.1:${port}` } });
    const rows = readCsv(path.join(out, 'trials.csv'));
    t.deepEqual(seen.map((s) => (JSON.parse(s) as { trial: number }).trial), rows.map((r) => Number(r['trial'])));
  } finally {
    await new Promise<void>((r) => broker.close(() => r()));
    server.close();
  }
});
