/**
 * The harness against device emulators behind real pseudo-terminals (socat): the arm through an
 * emulated slcan adapter, the hand and F/T sensors over paced serial lines, all in wall time.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadRig } from '../harness/config.ts';
import { startEmulators } from '../harness/emulate.ts';
import { runPlan } from '../harness/run.ts';
import { findScenario } from '../scenarios/index.ts';
import { checkTraces, ptyRigFile, readCsv, runCli, tempDir } from './helpers.ts';

test('smoke and a toilet-paper trial pass over ptys; devices.csv says serial/slcan and real; traces hold what was counted', async (t) => {
  const { file } = ptyRigFile('pty-run');
  const loaded = loadRig(file);
  const emu = await startEmulators(loaded, { seed: 3 });
  try {
    const out = tempDir('pty-out');
    const r1 = await runPlan({ rigFile: file, scenarios: [findScenario('smoke')!], trials: 1, seed: 3, outDir: out, world: emu.world });
    t.is(r1.clockKind, 'real');
    const smoke = readCsv(`${out}/trials.csv`);
    t.is(smoke.length, 1);
    t.is(smoke[0]!['outcome'], 'pass', JSON.stringify(smoke[0]));
    t.regex(smoke[0]!['rig_mode']!, /arm=real;hand=real;wrist_ft=real;table_ft=real/);
    const devices = readCsv(`${out}/devices.csv`);
    t.deepEqual(devices.map((d) => `${d['device']}:${d['transport']}:${d['mode']}`), ['arm:slcan:real', 'hand:serial:real', 'wrist_ft:serial:real', 'table_ft:serial:real']);
    for (const d of devices) {
      t.true(Number(d['rx']) > 0, `${d['device']} received nothing`);
      t.is(d['crc_errors'], '0');
      t.is(d['seq_gaps'], '0');
    }
    // The wrist sensor streams at 50 Hz: the measured rate must be near it (wall time, so loose).
    const wrist = devices.find((d) => d['device'] === 'wrist_ft')!;
    t.true(Number(wrist['rx_rate_hz']) > 35 && Number(wrist['rx_rate_hz']) < 60, `wrist rate ${wrist['rx_rate_hz']}`);

    // Task trials over ptys run in wall time, so their outcome depends on timing as on a real rig:
    // of three, at least one must pass and none may be an error, timeout or abort.
    const out2 = tempDir('pty-out2');
    await runPlan({ rigFile: file, scenarios: [findScenario('toilet-paper')!], trials: 3, seed: 3, outDir: out2, world: emu.world });
    const trials = readCsv(`${out2}/trials.csv`);
    t.true(trials.some((x) => x['outcome'] === 'pass'), JSON.stringify(trials.map((x) => [x['outcome'], x['failure_label']])));
    t.true(trials.every((x) => x['outcome'] === 'pass' || x['outcome'] === 'fail'), JSON.stringify(trials.map((x) => [x['outcome'], x['failure_label']])));
    // A real clock traces by default: python-can reads the slcan arm's candump log frame for frame.
    checkTraces(t, out);
    checkTraces(t, out2);
  } finally {
    await emu.stop();
  }
});

test('errors injected by the emulators are counted in devices.csv: CRC errors and sequence gaps', async (t) => {
  const { file } = ptyRigFile('pty-faults');
  const loaded = loadRig(file);
  const emu = await startEmulators(loaded, { seed: 4 });
  try {
    const out = tempDir('pty-faults-out');
    // The table sensor gets a flaky cable while the arm sweeps and the hand grasps (it is sent no
    // request then), and a good one again before the tare stage asks it something.
    const table = emu.devices.find((d) => d.name === 'table_ft')!;
    await runPlan({ rigFile: file, scenarios: [findScenario('smoke')!], trials: 1, seed: 4, outDir: out, world: emu.world, listeners: [(e) => {
      if (e.type === 'stage-start') {
        const flaky = e.stage !== 'tare';
        table.faults.corrupt = flaky ? 0.15 : 0;
        table.faults.drop = flaky ? 0.15 : 0;
      }
    }] });
    t.is(readCsv(`${out}/trials.csv`)[0]!['outcome'], 'pass');
    const devices = readCsv(`${out}/devices.csv`);
    const tableRow = devices.find((d) => d['device'] === 'table_ft')!;
    t.true(Number(tableRow['crc_errors']) > 0, `table crc_errors ${tableRow['crc_errors']}`);
    // Every dropped or corrupted line leaves a gap in the sequence numbers of the good ones.
    t.true(Number(tableRow['seq_gaps']) >= Number(tableRow['crc_errors']), `table seq_gaps ${tableRow['seq_gaps']}`);
    t.is(devices.find((d) => d['device'] === 'wrist_ft')!['crc_errors'], '0');
    // The corrupted lines are in the table sensor's trace as they arrived.
    checkTraces(t, out);
  } finally {
    await emu.stop();
  }
});

test('run checks the links before the first trial: a sensor that cannot keep its rate stops the run (exit 3), with the traces kept', async (t) => {
  // 1000 samples/s of ~40-byte lines do not fit through 115,200 baud (about 300 do): the sensor falls behind.
  const { file } = ptyRigFile('pty-preflight', (c) => {
    c.devices['table_ft']!['streamHz'] = 1000;
  });
  const loaded = loadRig(file);
  const emu = await startEmulators(loaded, { seed: 6 });
  try {
    const out = tempDir('pty-preflight-out');
    const { code, err: printed } = await runCli(['run', '--rig', file, '-s', 'smoke', '-n', '1', '--out', out, '--preflight', '1']);
    t.is(code, 3, printed);
    t.regex(printed, /pre-flight check of rig \S+ failed, no trial was run: table_ft: rate \d+\.\d Hz, expected 1000 Hz/);
    t.false(/wrist_ft:|hand:|arm:/.test(printed.split('hint')[0]!), 'only the failing device is named');
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { status: string; preflight: { device: string; problems: string[] }[] };
    t.is(manifest.status, 'preflight-failed');
    t.deepEqual(manifest.preflight.filter((c) => c.problems.length > 0).map((c) => c.device), ['table_ft']);
    t.true(existsSync(path.join(out, 'traces/table_ft.serial.txt')));
    t.false(existsSync(path.join(out, 'trials.csv')) && readCsv(path.join(out, 'trials.csv')).length > 0);
  } finally {
    await emu.stop();
  }
});
