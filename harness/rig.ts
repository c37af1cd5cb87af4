/**
 * The rig: named devices plus the clock, built from a rig config by the rig factory. This is the
 * one place that decides simulated versus real (DESIGN.md); scenarios see the Rig, never a
 * transport, and drivers never know whether a peer or hardware answers them.
 */
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { ArmCodec, DEFAULT_KCD } from '../drivers/arm/codec.ts';
import { ArmDriver } from '../drivers/arm/driver.ts';
import { FtDriver } from '../drivers/ft/driver.ts';
import { HandDriver } from '../drivers/hand/driver.ts';
import { POSTURES } from '../drivers/hand/model.ts';
import { ArmPeer } from '../drivers/sim/arm-peer.ts';
import { FtPeer } from '../drivers/sim/ft-peer.ts';
import { HandPeer } from '../drivers/sim/hand-peer.ts';
import { Rng } from '../drivers/sim/rng.ts';
import { SimWorld, type ResetResult, type TaskName } from '../drivers/sim/world/index.ts';
import { createSimSerialPair } from '../drivers/transport/sim-serial.ts';
import { VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import { forceMagnitudeN, type DeviceInfo, type LinkStats, type RigMode } from '../drivers/types.ts';
import { VirtualClock, type Clock } from './clock.ts';
import type { LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';

export type DeviceNeed = 'arm' | 'hand' | 'wrist_ft' | 'table_ft';

export interface SensorEntry {
  name: string;
  mount: 'wrist' | 'table';
  driver: FtDriver;
}

export interface Rig {
  readonly id: string;
  readonly clock: Clock;
  readonly arm: ArmDriver | undefined;
  readonly hand: HandDriver | undefined;
  readonly sensors: readonly SensorEntry[];
  readonly devices: readonly DeviceInfo[];
  readonly mode: RigMode;
  /** The first F/T sensor on a mount. */
  sensor(mount: 'wrist' | 'table'): FtDriver | undefined;
  /** Whether the rig has what a scenario needs; the reason when it does not. */
  lacks(needs: readonly DeviceNeed[]): string | undefined;
  /** A work-cell site as an arm target (one value per configured joint). */
  site(name: string): number[];
  home(): number[];
  /** Sets up the scene for a trial and checks it: arm home, hand open, sensors tared and quiet. */
  resetScene(task: TaskName, icSeed: number, dynSeed: number, signal?: AbortSignal): Promise<ResetResult>;
  /** Stops all motion where it is (hold). Never throws; returns what failed. */
  holdAll(): Promise<string[]>;
  linkStats(): Record<string, LinkStats>;
  /** Deactivates and closes every device in reverse start order; time-boxed; safe to call twice. */
  close(): Promise<void>;
}

interface Stoppable {
  name: string;
  stop: () => Promise<void> | void;
}

/** Builds and starts a rig from a loaded config. A failed start tears down what was started. */
export async function createRig(loaded: LoadedRig, options: { seed: number; epochMs?: number }): Promise<Rig> {
  const { config, profile, cell } = loaded;
  // Every device here is simulated, so time is virtual. Real transports will bring a RealClock.
  const clock = new VirtualClock(options.epochMs === undefined ? {} : { epochMs: options.epochMs });
  const rng = new Rng(options.seed).fork('rig');
  const armEntry = Object.entries(config.devices).find(([, d]) => d.kind === 'arm');
  const armJoints = armEntry?.[1].kind === 'arm' ? armEntry[1].joints : 7;
  const homeQ = cell.home.slice(0, armJoints);
  while (homeQ.length < armJoints) homeQ.push(0);
  const world = new SimWorld(cell.sites, profile.world, () => clock.nowMs());

  const started: Stoppable[] = [];
  const devices: DeviceInfo[] = [];
  const mode: RigMode = {};
  let arm: ArmDriver | undefined;
  let hand: HandDriver | undefined;
  const sensors: SensorEntry[] = [];
  const stats: Record<string, () => LinkStats> = {};

  const teardown = async (): Promise<void> => {
    for (const s of [...started].reverse()) {
      try {
        await withTimeout(clock, Promise.resolve(s.stop()), 2000, `${s.name} stop`);
      } catch (err) {
        process.stderr.write(`dexhil: while stopping ${s.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    started.length = 0;
    clock.close();
  };

  try {
    for (const [name, dev] of Object.entries(config.devices)) {
      mode[name] = 'sim';
      if (dev.kind === 'arm') {
        const kcd = dev.kcd === undefined ? DEFAULT_KCD : path.resolve(path.dirname(loaded.file), dev.kcd);
        const codec = new ArmCodec(kcd);
        const bus = new VirtualCanBus(clock, { bitrate: dev.bitrate });
        const peer = new ArmPeer(
          bus.channel(`${name}-motors`),
          codec,
          clock,
          { joints: dev.joints, model: profile.arm.modelCode, firmware: profile.arm.firmware, protocol: profile.arm.protocol, serialBase: 0x4100, tauMs: profile.arm.tauMs },
          profile.arm.faults,
          rng.fork(name),
          world,
          homeQ,
        );
        started.push({ name: `${name} (simulated motors)`, stop: () => peer.stop() });
        const driver = new ArmDriver({ name, channel: bus.channel(name), codec, clock, transport: 'sim', mode: 'sim', joints: dev.joints, controlHz: dev.controlHz, holdHz: dev.holdHz, maxVelocityRadS: dev.maxVelocityRadS, kp: dev.kp, kd: dev.kd, requestTimeoutMs: dev.requestTimeoutMs });
        started.push({ name, stop: () => driver.close() });
        devices.push(await driver.open());
        await driver.activate();
        arm = driver;
        stats[name] = () => driver.stats;
      } else {
        const [hostEnd, deviceEnd] = createSimSerialPair(name, clock, { baud: dev.baud, latencyMs: profile.link.serialLatencyMs });
        const prof = dev.kind === 'hand' ? profile.hand : profile.ft;
        const identity = { model: prof.model, firmware: prof.firmware, protocol: prof.protocol, serial: `${prof.serialPrefix}-${name.toUpperCase()}-${(rng.fork(`${name}/serial`).float() * 1e5).toFixed(0).padStart(5, '0')}` };
        if (dev.kind === 'hand') {
          const peer = new HandPeer(deviceEnd, clock, identity, profile.hand.faults, rng.fork(name), world, profile.hand.speedRadS);
          started.push({ name: `${name} (simulated hand)`, stop: () => peer.stop() });
          const driver = new HandDriver({ name, stream: hostEnd, clock, transport: 'sim', mode: 'sim', streamHz: dev.streamHz, requestTimeoutMs: dev.requestTimeoutMs });
          started.push({ name, stop: async () => {
            await driver.deactivate().catch(() => undefined);
            await driver.close();
          } });
          devices.push(await driver.open());
          await driver.activate();
          hand = driver;
          stats[name] = () => driver.stats;
        } else {
          const peer = new FtPeer(deviceEnd, clock, identity, profile.ft.faults, rng.fork(name), world, dev.mount, profile.ft.noiseN);
          started.push({ name: `${name} (simulated sensor)`, stop: () => peer.stop() });
          const driver = new FtDriver({ name, stream: hostEnd, clock, transport: 'sim', mode: 'sim', streamHz: dev.streamHz, requestTimeoutMs: dev.requestTimeoutMs });
          started.push({ name, stop: () => driver.close() });
          devices.push(await driver.open());
          await driver.tare(); // bring-up zero: nothing on the tool or the plate yet
          sensors.push({ name, mount: dev.mount, driver });
          stats[name] = () => driver.stats;
        }
      }
    }
  } catch (err) {
    await teardown();
    throw err;
  }

  const rig: Rig = {
    id: config.rig.id,
    clock,
    arm,
    hand,
    sensors,
    devices,
    mode,
    sensor: (mount) => sensors.find((s) => s.mount === mount)?.driver,
    lacks(needs) {
      const missing = needs.filter((n) => (n === 'arm' ? !arm : n === 'hand' ? !hand : n === 'wrist_ft' ? !rig.sensor('wrist') : !rig.sensor('table')));
      if (missing.length > 0) return `rig ${config.rig.id} has no ${missing.join(', ')}`;
      if (needs.includes('arm') && arm !== undefined && arm.joints < 6) return `needs an arm with at least 6 joints, ${config.rig.id} has ${arm.joints}`;
      return undefined;
    },
    site(name) {
      const s = cell.sites[name];
      if (s === undefined) throw new DexhilError('CONFIG_INVALID', `work cell has no site '${name}'`, { hint: `add sites.${name} to ${config.rig.cell}` });
      const q = s.slice(0, armJoints);
      while (q.length < armJoints) q.push(0);
      return q;
    },
    home: () => homeQ.slice(),
    async resetScene(task, icSeed, dynSeed, signal) {
      if (config.rig.reset === 'operator') {
        const ok = await operatorConfirm(`Reset the ${task} scene (initial condition ${icSeed.toString(16)}), then press Enter (or type 'skip'): `);
        if (!ok) return { ok: false, reason: 'operator skipped the reset' };
      }
      if (hand) await hand.setPosture(POSTURES.open, 0.3, signal);
      if (arm) {
        const r = await arm.moveTo(homeQ, { toleranceRad: 0.01, timeoutMs: 15000, ...(signal ? { signal } : {}) });
        if (!r.reached) return { ok: false, reason: `arm did not reach home (${r.stoppedBy ?? 'unknown'})` };
      }
      const result = world.reset(task, icSeed, dynSeed);
      if (!result.ok) return result;
      // Tool-mounted sensors are tared unloaded before every trial; a table sensor keeps the
      // empty-plate zero it got at bring-up, since the scene's load on it is what it measures.
      const tool = sensors.filter((s) => s.mount === 'wrist');
      await clock.sleep(100, signal);
      for (const s of tool) await s.driver.tare(signal);
      await clock.sleep(100, signal);
      for (const s of tool) {
        const f = s.driver.latest;
        if (f === undefined) return { ok: false, reason: `${s.name} sent no sample during the reset check` };
        const forceN = forceMagnitudeN(f);
        if (forceN > 2) return { ok: false, reason: `${s.name} reads ${forceN.toFixed(1)} N after tare: something touches the tool` };
      }
      return { ok: true };
    },
    async holdAll() {
      const failed: string[] = [];
      try {
        arm?.hold();
      } catch (err) {
        failed.push(`${arm?.name}: ${String(err)}`);
      }
      if (hand) {
        try {
          await withTimeout(clock, hand.hold(), 1000, `${hand.name} hold`);
        } catch (err) {
          failed.push(`${hand.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      return failed;
    },
    linkStats: () => Object.fromEntries(Object.entries(stats).map(([k, f]) => [k, { ...f() }])),
    close: teardown,
  };
  return rig;
}

async function operatorConfirm(prompt: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new DexhilError('RESET_FAILED', 'the rig config asks for an operator reset (rig.reset: operator) but there is no terminal to ask on', {
      hint: 'run interactively, or set rig.reset: auto when the rig resets itself',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await rl.question(prompt)).trim().toLowerCase() !== 'skip';
  } finally {
    rl.close();
  }
}

function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = clock.setTimer(ms, () => reject(new DexhilError('TIMEOUT', `${what} did not finish within ${ms} ms`)));
    p.then(
      (v) => {
        t.cancel();
        resolve(v);
      },
      (e: unknown) => {
        t.cancel();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
