/**
 * Simulated device peers built from a rig config and a sim profile. The in-process simulated rig
 * (rig.ts) and the pseudo-terminal emulators (emulate.ts) build the same peers from the same
 * config, so an emulated device is the simulated one behind a real serial port.
 */
import { ArmCodec } from '../drivers/arm/codec.ts';
import { ArmPeer } from '../drivers/sim/arm-peer.ts';
import { faultKnobs, type FaultKnobs } from '../drivers/sim/faults.ts';
import { FtPeer } from '../drivers/sim/ft-peer.ts';
import { HandPeer } from '../drivers/sim/hand-peer.ts';
import type { LinePeer } from '../drivers/sim/line-peer.ts';
import type { Rng } from '../drivers/sim/rng.ts';
import type { SimWorld } from '../drivers/sim/world/index.ts';
import type { ByteStream } from '../drivers/transport/byte-stream.ts';
import type { CanChannel } from '../drivers/transport/can.ts';
import type { Clock } from './clock.ts';
import { DexhilError } from './errors.ts';
import type { ArmConfig, FtConfig, HandConfig, LoadedRig, Profile } from './config.ts';

export interface SimContext {
  clock: Clock;
  profile: Profile;
  world: SimWorld;
  /** The rig's random stream; each device forks its own by name. */
  rng: Rng;
}

/** The codec of an arm's CAN database, as the run loaded it (a LoadedRig has one for every arm). */
export function armCodecOf(loaded: LoadedRig, name: string): ArmCodec {
  const bus = loaded.armBuses[name];
  if (bus === undefined) throw new DexhilError('INTERNAL', `${name}: the loaded rig has no CAN database for this arm`);
  return new ArmCodec(bus);
}

/** The arm's home pose from the work cell, one value per configured joint. */
export function homeOf(loaded: LoadedRig): number[] {
  const arm = Object.values(loaded.config.devices).find((d): d is ArmConfig => d.kind === 'arm');
  const joints = arm?.joints ?? 7;
  const q = loaded.cell.home.slice(0, joints);
  while (q.length < joints) q.push(0);
  return q;
}

/** Simulated joint motors answering on `channel`. */
export function armPeerFor(ctx: SimContext, name: string, dev: ArmConfig, channel: CanChannel, codec: ArmCodec, homeQ: readonly number[]): ArmPeer {
  const { profile } = ctx;
  return new ArmPeer(
    channel,
    codec,
    ctx.clock,
    { joints: dev.joints, model: profile.arm.modelCode, firmware: profile.arm.firmware, protocol: profile.arm.protocol, serialBase: 0x4100, tauMs: profile.arm.tauMs },
    faultKnobs(profile.arm.faults),
    ctx.rng.fork(name),
    ctx.world,
    homeQ,
  );
}

/**
 * A simulated hand or F/T sensor answering on `stream`. `faults` is the knob set to use (an
 * emulator keeps one per device across reboots and replugs); default: the profile's.
 */
export function linePeerFor(ctx: SimContext, name: string, dev: HandConfig | FtConfig, stream: ByteStream, faults?: FaultKnobs): LinePeer {
  const { profile } = ctx;
  const prof = dev.kind === 'hand' ? profile.hand : profile.ft;
  const identity = {
    model: prof.model,
    firmware: prof.firmware,
    protocol: prof.protocol,
    serial: `${prof.serialPrefix}-${name.toUpperCase()}-${(ctx.rng.fork(`${name}/serial`).float() * 1e5).toFixed(0).padStart(5, '0')}`,
  };
  const knobs = faults ?? faultKnobs(prof.faults);
  if (dev.kind === 'hand') return new HandPeer(stream, ctx.clock, identity, knobs, ctx.rng.fork(name), ctx.world, profile.hand.speedRadS);
  return new FtPeer(stream, ctx.clock, identity, knobs, ctx.rng.fork(name), ctx.world, dev.mount, profile.ft.noiseN);
}
