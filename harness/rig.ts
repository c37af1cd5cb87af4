/**
 * The rig: named devices plus the clock, built from a rig config by the rig factory. Simulated
 * versus real is decided here and in harness/rig-plan.ts, which resolves `auto` (DESIGN.md);
 * scenarios see the Rig, never a transport, and drivers never know whether a peer or hardware
 * answers them.
 */
import { ArmDriver } from '../drivers/arm/driver.ts';
import { FtDriver } from '../drivers/ft/driver.ts';
import { HandDriver } from '../drivers/hand/driver.ts';
import { POSTURES } from '../drivers/hand/model.ts';
import { Rng } from '../drivers/sim/rng.ts';
import { SimWorld, type ResetResult, type TaskName } from '../drivers/sim/world/index.ts';
import type { ByteStream } from '../drivers/transport/byte-stream.ts';
import type { CanChannel } from '../drivers/transport/can.ts';
import { openSerialPort } from '../drivers/transport/serial-port.ts';
import { CANABLE, LAWICEL } from '../drivers/transport/slcan-codec.ts';
import { SlcanChannel } from '../drivers/transport/slcan.ts';
import { createSimSerialPair } from '../drivers/transport/sim-serial.ts';
import { VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import { emptyStats, forceMagnitudeN, type CanTrace, type DeviceInfo, type LineTrace, type LinkStats, type RigMode, type TransportKind } from '../drivers/types.ts';
import { RealClock, VirtualClock, type Clock } from './clock.ts';
import type { DeviceConfig, LoadedRig } from './config.ts';
import { lacksIn, resolveRig, type DeviceNeed } from './rig-plan.ts';
import { armCodecOf, armPeerFor, homeOf, linePeerFor, type SimContext } from './sim-devices.ts';
import { DexhilError } from './errors.ts';

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
  /** What the factory decided that a user must know (e.g. an `auto` device fell back to sim). */
  readonly notices: readonly string[];
  /** Who puts the scene back before a trial: the rig by itself, or an operator who confirms it (rig.reset). */
  readonly resetBy: 'auto' | 'operator';
  /** The first F/T sensor on a mount. */
  sensor(mount: 'wrist' | 'table'): FtDriver | undefined;
  /** Clock time (ms) a device was last heard from; undefined before its first message or for no such device. */
  lastHeardMs(device: string): number | undefined;
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
  /** Times each device's link was reopened. */
  reconnects(): Record<string, number>;
  /**
   * Closes what is left of a device's link and opens it afresh (port, driver, identity, start).
   * @throws what opening throws (e.g. PORT_NOT_FOUND while unplugged); the caller retries.
   */
  reconnect(device: string): Promise<void>;
  /** Told after a device was reconnected (its driver object is a new one). */
  onReconnect(listener: (device: string) => void): () => void;
  /** Deactivates and closes every device in reverse start order; time-boxed; safe to call twice. */
  close(): Promise<void>;
}

interface Stoppable {
  name: string;
  stop: () => Promise<void> | void;
}

export interface CreateRigOptions {
  seed: number;
  /** Wall-clock epoch (ms) of virtual time 0, for a simulated rig (tests). */
  epochMs?: number;
  /**
   * The simulated scene behind emulated devices running in this process (tests): resets then set
   * it up as they do on the in-process simulated rig. Without it, a rig with only real devices
   * resets by its own routine (arm home, hand open, tare, check) and the scene is the operator's.
   */
  world?: SimWorld;
  /** Told about decisions a user must see on the terminal (e.g. `transport: auto` fell back to sim). */
  notice?: (text: string) => void;
  /** Raw-traffic traces of every device, from bring-up on. */
  traces?: TraceSink;
}

/**
 * Where raw traffic goes (reports/traces.ts writes it): told the rig's clock once it exists, then
 * asked for a tap per device; a sink that does not trace this run returns undefined.
 */
export interface TraceSink {
  start(clock: Clock): void;
  can(device: string, iface: string): CanTrace | undefined;
  lines(device: string): LineTrace | undefined;
}

/** Builds and starts a rig from a loaded config. A failed start tears down what was started. */
export async function createRig(loaded: LoadedRig, options: CreateRigOptions): Promise<Rig> {
  const { config, profile, cell } = loaded;
  const { transports: resolved, notices, simulatedOnly } = resolveRig(loaded);
  for (const n of notices) options.notice?.(n);
  // Hardware runs in wall time; a rig of simulated devices only runs on the virtual clock.
  const clock: Clock = !simulatedOnly ? new RealClock() : new VirtualClock(options.epochMs === undefined ? {} : { epochMs: options.epochMs });
  options.traces?.start(clock);
  const rng = new Rng(options.seed).fork('rig');
  const homeQ = homeOf(loaded);
  const armJoints = homeQ.length;
  const world = options.world ?? new SimWorld(cell.sites, profile.world, clock);
  // The scene is simulated when a simulated device lives in it or emulators share theirs with us.
  const simulatedScene = options.world !== undefined || Object.values(resolved).some((r) => r.transport === 'sim');
  const sim: SimContext = { clock, profile, world, rng };
  const origin = (name: string): string => `devices.${name}.port in ${loaded.file}`;

  const mode: RigMode = {};
  // Each device sits in a slot whose driver (and transport) can be replaced by a reconnect.
  interface Slot {
    name: string;
    dev: DeviceConfig;
    transport: TransportKind;
    info: DeviceInfo;
    driver: ArmDriver | HandDriver | FtDriver;
    /** What to stop, in start order, for this attachment. */
    stoppers: Stoppable[];
    /** Link counters of earlier attachments (before reconnects). */
    before: LinkStats;
    reconnects: number;
  }
  const slots: Slot[] = [];
  const reconnectListeners = new Set<(device: string) => void>();

  const stopAll = async (stoppers: Stoppable[]): Promise<void> => {
    for (const s of [...stoppers].reverse()) {
      try {
        await withTimeout(clock, Promise.resolve(s.stop()), 2000, `${s.name} stop`);
      } catch (err) {
        process.stderr.write(`dexhil: while stopping ${s.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  };
  const teardown = async (): Promise<void> => {
    for (const slot of [...slots].reverse()) await stopAll(slot.stoppers.splice(0));
    clock.close();
  };

  /** Opens a device's transport and driver, identifies and starts it. Stops what it started on failure. */
  const attach = async (name: string, dev: DeviceConfig, transport: TransportKind): Promise<Pick<Slot, 'info' | 'driver' | 'stoppers'>> => {
    const stoppers: Stoppable[] = [];
    const deviceMode: 'sim' | 'real' = transport === 'sim' ? 'sim' : 'real';
    try {
      if (dev.kind === 'arm') {
        const codec = armCodecOf(loaded, name);
        let channel: CanChannel;
        let onLinkClosed: ((listener: (reason: string) => void) => void) | undefined;
        if (transport === 'slcan') {
          const stream = await openSerialPort({ path: dev.port!, baud: dev.portBaud, clock, origin: origin(name) });
          const slcan = new SlcanChannel(stream, { bitrate: dev.bitrate, dialect: dev.slcanDialect === 'canable' ? CANABLE : LAWICEL, clock });
          stoppers.push({ name: `${name} (slcan adapter ${dev.port})`, stop: () => slcan.close() });
          onLinkClosed = (l) => void stream.onClose(l);
          await slcan.open();
          channel = slcan;
        } else if (transport === 'socketcan') {
          const { openSocketCan } = await import('../drivers/transport/socketcan.ts');
          const raw = openSocketCan(dev.iface!, clock);
          stoppers.push({ name: `${name} (SocketCAN ${dev.iface})`, stop: () => raw.stop() });
          channel = raw;
        } else {
          const bus = new VirtualCanBus(clock, { bitrate: dev.bitrate });
          const peer = armPeerFor(sim, name, dev, bus.channel(`${name}-motors`), codec, homeQ);
          stoppers.push({ name: `${name} (simulated motors)`, stop: () => peer.stop() });
          channel = bus.channel(name);
        }
        const trace = options.traces?.can(name, transport === 'socketcan' ? dev.iface! : name);
        const driver = new ArmDriver({ name, channel, codec, clock, trace, transport, mode: deviceMode, joints: dev.joints, controlHz: dev.controlHz, holdHz: dev.holdHz, maxVelocityRadS: dev.maxVelocityRadS, kp: dev.kp, kd: dev.kd, requestTimeoutMs: dev.requestTimeoutMs });
        onLinkClosed?.((reason) => driver.markLinkLost(`slcan adapter ${dev.port} closed (${reason})`));
        stoppers.push({ name, stop: () => driver.close() });
        const info = await driver.open();
        await driver.activate();
        return { info, driver, stoppers };
      }
      let hostEnd: ByteStream;
      if (transport !== 'sim') {
        hostEnd = await openSerialPort({ path: dev.port!, baud: dev.baud, clock, origin: origin(name) });
        const port = hostEnd;
        stoppers.push({ name: `${name} (serial port ${dev.port})`, stop: () => port.close() });
      } else {
        const [host, deviceEnd] = createSimSerialPair(name, clock, { baud: dev.baud, latencyMs: profile.link.serialLatencyMs });
        const peer = linePeerFor(sim, name, dev, deviceEnd);
        stoppers.push({ name: `${name} (simulated ${dev.kind === 'hand' ? 'hand' : 'sensor'})`, stop: () => peer.stop() });
        hostEnd = host;
      }
      const common = { name, stream: hostEnd, clock, trace: options.traces?.lines(name), transport, mode: deviceMode, streamHz: dev.streamHz, requestTimeoutMs: dev.requestTimeoutMs };
      if (dev.kind === 'hand') {
        const driver = new HandDriver(common);
        stoppers.push({ name, stop: async () => {
          await driver.deactivate().catch(() => undefined);
          await driver.close();
        } });
        const info = await driver.open();
        await driver.activate();
        return { info, driver, stoppers };
      }
      const driver = new FtDriver(common);
      stoppers.push({ name, stop: () => driver.close() });
      const info = await driver.open();
      await driver.tare(); // bring-up zero: nothing on the tool or the plate yet
      return { info, driver, stoppers };
    } catch (err) {
      await stopAll(stoppers);
      throw err;
    }
  };

  try {
    for (const [name, dev] of Object.entries(config.devices)) {
      const { transport } = resolved[name]!;
      mode[name] = transport === 'sim' ? 'sim' : 'real';
      // Slot first, so a failure while starting it still stops what it started.
      const a = await attach(name, dev, transport);
      slots.push({ name, dev, transport, ...a, before: emptyStats(), reconnects: 0 });
    }
  } catch (err) {
    await teardown();
    throw err;
  }

  const armSlot = (): ArmDriver | undefined => slots.find((x) => x.dev.kind === 'arm')?.driver as ArmDriver | undefined;
  const handSlot = (): HandDriver | undefined => slots.find((x) => x.dev.kind === 'hand')?.driver as HandDriver | undefined;
  const sensorList = (): SensorEntry[] => slots.flatMap((x) => (x.dev.kind === 'ft' ? [{ name: x.name, mount: x.dev.mount, driver: x.driver as FtDriver }] : []));
  const statsOf = (x: Slot): LinkStats => {
    const now = x.driver.stats;
    return { rx: x.before.rx + now.rx, tx: x.before.tx + now.tx, crcErrors: x.before.crcErrors + now.crcErrors, seqGaps: x.before.seqGaps + now.seqGaps, malformed: x.before.malformed + now.malformed, reboots: x.before.reboots + now.reboots };
  };

  const rig: Rig = {
    id: config.rig.id,
    clock,
    get arm() {
      return armSlot();
    },
    get hand() {
      return handSlot();
    },
    get sensors() {
      return sensorList();
    },
    get devices() {
      return slots.map((x) => x.info);
    },
    mode,
    notices,
    resetBy: config.rig.reset,
    // Scenarios read this on every check: find it without building the sensor list.
    sensor: (mount) => slots.find((x) => x.dev.kind === 'ft' && x.dev.mount === mount)?.driver as FtDriver | undefined,
    // The safety watchdog asks this for every device each time it looks: no list is built.
    lastHeardMs: (device) => slots.find((x) => x.name === device)?.driver.lastRxMs,
    lacks: (needs) => lacksIn(config, needs),
    site(name) {
      const s = cell.sites[name];
      if (s === undefined) throw new DexhilError('CONFIG_INVALID', `work cell has no site '${name}'`, { hint: `add sites.${name} to ${config.rig.cell}` });
      const q = s.slice(0, armJoints);
      while (q.length < armJoints) q.push(0);
      return q;
    },
    home: () => homeQ.slice(),
    async resetScene(task, icSeed, dynSeed, signal) {
      const arm = armSlot();
      const hand = handSlot();
      const sensors = sensorList();
      // After a safe stop the motors are disabled and the hand idle: bring them back first.
      if (arm && arm.state === 'inactive') await arm.activate(signal);
      if (hand && hand.state === 'inactive') await hand.activate(signal);
      if (hand) await hand.setPosture(POSTURES.open, 0.3, signal);
      if (arm) {
        const r = await arm.moveTo(homeQ, { toleranceRad: 0.01, timeoutMs: 15000, ...(signal ? { signal } : {}) });
        if (!r.reached) return { ok: false, reason: `arm did not reach home (${r.stoppedBy ?? 'unknown'})` };
      }
      if (simulatedScene) {
        const result = world.reset(task, icSeed, dynSeed);
        if (!result.ok) return result;
      }
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
      const arm = armSlot();
      const hand = handSlot();
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
    linkStats: () => Object.fromEntries(slots.map((x) => [x.name, statsOf(x)])),
    reconnects: () => Object.fromEntries(slots.map((x) => [x.name, x.reconnects])),
    async reconnect(name) {
      const slot = slots.find((x) => x.name === name);
      if (slot === undefined) throw new DexhilError('USAGE', `no device '${name}' in rig ${config.rig.id}`);
      // Whatever is left of the old link goes; its counters stay in the totals.
      await stopAll(slot.stoppers.splice(0));
      slot.before = statsOf(slot);
      const a = await attach(name, slot.dev, slot.transport);
      Object.assign(slot, a);
      slot.reconnects++;
      for (const l of reconnectListeners) l(name);
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    close: teardown,
  };
  return rig;
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
