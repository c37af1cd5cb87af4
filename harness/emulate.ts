/**
 * Device emulators on pseudo-terminals: for every device of a rig config that names a port, a
 * socat pty pair whose host end appears at that port path, and the simulated device (the same
 * peer as on the in-process simulated rig) on the other end, paced to the link's baud rate.
 * The arm's motors sit on a virtual CAN bus behind an emulated slcan adapter. Anything that opens
 * the port paths (the harness, python-can, a serial terminal) talks to them as to hardware.
 */
import { ArmCodec } from '../drivers/arm/codec.ts';
import type { FaultKnobs } from '../drivers/sim/faults.ts';
import { Rng } from '../drivers/sim/rng.ts';
import { SlcanAdapterEmulator } from '../drivers/sim/slcan-adapter.ts';
import { SimWorld } from '../drivers/sim/world/index.ts';
import { createPtyPair, type PtyPair } from '../drivers/transport/pty.ts';
import { openSerialPort } from '../drivers/transport/serial-port.ts';
import { CANABLE, LAWICEL } from '../drivers/transport/slcan-codec.ts';
import { VirtualCanBus } from '../drivers/transport/virtual-can.ts';
import { RealClock, type Clock } from './clock.ts';
import type { LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';
import { armPeerFor, homeOf, kcdOf, linePeerFor, type SimContext } from './sim-devices.ts';

export interface EmulatedDevice {
  name: string;
  kind: 'arm' | 'hand' | 'ft';
  /** The path the harness opens (the rig config's `port`). */
  hostPath: string;
  /** What the host end speaks. */
  protocol: string;
  /** The emulator's fault knobs: set them to inject drops, corruption, latency or a stall. */
  faults: FaultKnobs;
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

export async function startEmulators(loaded: LoadedRig, options: { seed: number; clock?: Clock }): Promise<EmulatorSet> {
  const clock = options.clock ?? new RealClock();
  const { config, profile, cell } = loaded;
  const world = new SimWorld(cell.sites, profile.world, () => clock.nowMs());
  const ctx: SimContext = { clock, profile, world, rng: new Rng(options.seed).fork('rig') };
  const homeQ = homeOf(loaded);
  const devices: EmulatedDevice[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        process.stderr.write(`dexhil: while stopping an emulator: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  };
  const pair = async (hostPath: string): Promise<PtyPair> => {
    const p = await createPtyPair(hostPath, emulatorSide(hostPath), clock);
    stops.push(() => p.close());
    return p;
  };
  try {
    for (const [name, dev] of Object.entries(config.devices)) {
      if (dev.kind === 'arm') {
        if (dev.port === undefined) {
          skipped.push({ name, reason: dev.iface !== undefined ? `SocketCAN (${dev.iface}) cannot be emulated on a pty; give the arm an slcan port` : 'no port in the rig config' });
          continue;
        }
        const p = await pair(dev.port);
        // USB CDC adapters are not paced by baud; the CAN bus timing is the virtual bus's.
        const stream = await openSerialPort({ path: p.devicePath, baud: dev.portBaud, clock });
        stops.push(() => stream.close());
        const bus = new VirtualCanBus(clock, { bitrate: dev.bitrate });
        const peer = armPeerFor(ctx, name, dev, bus.channel(`${name}-motors`), new ArmCodec(kcdOf(loaded, dev)), homeQ);
        stops.push(() => peer.stop());
        const adapter = new SlcanAdapterEmulator(stream, bus.channel(`${name}-adapter`), clock, { dialect: dev.slcanDialect === 'canable' ? CANABLE : LAWICEL, busBitrate: dev.bitrate });
        stops.push(() => adapter.stop());
        devices.push({ name, kind: 'arm', hostPath: dev.port, protocol: `slcan (${dev.slcanDialect}) at ${dev.bitrate / 1000} kbit/s, ${dev.joints} joint motors`, faults: peer.faults });
      } else {
        if (dev.port === undefined) {
          skipped.push({ name, reason: 'no port in the rig config' });
          continue;
        }
        const p = await pair(dev.port);
        const stream = await openSerialPort({ path: p.devicePath, baud: dev.baud, clock, paced: true });
        stops.push(() => stream.close());
        const peer = linePeerFor(ctx, name, dev, stream);
        stops.push(() => peer.stop());
        devices.push({ name, kind: dev.kind, hostPath: dev.port, protocol: `${dev.kind === 'hand' ? 'hand' : 'F/T'} lines at ${dev.baud} baud (paced)`, faults: peer.faults });
      }
    }
  } catch (err) {
    await stop();
    throw err instanceof DexhilError ? err : new DexhilError('EMULATOR', `cannot start the emulators: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { devices, world, skipped, stop };
}
