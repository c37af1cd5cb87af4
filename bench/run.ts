/**
 * `npm run bench`: how fast the simulated rig runs, measured with repetitions (machines here are
 * shared and noisy, so medians and ranges are reported, never a single timing).
 *
 *   1. End to end: `dexhil run` of the three task scenarios x TRIALS trials on fixtures/rigs/sim.yaml,
 *      REPS times, each a fresh process; simulated seconds covered / wall seconds of the run (as its
 *      summary says), wall milliseconds per simulated second, and the whole command's wall time.
 *   2. Where the time goes: wall ms per simulated second of an idle rig, device by device
 *      (arm holding, hand, wrist F/T, table F/T), and of the arm while it moves.
 *   3. Codecs: microseconds per arm frame encode/decode and per serial line encode/decode.
 *   4. Ingest (bench/ingest.ts): CAN frames/s and serial lines/s the host takes in, as a multiple
 *      of what the physical link carries.
 *   5. Safety (bench/safety.ts): reaction time from a breaching sample's arrival to the stop
 *      command's write, under full telemetry, over BENCH_BREACHES (default 2,000) breaches.
 *
 * The whole bench runs pinned to one core (taskset, when the machine has it), as ingest must be
 * measured; BENCH_PIN=0 runs it on every core instead (what `npm start` gets: a simulated run's
 * trial blocks then run on one thread per core, harness/blocks.ts). `npm run bench --
 * ingest codecs` runs only the named sections (e2e, devices, codecs, ingest, safety).
 * Environment: BENCH_TRIALS (default 100), BENCH_REPS (default 3), BENCH_PIN (default 1).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArmCodec, DEFAULT_KCD } from '../drivers/arm/codec.ts';
import { decodeLine, encodeLine } from '../drivers/line-codec.ts';
import { loadRig } from '../harness/config.ts';
import { createRig } from '../harness/rig.ts';
import { DEFAULT_RIG } from '../harness/run.ts';
import { quantile } from '../harness/stats.ts';
import { ingest } from './ingest.ts';
import { safetyReaction } from './safety.ts';

const SECTIONS = ['e2e', 'devices', 'codecs', 'ingest', 'safety'] as const;
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
if (unknown.length > 0) {
  console.error(`bench: unknown section ${unknown.join(', ')}; sections: ${SECTIONS.join(', ')}`);
  process.exit(2);
}
const run = (section: (typeof SECTIONS)[number]): boolean => wanted.length === 0 || wanted.includes(section);

// Pin to one core: re-run this script under `taskset -c 0` unless that is done already (or not wanted).
if (process.env['BENCH_PIN'] === '0') {
  console.log(`not pinned (BENCH_PIN=0): every core of this machine (${os.availableParallelism()}) may run the bench's threads\n`);
} else if (process.env['DEXHIL_BENCH_PINNED'] === undefined) {
  const pinned = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, DEXHIL_BENCH_PINNED: '1' } });
  if (pinned.error === undefined) process.exit(pinned.status ?? 1);
  console.log(`(taskset is not available: ${pinned.error.message}; running unpinned, on one JavaScript thread)`);
  process.env['DEXHIL_BENCH_PINNED'] = '0';
}
if (process.env['BENCH_PIN'] !== '0') console.log(process.env['DEXHIL_BENCH_PINNED'] === '1' ? 'pinned to CPU 0 (taskset -c 0)\n' : '');

const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 100);
const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const TASKS = ['fold-fabric', 'zipper', 'toilet-paper'];

function summary(values: number[], digits = 2): string {
  return `median ${quantile(values, 0.5).toFixed(digits)} (min ${Math.min(...values).toFixed(digits)}, max ${Math.max(...values).toFixed(digits)}, n=${values.length})`;
}

async function endToEnd(): Promise<void> {
  console.log(`1. dexhil run ${TASKS.join(',')} --trials ${TRIALS}, sim rig, ${REPS} repetitions, each a fresh process as a user runs it; trial blocks on up to ${os.availableParallelism()} thread(s) (one per 6 blocks, up to one per core it may use)`);
  spawnSync(process.execPath, ['bin/dexhil.js', 'list'], { stdio: 'ignore' }); // (re)builds the bundle, if a source changed
  const ratios: number[] = [];
  const walls: number[] = [];
  const commands: number[] = [];
  const msPerSimS: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const out = mkdtempSync(path.join(os.tmpdir(), 'dexhil-bench-'));
    try {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['bin/dexhil.js', 'run', '--scenario', TASKS.join(','), '--trials', String(TRIALS), '--seed', '1', '--out', path.join(out, 'run'), '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const command = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`dexhil run exited ${r.status}: ${r.stderr}`);
      const { sim_seconds: sim, wall_seconds: wall } = JSON.parse(r.stdout) as { sim_seconds: number; wall_seconds: number };
      ratios.push(sim / wall);
      walls.push(wall);
      commands.push(command);
      msPerSimS.push((1000 * wall) / sim);
      console.log(`   rep ${rep + 1}: ${sim.toFixed(1)} simulated s in ${wall.toFixed(2)} wall s (the whole command ${command.toFixed(2)} s)`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  console.log(`   wall s (the run):         ${summary(walls)}`);
  console.log(`   wall s (the command):     ${summary(commands)}`);
  console.log(`   simulated s / wall s:     ${summary(ratios, 0)}`);
  console.log(`   wall ms per simulated s:  ${summary(msPerSimS, 3)}`);
}

/** A rig file holding only the named devices of sim.yaml (same rates and links). */
function singleDeviceRig(dir: string, device: string): string {
  const loaded = loadRig(DEFAULT_RIG);
  const dev = loaded.config.devices[device];
  if (dev === undefined) throw new Error(`sim.yaml has no device ${device}`);
  const base = path.dirname(DEFAULT_RIG);
  const file = path.join(dir, `${device}.json`);
  const rig = { rig: { ...loaded.config.rig, id: `bench-${device.replace('_', '-')}`, profile: path.resolve(base, loaded.config.rig.profile), cell: path.resolve(base, loaded.config.rig.cell) }, devices: { [device]: dev } };
  writeFileSync(file, JSON.stringify(rig)); // JSON is YAML
  return file;
}

async function perDevice(): Promise<void> {
  const simS = 300;
  console.log(`2. wall ms per simulated second, ${simS} simulated s each, ${REPS} repetitions`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dexhil-bench-rigs-'));
  try {
    const files: [string, string][] = [['whole rig, idle', DEFAULT_RIG]];
    for (const d of ['arm', 'hand', 'wrist_ft', 'table_ft']) files.push([`${d} alone${d === 'arm' ? ' (holding)' : ''}`, singleDeviceRig(dir, d)]);
    for (const [label, file] of files) {
      const v: number[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const rig = await createRig(loadRig(file), { seed: 1, epochMs: 0 });
        const t0 = performance.now();
        await rig.clock.sleep(simS * 1000);
        v.push((performance.now() - t0) / simS);
        await rig.close();
      }
      console.log(`   ${label.padEnd(24)} ${summary(v, 3)}`);
    }
    const v: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const rig = await createRig(loadRig(singleDeviceRig(dir, 'arm')), { seed: 1, epochMs: 0 });
      const arm = rig.arm!;
      const home = arm.positionRad.slice();
      const t0 = performance.now();
      const s0 = rig.clock.nowMs();
      for (let i = 0; i < 40; i++) await arm.moveTo(home.map((q, j) => q + (i % 2 === 0 ? 0.5 : 0) * (j % 2 === 0 ? 1 : -1)), { toleranceRad: 0.01 });
      v.push((performance.now() - t0) / ((rig.clock.nowMs() - s0) / 1000));
      await rig.close();
    }
    console.log(`   ${'arm alone (moving)'.padEnd(24)} ${summary(v, 3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function codecs(): void {
  const n = 200_000;
  console.log(`3. codecs, microseconds per call, ${n} calls x ${REPS} repetitions`);
  const codec = new ArmCodec(DEFAULT_KCD);
  const time = (label: string, fn: (i: number) => void): void => {
    const v: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn(i);
      v.push(((performance.now() - t0) * 1000) / n);
    }
    console.log(`   ${label.padEnd(28)} ${summary(v, 3)}`);
  };
  // Distinct values every call, as a moving arm sends them (the decode memo does not help here).
  const frames = Array.from({ length: n }, (_, i) => codec.feedback({ joint: 1 + (i % 7), error: 0, positionRad: i * 1e-4 - 10, velocityRadS: 0.1, torqueNm: 0.5, tempMosC: 33, tempRotorC: 35 }));
  time('arm command encode', (i) => codec.command(1 + (i % 7), { positionRad: i * 1e-4 - 10, velocityRadS: 0, kp: 40, kd: 1, torqueFfNm: 0 }));
  time('arm feedback decode', (i) => codec.decode(frames[i]!));
  const fields = [123456, 1234, -5678, 91011, -1213, 1415, -1617, 310];
  const line = encodeLine('=', 77, fields).trimEnd();
  time('F/T line encode', (i) => encodeLine('=', i & 0xffff, fields));
  time('F/T line decode', () => decodeLine(line));
}

if (run('e2e')) await endToEnd();
if (run('devices')) await perDevice();
if (run('codecs')) codecs();
if (run('ingest')) await ingest(REPS);
if (run('safety')) await safetyReaction(Number(process.env['BENCH_BREACHES'] ?? 2000));
