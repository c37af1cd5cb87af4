/**
 * The arm's CAN codec. Frame layouts live in the KCD file (fixtures/can/arm.kcd), read by the
 * `socketcan` package's KCD parser; signals are placed and read by signal-bits.ts, exactly as
 * that package's native signal codec does.
 * This module adds what a KCD cannot say: the MIT-mode special frames (enable / disable / zero),
 * range clamping, and typed views of the messages.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CanFrame } from '../types.ts';
import { readSignalsRaw, SIGNAL_TYPE, writeSignalsRaw, type SignalBits } from './signal-bits.ts';

// socketcan is CommonJS with native addons; load it through require so ESM interop is explicit.
const require = createRequire(import.meta.url);
type SocketCanModule = typeof import('socketcan');
let socketcan: SocketCanModule | undefined;
/**
 * socketcan, loaded when a KCD file is first read: its KCD parser brings an XML library that takes
 * about 30 ms to load, which a thread handed an arm bus already read (a trial block's) never needs.
 */
function socketcanModule(): SocketCanModule {
  socketcan ??= require('socketcan') as SocketCanModule;
  return socketcan;
}

export const DEFAULT_KCD = fileURLToPath(new URL('../../fixtures/can/arm.kcd', import.meta.url));
export const ARM_PROTOCOL = { major: 1, minor: 0 } as const;

export const CMD_BASE = 0x000;
export const FB_BASE = 0x100;
export const INFO_REQ_ID = 0x7e0;
export const INFO_BASE = 0x7e0;

export type SpecialCommand = 'enable' | 'disable' | 'zero';
const SPECIAL_LAST_BYTE: Record<SpecialCommand, number> = { enable: 0xfc, disable: 0xfd, zero: 0xfe };

/** Motor fault codes carried in the feedback frame's `err` nibble. */
export const MOTOR_ERRORS: Readonly<Record<number, string>> = {
  0: 'ok',
  1: 'over-temperature',
  2: 'over-current',
  3: 'under-voltage',
  4: 'encoder-fault',
  5: 'command-watchdog',
};

export const MOTOR_MODELS: Readonly<Record<number, string>> = {
  1: 'DXJ-4310 joint motor',
  2: 'DXJ-8009 joint motor',
};

export interface JointCommand {
  positionRad: number;
  velocityRadS: number;
  kp: number;
  kd: number;
  torqueFfNm: number;
}

export interface JointFeedback {
  joint: number;
  error: number;
  positionRad: number;
  velocityRadS: number;
  torqueNm: number;
  tempMosC: number;
  tempRotorC: number;
}

export interface JointInfo {
  joint: number;
  model: number;
  firmware: string;
  protocolMajor: number;
  protocolMinor: number;
  serial: number;
}

export type DecodedArmFrame =
  | { kind: 'command'; joint: number; command: JointCommand }
  | { kind: 'special'; joint: number; command: SpecialCommand }
  | { kind: 'feedback'; feedback: JointFeedback }
  | { kind: 'info-request'; joint: number }
  | { kind: 'info'; info: JointInfo }
  | { kind: 'unknown'; id: number };

/** One signal of a message, as the codec needs it (from the KCD parser's Signal). */
interface SignalLayout extends SignalBits {
  name: string;
  slope: number;
  intercept: number;
  /** The largest physical value the signal carries (the smallest is `intercept`). */
  max: number;
}
interface MessageLayout {
  id: number;
  ext: boolean;
  len: number;
  signals: SignalLayout[];
}

/** The signals of the joint messages, in the order the typed views pass their values. */
const CMD_SIGNALS = ['p_des', 'v_des', 'kp', 'kd', 't_ff'] as const;
const FB_SIGNALS = ['err', 'node', 'pos', 'vel', 'torque', 't_mos', 't_rotor'] as const;

/**
 * A joint message whose signals are exactly the expected ones, with them in that order: the
 * hot path (one command and one feedback frame per joint per control tick) packs and reads it
 * without building a record of values by name.
 */
interface JointLayout extends MessageLayout {
  ordered: SignalLayout[];
}

function jointLayout(msg: MessageLayout | undefined, names: readonly string[]): JointLayout | undefined {
  if (msg === undefined || msg.signals.length !== names.length) return undefined;
  const ordered: SignalLayout[] = [];
  for (const n of names) {
    const sig = msg.signals.find((s) => s.name === n);
    if (sig === undefined) return undefined;
    ordered.push(sig);
  }
  return { ...msg, ordered };
}

/** A signal of a KCD message, as socketcan's KCD parser reads it (the fields the codec uses). */
export interface KcdSignal {
  name: string;
  bitOffset: number;
  bitLength: number;
  endianess: 'little' | 'big';
  type: string;
  slope: number;
  intercept: number;
}

/**
 * The arm bus (`<Bus name="arm">`) of a KCD file, as socketcan's KCD parser reads it, in plain
 * data: a run reads it once with the rig's other files (harness/config.ts) and hands it to every
 * trial block, in worker threads too.
 */
export interface ArmBus {
  /** The KCD file it was read from. */
  file: string;
  messages: { name: string; id: number; ext: boolean; length: number; signals: KcdSignal[] }[];
}

/** Reads the arm bus of a KCD file with socketcan's KCD parser. */
export function readArmBus(kcdPath: string = DEFAULT_KCD): ArmBus {
  const network = socketcanModule().parseNetworkDescription(kcdPath);
  const bus = network.buses['arm'];
  if (bus === undefined) throw new Error(`${kcdPath}: no <Bus name="arm"> in the CAN database`);
  return {
    file: kcdPath,
    messages: bus.messages.map((m) => ({
      name: m.name,
      id: m.id,
      ext: m.ext,
      length: m.length,
      signals: m.signals.map((sig) => ({ name: sig.name, bitOffset: sig.bitOffset, bitLength: sig.bitLength, endianess: sig.endianess, type: sig.type, slope: sig.slope, intercept: sig.intercept })),
    })),
  };
}

/**
 * Encodes and decodes arm frames. Stateless from the caller's view: each call sets every signal
 * it encodes, and decode reads the signals of exactly the frame it was given.
 */
export class ArmCodec {
  readonly maxJoints: number;
  private readonly byName = new Map<string, MessageLayout>();
  private readonly byId = new Map<number, MessageLayout>();
  /** Joint n's command and feedback layouts at index n, where they have exactly the expected signals. */
  private readonly cmd: (JointLayout | undefined)[] = [];
  private readonly fb: (JointLayout | undefined)[] = [];

  /** The codec of a KCD file's arm bus: the file's path, or the bus already read (readArmBus). */
  constructor(source: string | ArmBus = DEFAULT_KCD) {
    const bus = typeof source === 'string' ? readArmBus(source) : source;
    let joints = 0;
    for (const m of bus.messages) {
      const signals = m.signals.map((sig): SignalLayout => {
        const type = sig.type === 'signed' ? SIGNAL_TYPE.SIGNED : sig.type === 'unsigned' ? SIGNAL_TYPE.UNSIGNED : -1;
        if (type < 0 || sig.bitLength > 32) throw new Error(`${bus.file}: ${m.name}.${sig.name}: only integer signals of at most 32 bits are supported`);
        const max = sig.intercept + sig.slope * (2 ** sig.bitLength - 1);
        return { name: sig.name, bitOffset: sig.bitOffset, bitLength: sig.bitLength, littleEndian: sig.endianess === 'little', type, slope: sig.slope, intercept: sig.intercept, max };
      });
      const layout: MessageLayout = { id: m.id, ext: m.ext, len: m.length, signals };
      this.byName.set(m.name, layout);
      this.byId.set(m.id, layout);
      if (/^Cmd_J\d+$/.test(m.name)) joints++;
    }
    this.maxJoints = joints;
    for (let j = 0; j <= 0xf; j++) {
      this.cmd.push(jointLayout(this.byName.get(`Cmd_J${j}`), CMD_SIGNALS));
      this.fb.push(jointLayout(this.byName.get(`Fb_J${j}`), FB_SIGNALS));
    }
  }

  /**
   * Packs a message: each value is clamped to its signal's range, scaled to the raw integer
   * round((value - intercept) / slope), and placed as socketcan's signal codec places it
   * (signal-bits.ts); unused bits are 0.
   */
  private encode(name: string, values: Readonly<Record<string, number>>): CanFrame {
    const msg = this.byName.get(name);
    if (msg === undefined) throw new RangeError(`message ${name} is not in the CAN database`);
    const ordered = msg.signals.map((sig) => {
      const v = values[sig.name];
      if (v === undefined) throw new RangeError(`${name}.${sig.name}: no value given`);
      return v;
    });
    return { id: msg.id, ext: msg.ext, rtr: false, data: packAll(msg.len, msg.signals, ordered) };
  }

  private read(msg: MessageLayout, frame: CanFrame): Record<string, number> {
    const v = physicalValues(frame.data, msg.signals);
    const out: Record<string, number> = {};
    msg.signals.forEach((sig, i) => (out[sig.name] = v[i]!));
    return out;
  }

  /**
   * A joint message (`prefix` + joint) from `values`, given in the order of `names`: through the
   * joint's resolved layout, or by name when the KCD's message carries other signals.
   */
  private encodeJoint(layouts: readonly (JointLayout | undefined)[], prefix: string, names: readonly string[], joint: number, values: readonly number[]): CanFrame {
    const m = layouts[joint];
    if (m === undefined) return this.encode(`${prefix}${joint}`, Object.fromEntries(names.map((n, i) => [n, values[i]!])));
    return { id: m.id, ext: m.ext, rtr: false, data: packAll(m.len, m.ordered, values) };
  }

  /** A joint message's values in the order of `names` (undefined for a signal the KCD lacks). */
  private decodeJoint(m: JointLayout | undefined, msg: MessageLayout, names: readonly string[], frame: CanFrame): number[] {
    if (m !== undefined && m.id === frame.id) return physicalValues(frame.data, m.ordered);
    const v = this.read(msg, frame);
    return names.map((n) => v[n]!);
  }

  command(joint: number, c: JointCommand): CanFrame {
    return this.encodeJoint(this.cmd, 'Cmd_J', CMD_SIGNALS, joint, [c.positionRad, c.velocityRadS, c.kp, c.kd, c.torqueFfNm]);
  }

  special(joint: number, command: SpecialCommand): CanFrame {
    const data = Buffer.alloc(8, 0xff);
    data[7] = SPECIAL_LAST_BYTE[command];
    return { id: CMD_BASE + joint, ext: false, rtr: false, data };
  }

  feedback(f: JointFeedback): CanFrame {
    return this.encodeJoint(this.fb, 'Fb_J', FB_SIGNALS, f.joint, [f.error, f.joint & 0xf, f.positionRad, f.velocityRadS, f.torqueNm, f.tempMosC, f.tempRotorC]);
  }

  infoRequest(joint: number): CanFrame {
    return this.encode('Info_Req', { node: joint });
  }

  info(i: JointInfo): CanFrame {
    const [major, minor, patch] = i.firmware.split('.').map(Number);
    return this.encode(`Info_J${i.joint}`, {
      model: i.model,
      fw_major: major ?? 0,
      fw_minor: minor ?? 0,
      fw_patch: patch ?? 0,
      proto_major: i.protocolMajor,
      proto_minor: i.protocolMinor,
      serial: i.serial,
    });
  }

  /** Classifies and decodes any frame; unknown ids and short frames come back as `unknown`. Never throws. */
  decode(frame: CanFrame): DecodedArmFrame {
    const msg = frame.ext || frame.rtr ? undefined : this.byId.get(frame.id);
    if (msg === undefined || frame.data.length < msg.len) return { kind: 'unknown', id: frame.id };
    const joint = frame.id & 0x0f;
    if (frame.id > CMD_BASE && frame.id <= CMD_BASE + this.maxJoints) {
      const special = specialOf(frame.data);
      if (special !== undefined) return { kind: 'special', joint, command: special };
      const v = this.decodeJoint(this.cmd[joint], msg, CMD_SIGNALS, frame);
      return { kind: 'command', joint, command: { positionRad: v[0]!, velocityRadS: v[1]!, kp: v[2]!, kd: v[3]!, torqueFfNm: v[4]! } };
    }
    if (frame.id > FB_BASE && frame.id <= FB_BASE + this.maxJoints) {
      const v = this.decodeJoint(this.fb[joint], msg, FB_SIGNALS, frame);
      return { kind: 'feedback', feedback: { joint, error: v[0]!, positionRad: v[2]!, velocityRadS: v[3]!, torqueNm: v[4]!, tempMosC: v[5]!, tempRotorC: v[6]! } };
    }
    if (frame.id === INFO_REQ_ID) return { kind: 'info-request', joint: this.read(msg, frame)['node']! };
    const v = this.read(msg, frame);
    return {
      kind: 'info',
      info: {
        joint,
        model: v['model']!,
        firmware: `${v['fw_major']}.${v['fw_minor']}.${v['fw_patch']}`,
        protocolMajor: v['proto_major']!,
        protocolMinor: v['proto_minor']!,
        serial: v['serial']!,
      },
    };
  }
}

function specialOf(data: Buffer): SpecialCommand | undefined {
  if (data.length !== 8) return undefined;
  for (let i = 0; i < 7; i++) if (data[i] !== 0xff) return undefined;
  for (const [k, v] of Object.entries(SPECIAL_LAST_BYTE)) if (data[7] === v) return k as SpecialCommand;
  return undefined;
}

/**
 * The raw integer of a physical value: clamped to the signal's range (MIT packing saturates: a
 * value outside it is sent as the nearest end), scaled to round((value - intercept) / slope).
 * @throws RangeError when the value is not a finite number.
 */
function rawOf(sig: SignalLayout, value: number): number {
  if (!Number.isFinite(value)) throw new RangeError(`signal value ${value} is not a finite number`);
  const clamped = value < sig.intercept ? sig.intercept : value > sig.max ? sig.max : value;
  return Math.round((clamped - sig.intercept) / sig.slope);
}

/** The physical values (raw * slope + intercept) of signals of one payload. */
function physicalValues(data: Uint8Array, sigs: readonly SignalLayout[]): number[] {
  const v: number[] = [];
  readSignalsRaw(data, sigs, v);
  for (let i = 0; i < sigs.length; i++) v[i] = v[i]! * sigs[i]!.slope + sigs[i]!.intercept;
  return v;
}

/**
 * The raw values of the frame being packed (reused: a frame is packed for every joint and tick).
 * Only its first `sigs.length` are read, so its length is never set (that cost a builtin call a frame).
 */
const raws: number[] = [];

/** Packs physical values into a fresh payload of `len` bytes, signal by signal. */
function packAll(len: number, sigs: readonly SignalLayout[], values: readonly number[]): Buffer {
  for (let i = 0; i < sigs.length; i++) raws[i] = rawOf(sigs[i]!, values[i]!);
  const data = Buffer.alloc(len);
  writeSignalsRaw(data, sigs, raws);
  return data;
}
