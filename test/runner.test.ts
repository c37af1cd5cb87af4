import test from 'ava';
import type { CanFrame } from '../drivers/types.ts';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRig } from '../harness/config.ts';
import type { DexhilError } from '../harness/errors.ts';
import { EventBus, type HarnessEvent } from '../harness/events.ts';
import { DEFAULT_RIG } from '../harness/run.ts';
import { createRig } from '../harness/rig.ts';
import { Runner } from '../harness/runner.ts';
import type { ScenarioDef, StageDef } from '../harness/scenario.ts';

function scenarioWith(stages: StageDef[], extra: Partial<ScenarioDef> = {}): ScenarioDef {
  return { name: 'probe', version: '0.0.1', task: 'none', description: 'test', success: 'test', needs: ['arm'], trialTimeoutMs: 60_000, maxCorrections: { nudge: 2 }, stages, ...extra };
}

const stage = (name: string, run: StageDef['run'], more: Partial<StageDef> = {}): StageDef => ({ name, description: name, timeoutMs: 5000, maxAttempts: 1, retryKind: 'retry', run, ...more });

async function withRunner(fn: (runner: Runner, events: HarnessEvent[], rig: Awaited<ReturnType<typeof createRig>>) => Promise<void>): Promise<void> {
  const rig = await createRig(loadRig(DEFAULT_RIG), { seed: 3 });
  const bus = new EventBus();
  const events: HarnessEvent[] = [];
  bus.subscribe((e) => events.push(e));
  try {
    await fn(new Runner(rig, bus), events, rig);
  } finally {
    await rig.close();
  }
}

test('a stage that exceeds its timeout ends the trial as timeout and the arm holds where it is', async (t) => {
  await withRunner(async (runner, events, rig) => {
    const far = rig.home().map((v, j) => (j === 0 ? v + 3 : v));
    const s = scenarioWith([
      stage('slow-move', async (ctx) => {
        await ctx.rig.arm!.moveTo(far, { signal: ctx.signal, speedRadS: 0.2 });
      }, { timeoutMs: 2000 }),
    ]);
    const r = await runner.runTrial(s, 1, 1);
    t.is(r.outcome, 'timeout');
    t.is(r.failureLabel, 'slow-move-timeout');
    t.false(r.success);
    const q0 = rig.arm!.positionRad[0]!;
    await rig.clock.sleep(2000);
    t.true(Math.abs(rig.arm!.positionRad[0]! - q0) < 0.02, 'arm kept moving after the timeout');
    t.true(Math.abs(rig.arm!.positionRad[0]! - far[0]!) > 1);
    t.true(events.some((e) => e.type === 'attempt-end' && e.record.outcome === 'timeout'));
  });
});

test('a task failure is fail, retried attempts are regrasp corrections, errors are not failures', async (t) => {
  await withRunner(async (runner, events) => {
    let calls = 0;
    const s = scenarioWith([
      stage('flaky', async (ctx) => {
        calls++;
        if (ctx.attempt === 1) ctx.fail('missed');
      }, { maxAttempts: 2, retryKind: 'regrasp' }),
      stage('always-fails', async (ctx) => ctx.fail('not-done')),
    ]);
    const r = await runner.runTrial(s, 1, 1);
    t.is(calls, 2);
    t.is(r.outcome, 'fail');
    t.is(r.failureLabel, 'not-done');
    t.is(r.stagesReached, 1);
    t.is(r.rubricScore, 0.5);
    t.deepEqual(r.corrections, { regrasp: 1 });
    const c = events.find((e) => e.type === 'correction');
    t.true(c?.type === 'correction' && c.record.recovered && c.record.triggerCheck === 'missed');

    const boom = scenarioWith([stage('bug', async () => { throw new Error('driver exploded'); })]);
    const e = await runner.runTrial(boom, 2, 1);
    t.is(e.outcome, 'error');
    t.is(e.failureLabel, 'bug-harness-error');
  });
});

test('corrections are bounded per trial and recorded with trigger and recovery', async (t) => {
  await withRunner(async (runner, events) => {
    const s = scenarioWith([
      stage('nudge', async (ctx) => {
        for (let i = 0; i < 5; i++) await ctx.correct('nudge', { check: 'wrist.fz', value: 12.5, unit: 'N' }, async () => i === 1);
        ctx.measure('x', 1, 'N', { max: 2 });
      }),
    ]);
    const r = await runner.runTrial(s, 1, 1);
    t.is(r.outcome, 'pass');
    t.deepEqual(r.corrections, { nudge: 2 });
    const recs = events.flatMap((e) => (e.type === 'correction' ? [e.record] : []));
    t.deepEqual(recs.map((c) => c.recovered), [false, true]);
    t.is(recs[0]!.triggerValue, 12.5);
  });
});

test('rig config errors name the file, the line and the field', (t) => {
  const bad = path.resolve('test/fixtures/bad-rig.yaml');
  const err = t.throws(() => loadRig(bad));
  t.regex(err!.message, /bad-rig\.yaml:\d+: rig config field 'devices\.arm\.joints': /);
  const unknown = t.throws(() => loadRig(path.resolve('test/fixtures/unknown-field.yaml')));
  t.regex(unknown!.message, /unknown-field\.yaml:\d+: rig config field 'devices\.hand': unknown field 'bauds'/);
  const missing = t.throws(() => loadRig('/nonexistent/rig.yaml'));
  t.regex(missing!.message, /cannot read rig config \/nonexistent\/rig\.yaml: ENOENT/);
});

/** sim.yaml's text with its profile and cell paths made absolute, to write anywhere. */
function simRigText(): string {
  return readFileSync(DEFAULT_RIG, 'utf8').replace('../profiles/', `${path.resolve('fixtures/profiles')}/`).replace('../cell.yaml', path.resolve('fixtures/cell.yaml'));
}

test("an arm's CAN database is read with the rig: a missing KCD file or one without an arm bus is a config error naming the field", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-kcd-field-'));
  const file = path.join(dir, 'rig.yaml');
  const text = simRigText();
  const withKcd = (kcd: string): string => text.replace(/(\n  arm:\n)/, `$1    kcd: ${kcd}\n`);
  t.not(withKcd('x'), text);
  writeFileSync(path.join(dir, 'arm.kcd'), readFileSync(path.resolve('fixtures/can/arm.kcd'), 'utf8'));
  writeFileSync(file, withKcd('arm.kcd'));
  const loaded = loadRig(file);
  t.is(loaded.armBuses['arm']!.file, path.join(dir, 'arm.kcd'));
  t.true(loaded.armBuses['arm']!.messages.some((m) => m.name === 'Cmd_J1'));
  writeFileSync(file, withKcd('missing.kcd'));
  const missing = t.throws(() => loadRig(file));
  t.is((missing as DexhilError).code, 'CONFIG_INVALID');
  t.regex(missing!.message, /rig\.yaml: rig config field 'devices\.arm\.kcd': cannot read the CAN database .*missing\.kcd/);
  writeFileSync(path.join(dir, 'other.kcd'), readFileSync(path.resolve('fixtures/can/arm.kcd'), 'utf8').replace('<Bus name="arm"', '<Bus name="body"'));
  writeFileSync(file, withKcd('other.kcd'));
  t.regex(t.throws(() => loadRig(file))!.message, /devices\.arm\.kcd': cannot read the CAN database .*other\.kcd: .*no <Bus name="arm">/);
});

test('a rig file loaded again gives a fresh copy, and its new text once it changed', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-reload-'));
  const file = path.join(dir, 'rig.yaml');
  const text = simRigText();
  writeFileSync(file, text);
  for (let i = 0; i < 3; i++) {
    const loaded = loadRig(file);
    t.is(loaded.config.rig.id, 'sim-bench');
    t.is(loaded.config.devices['hand']!.kind, 'hand');
    loaded.config.rig.id = 'changed-by-the-caller';
    loaded.config.devices['hand']!.kind = 'ft';
  }
  writeFileSync(file, text.replace('id: sim-bench', 'id: edited-rig').replace('joints: 7', 'joints: 5'));
  const edited = loadRig(file);
  t.is(edited.config.rig.id, 'edited-rig');
  t.like(edited.config.devices['arm'], { joints: 5 });
  writeFileSync(file, text.replace('joints: 7', 'joints: 12'));
  t.throws(() => loadRig(file), { message: /rig config field 'devices\.arm\.joints'/ });
});

test('the arm commands a moving joint at controlHz, and joints standing still (settled, or the whole arm holding) at holdHz', async (t) => {
  // The arm's CAN traffic as the trace sink sees it: frames to the motors (ids 0x001-0x007) by joint.
  const sent = new Map<number, number>();
  const countCommands = (frame: CanFrame): void => {
    if (frame.id >= 1 && frame.id <= 7) sent.set(frame.id, (sent.get(frame.id) ?? 0) + 1);
  };
  const rig = await createRig(loadRig(DEFAULT_RIG), { seed: 3, traces: { start: () => undefined, can: (device) => (device === 'arm' ? countCommands : undefined), lines: () => undefined } });
  try {
    const arm = rig.arm!;
    const joints = arm.joints;
    // sim.yaml: controlHz 10, holdHz 2.
    const holdTx0 = arm.stats.tx;
    const holdRx0 = arm.stats.rx;
    await rig.clock.sleep(10_000);
    t.is(arm.stats.tx - holdTx0, 2 * 10 * joints, 'holding: one refresh of every joint every 500 ms');
    t.is(arm.stats.rx - holdRx0, 2 * 10 * joints, 'every refresh is answered with feedback');
    const far = rig.home().map((v, j) => (j === 1 ? v + 0.6 : v));
    sent.clear();
    const moveTx0 = arm.stats.tx;
    const moveRx0 = arm.stats.rx;
    const t0 = rig.clock.nowMs();
    const r = await arm.moveTo(far, { toleranceRad: 0.004 });
    t.true(r.reached);
    const periods = (rig.clock.nowMs() - t0) / 100;
    t.true(Math.abs((sent.get(2) ?? 0) - periods) <= 1, `the moving joint: ${sent.get(2)} commands in ${periods} control periods`);
    for (const j of [1, 3, 4, 5, 6, 7]) {
      const n = sent.get(j) ?? 0;
      t.true(n >= Math.floor(periods / 5) && n <= Math.ceil(periods / 5) + 1, `joint ${j} stood still: ${n} refreshes in ${periods} control periods`);
    }
    t.is(arm.stats.tx - moveTx0, [...sent.values()].reduce((a, b) => a + b, 0), 'every command the driver sent was seen on the bus');
    t.is(arm.stats.rx - moveRx0, arm.stats.tx - moveTx0, 'and answered with feedback');
  } finally {
    await rig.close();
  }
});

test('holdHz above controlHz is a config error naming the field', (t) => {
  const err = t.throws(() => loadRig(path.resolve('test/fixtures/bad-hold-rate.yaml')));
  t.regex(err!.message, /bad-hold-rate\.yaml:\d+: rig config field 'devices\.arm\.holdHz': holdHz must not exceed controlHz/);
});
