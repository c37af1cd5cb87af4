/**
 * Host driver for the dexterous hand on a serial line (protocol: docs/protocols.md, "Hand").
 * Lifecycle: open() -> inactive (streams, read-only) -> activate() -> active (accepts motion)
 * -> deactivate() -> close() -> finalized.
 */
import { DexhilError } from '../../harness/errors.ts';
import { checkProtocol, LineDevice, type LineDeviceOptions, type VersionReply } from '../line-device.ts';
import type { DeviceInfo, LifecycleState, TransportKind } from '../types.ts';
import { ACTUATED, FINGERS, HAND_JOINTS, HAND_JOINT_LIMIT_RAD, HAND_PROTOCOL_MAJOR } from './model.ts';

export interface HandState {
  /** All 20 joint positions, rad, in HAND_JOINTS order. */
  positionRad: number[];
  /** Motor currents of the 15 actuated joints, A. */
  currentA: number[];
  /** Fingertip normal forces, N, in FINGERS order. */
  tipForceN: number[];
  /** Device time of the sample, µs (wrapping 32-bit). */
  deviceTimeUs: number;
  /** Clock time the sample was received, ms. */
  rxMs: number;
}

export interface HandDriverOptions extends LineDeviceOptions {
  transport: TransportKind;
  mode: 'sim' | 'real';
  streamHz: number;
}

const SAMPLE_FIELDS = HAND_JOINTS.length + ACTUATED.length + FINGERS.length;

export class HandDriver extends LineDevice {
  state: LifecycleState = 'unconfigured';
  info: DeviceInfo | undefined;
  latest: HandState | undefined;
  private readonly listeners = new Set<(s: HandState) => void>();

  constructor(private readonly options: HandDriverOptions) {
    super(options);
  }

  onState(listener: (s: HandState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Identifies the hand, checks its protocol and starts streaming. -> inactive. */
  async open(signal?: AbortSignal): Promise<DeviceInfo> {
    const v: VersionReply = await this.version(signal);
    checkProtocol(this.name, v.protocol, HAND_PROTOCOL_MAJOR);
    await this.request('STREAM', [this.options.streamHz], signal);
    this.info = { name: this.name, kind: 'hand', transport: this.options.transport, mode: this.options.mode, ...v };
    this.state = 'inactive';
    return this.info;
  }

  async activate(signal?: AbortSignal): Promise<void> {
    this.requireState('inactive', 'activate');
    await this.request('MODE', ['ACTIVE'], signal);
    this.state = 'active';
  }

  /**
   * Commands the 15 actuated joints (rad, clamped to ±1.8) with a per-joint current limit (A):
   * the limit is the grip force knob, fingers stop where the object pushes back.
   * @throws DexhilError DEVICE_STATE unless active; DEVICE_REFUSED when the hand refuses.
   */
  async setPosture(actuatedRad: readonly number[], currentLimitA: number, signal?: AbortSignal): Promise<void> {
    this.requireState('active', 'move');
    if (actuatedRad.length !== ACTUATED.length) throw new RangeError(`posture needs ${ACTUATED.length} values, got ${actuatedRad.length}`);
    // Integers in thousandths; `| 0` also turns a -0 (a joint at -0.0004 rad) into 0, so the
    // fields are always small integers (drivers/arrays.ts).
    const fields = [Math.round(currentLimitA * 1000) | 0];
    for (const r of actuatedRad) fields.push(Math.round(1000 * Math.max(-HAND_JOINT_LIMIT_RAD, Math.min(HAND_JOINT_LIMIT_RAD, r))) | 0);
    await this.request('POS', fields, signal);
  }

  /** Freezes every joint where it is (safe hold). Allowed in any non-final state. */
  async hold(signal?: AbortSignal): Promise<void> {
    if (this.state === 'finalized' || this.state === 'unconfigured') return;
    await this.request('HOLD', [], signal);
  }

  async deactivate(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'active') return;
    await this.request('MODE', ['IDLE'], signal);
    this.state = 'inactive';
  }

  async close(): Promise<void> {
    this.closeLink();
    this.state = 'finalized';
  }

  protected override handleSample(values: readonly number[], deviceTimeUs: number): void {
    if (values.length !== SAMPLE_FIELDS) {
      this.stats.malformed++;
      return;
    }
    // One pass over the 44 values (this runs for every sample): milli-units to units.
    const j = HAND_JOINTS.length;
    const a = j + ACTUATED.length;
    const positionRad: number[] = [];
    const currentA: number[] = [];
    const tipForceN: number[] = [];
    for (let i = 0; i < SAMPLE_FIELDS; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) {
        this.stats.malformed++;
        return;
      }
      (i < j ? positionRad : i < a ? currentA : tipForceN).push(v / 1000);
    }
    const s: HandState = {
      positionRad,
      currentA,
      tipForceN,
      deviceTimeUs,
      rxMs: this.clock.nowMs(),
    };
    this.latest = s;
    for (const l of this.listeners) l(s);
  }

  private requireState(expected: LifecycleState, what: string): void {
    if (this.state !== expected) {
      throw new DexhilError('DEVICE_STATE', `${this.name}: cannot ${what} in state '${this.state}' (needs '${expected}')`);
    }
  }
}
