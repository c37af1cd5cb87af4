/**
 * Device emulators on pseudo-terminals: for every device of a rig config that names a port, a
 * socat pty pair whose host end appears at that port path, and the simulated device (the same
 * peer as on the in-process simulated rig) on the other end, paced to the link's baud rate.
 * The arm's motors sit on a virtual CAN bus behind an emulated slcan adapter. Anything that opens
 * the port paths (the harness, python-can, a serial terminal) talks to them as to hardware.
 */
import { faultKnobs, type FaultKnobs } from '../drivers/sim/faults.ts';
import type { LinePeer } from '../drivers/sim/line-peer.ts';
import { Rng } from '../drivers/sim/rng.ts';
import { SlcanAdapterEmulator } from '../drivers/sim/slcan-adapter.ts';
import { SimWorld } from '../drivers/sim/world/index.ts';
import { createPtyPair } from '../drivers/transport/pty.ts';
import { openSerialPort } from '../drivers/transport/serial-port.ts';
import { CANABLE, LAWICEL } from '../drivers/transport/slcan-codec.ts';
import { VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import { RealClock, type Clock, type TimerHandle } from './clock.ts';
import type { LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';
import { armCodecOf, armPeerFor, homeOf, linePeerFor, type SimContext } from './sim-devices.ts';

export interface EmulatedDevice {
  name: string;
  kind: 'arm' | 'hand' | 'ft';
  /** The path the harness opens (the rig config's `port`). */
  hostPath: string;
  /** What the host end speaks. */
  protocol: string;
  /** The emulator's fault knobs: set them to inject drops, corruption, latency or a stall. */
  faults: FaultKnobs;
  /**
   * Pulls the cable: the pty goes away (the host's port closes, the path disappears). With
   * `downMs`, it is plugged back in after that long: the path is there again and the device
   * starts afresh (powered by the cable, it rebooted). Resolves once unplugged.
   */
  disconnect(downMs?: number): Promise<void>;
  /**
   * The device's firmware restarts: silent for `bootMs`, then back with its state lost. The hand
   * and the sensors then send `!…,BOOT,<firmware>` with sequence numbers from 0 and stream nothing
   * until asked; the arm's motors answer again disabled.
   */
  reboot(bootMs?: number): void;
  /** The arm only: its slcan adapter goes bus-off (silent, refusing frames) until the host reopens the channel. */
  busOff?(): void;
  /** Whether the cable is in. */
  readonly plugged: boolean;
}

export interface EmulatorSet {
  readonly devices: readonly EmulatedDevice[];
  /** The simulated scene behind the emulators (pass it to createRig to reset it per trial). */
  readonly world: SimWorld;
  /** Devices of the config that cannot be emulated here, with the reason. */
  readonly skipped: readonly { name: string; reason: string }[];
  /** Stops every emulator and removes the pty links. Safe to call twice. */
  stop(): Promise<void>;
}

/** The pty path the emulator itself drives, next to the host path. */
export function emulatorSide(hostPath: string): string {
  return `${hostPath}.emu`;
}

/** What is attached while the cable is in: the pty pair, the emulator's port, the device on it. */
interface Attachment {
  reboot(bootMs: number): void;
  busOff?(): void;
  unplug(): Promise<void>;
}

export async function startEmulators(loaded: LoadedRig, options: { seed: number; clock?: Clock }): Promise<EmulatorSet> {
  const clock = options.clock ?? new RealClock();
  const { config, profile, cell } = loaded;
  const world = new SimWorld(cell.sites, profile.world, clock);
  const ctx: SimContext = { clock, profile, world, rng: new Rng(options.seed).fork('rig') };
  const homeQ = homeOf(loaded);
  const devices: EmulatedDevice[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const stops: (() => Promise<void> | void)[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    stopped = true;
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        process.stderr.write(`dexhil: while stopping an emulator: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  };

  /** An emulated device whose attachment can be unplugged and plugged in again. */
  const emulated = async (base: Omit<EmulatedDevice, 'disconnect' | 'reboot' | 'plugged' | 'busOff'>, plug: () => Promise<Attachment>): Promise<EmulatedDevice> => {
    let current: Attachment | undefined = await plug();
    let replug: TimerHandle | undefined;
    stops.push(async () => {
      replug?.cancel();
      await current?.unplug();
      current = undefined;
    });
    return {
      ...base,
      get plugged() {
        return current !== undefined;
      },
      async disconnect(downMs) {
        replug?.cancel();
        const was = current;
        current = undefined;
        await was?.unplug();
        if (downMs === undefined) return;
        replug = clock.setTimer(downMs, () => {
          replug = undefined;
          if (stopped || current !== undefined) return;
          plug().then(
            (a) => {
              if (stopped) void a.unplug();
              else current = a;
            },
            (err: unknown) => process.stderr.write(`dexhil: ${base.name}: could not plug the emulator back in: ${err instanceof Error ? err.message : String(err)}\n`),
          );
        });
      },
      reboot(bootMs = 500) {
        current?.reboot(bootMs);
      },
      ...(base.kind === 'arm' ? { busOff: () => current?.busOff?.() } : {}),
    };
  };

  try {
    for (const [name, dev] of Object.entries(config.devices)) {
      if (dev.port === undefined) {
        skipped.push({ name, reason: dev.kind === 'arm' && dev.iface !== undefined ? `SocketCAN (${dev.iface}) cannot be emulated on a pty; give the arm an slcan port` : 'no port in the rig config' });
        continue;
      }
      const hostPath = dev.port;
      if (dev.kind === 'arm') {
        // The motors stay on their bus; the cable is the slcan adapter's USB.
        const bus = new VirtualCanBus(clock, { bitrate: dev.bitrate });
        const peer = armPeerFor(ctx, name, dev, bus.channel(`${name}-motors`), armCodecOf(loaded, name), homeQ);
        stops.push(() => peer.stop());
        const dialect = dev.slcanDialect === 'canable' ? CANABLE : LAWICEL;
        devices.push(
          await emulated({ name, kind: 'arm', hostPath, protocol: `slcan (${dev.slcanDialect}) at ${dev.bitrate / 1000} kbit/s, ${dev.joints} joint motors`, faults: peer.faults }, async () => {
            const p = await createPtyPair(hostPath, emulatorSide(hostPath), clock);
            // USB CDC adapters are not paced by baud; the CAN bus timing is the virtual bus's.
            const stream = await openSerialPort({ path: p.devicePath, baud: dev.portBaud, clock }).catch(async (err: unknown) => {
              await p.close();
              throw err;
            });
            const adapter = new SlcanAdapterEmulator(stream, bus.channel(`${name}-adapter`), clock, { dialect, busBitrate: dev.bitrate });
            return {
              reboot: (bootMs) => peer.reboot(bootMs),
              busOff: () => (adapter.busOff = true),
              async unplug() {
                adapter.stop();
                await stream.close();
                await p.close();
              },
            };
          }),
        );
      } else {
        const faults = faultKnobs((dev.kind === 'hand' ? profile.hand : profile.ft).faults);
        devices.push(
          await emulated({ name, kind: dev.kind, hostPath, protocol: `${dev.kind === 'hand' ? 'hand' : 'F/T'} lines at ${dev.baud} baud (paced)`, faults }, async () => {
            const p = await createPtyPair(hostPath, emulatorSide(hostPath), clock);
            const stream = await openSerialPort({ path: p.devicePath, baud: dev.baud, clock, paced: true }).catch(async (err: unknown) => {
              await p.close();
              throw err;
            });
            let peer: LinePeer | undefined = linePeerFor(ctx, name, dev, stream, faults);
            let booting: TimerHandle | undefined;
            return {
              reboot(bootMs) {
                // The old firmware is gone at once; the new one takes over the port after booting.
                peer?.stop();
                peer = undefined;
                booting?.cancel();
                booting = clock.setTimer(bootMs, () => {
                  peer = linePeerFor(ctx, name, dev, stream, faults);
                  peer.announceBoot();
                });
              },
              async unplug() {
                booting?.cancel();
                peer?.stop();
                await stream.close();
                await p.close();
              },
            };
          }),
        );
      }
    }
  } catch (err) {
    await stop();
    throw err instanceof DexhilError ? err : new DexhilError('EMULATOR', `cannot start the emulators: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { devices, world, skipped, stop };
}
