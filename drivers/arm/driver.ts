/**
 * Host driver for the arm: N joint motors in MIT mode on one CAN channel (docs/protocols.md, "Arm").
 *
 * The driver runs the control loop: at `controlHz` it sends every joint a command frame whose
 * position setpoint walks toward the target at no more than `maxVelocityRadS` (the host plans the
 * trajectory; the motor's PD loop tracks it). Each motor answers every command with a feedback
 * frame, which is how positions, torques, temperatures and faults come back.
 *
 * While no move is in progress and the setpoint stands still, the motors' own PD loops hold the
 * last setpoint, so the driver only refreshes it at `holdHz` (keeping the motors' command
 * watchdog fed and feedback flowing) and leaves the bus free: a 7-joint arm at 100 Hz takes about
 * 19% of a 1 Mbit/s bus for nothing otherwise. The same holds joint by joint during a move: a
 * joint whose setpoint stands still and which has settled there (its last feedback within
 * `SETTLED_RAD`) is refreshed at `holdHz` while the moving joints get every tick. (In a run of the
 * task scenarios, 85% of the command frames went to joints whose setpoint stood still.)
 */
import { monotonicMs, type Clock, type TimerHandle } from '../../harness/clock.ts';
import { DexhilError, throwIfAborted } from '../../harness/errors.ts';
import { doubles } from '../arrays.ts';
import type { CanChannel } from '../transport/can.ts';
import type { CanFrame, CanTrace, DeviceInfo, LifecycleState, LinkStats, TransportKind } from '../types.ts';
import { emptyStats } from '../types.ts';
import { ARM_PROTOCOL, MOTOR_ERRORS, MOTOR_MODELS, type ArmCodec, type JointFeedback, type JointInfo } from './codec.ts';

export interface ArmDriverOptions {
  name: string;
  channel: CanChannel;
  codec: ArmCodec;
  clock: Clock;
  transport: TransportKind;
  mode: 'sim' | 'real';
  joints: number;
  controlHz: number;
  /** Refresh rate while no move is in progress and the setpoint is still (<= controlHz). */
  holdHz: number;
  maxVelocityRadS: number;
  kp: number;
  kd: number;
  requestTimeoutMs: number;
  /** Raw-traffic tap: every frame sent, and every frame received while the driver is open. */
  trace?: CanTrace | undefined;
}

export interface MoveOptions {
  /** Done when every joint's measured position is within this of the target. */
  toleranceRad?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Path speed limit for this move, rad/s (default: the configured maximum). */
  speedRadS?: number;
  /** Checked on every feedback round; a non-undefined result stops the move (hold) and is returned. */
  guard?: () => string | undefined;
}

export interface MoveResult {
  reached: boolean;
  /** What the guard returned when it stopped the move. */
  stoppedBy?: string;
  durationMs: number;
}

export type ArmFaultListener = (joint: number, code: number, text: string) => void;

/**
 * How close (rad) a joint's last feedback must be to its setpoint for the joint to count as
 * settled there: above three times the simulated motors' feedback noise (0.3 mrad), so a settled
 * joint seldom reads outside it, and well below the tightest move tolerance the scenarios use
 * (4 mrad), so a joint left out of the refreshes is within every move's tolerance.
 */
export const SETTLED_RAD = 0.001;

export class ArmDriver {
  readonly name: string;
  state: LifecycleState = 'unconfigured';
  info: DeviceInfo | undefined;
  readonly stats: LinkStats = emptyStats();
  readonly positionRad: number[];
  readonly velocityRadS: number[];
  readonly torqueNm: number[];
  readonly tempC: number[];
  private readonly setpoint: number[];
  private readonly target: number[];
  private loop: TimerHandle | undefined;
  private readonly infoWaiters = new Map<number, (i: JointInfo) => void>();
  private readonly faultListeners = new Set<ArmFaultListener>();
  private readonly onFrameBound = (frame: CanFrame): void => this.onFrame(frame);
  private feedbackSeen = 0;
  private readonly feedbackListeners = new Set<(f: JointFeedback) => void>();
  /** Clock time (ms) of the last frame from a motor; undefined before the first. */
  lastRxMs: number | undefined;
  /** monotonicMs() when the frame being handled arrived (for reaction times). */
  lastRxMonoMs = 0;
  private speedRadS: number;
  private movesInProgress = 0;
  private idleTicks = 0;
  /** Control ticks since each joint was last sent a command. */
  private readonly quietTicks: number[];
  /**
   * The clock, CAN channel and codec, held by the driver itself rather than read from \`options\`
   * each time (README, "Speed"): an options object is made by the same object literal for every
   * rig, and V8 compiled its fields as constants until the second rig's literal held another
   * clock, channel and codec, which threw away the driver's optimised code at the second block.
   */
  private readonly clock: Clock;
  private readonly channel: CanChannel;
  private readonly codec: ArmCodec;

  constructor(private readonly options: ArmDriverOptions) {
    if (options.joints < 1 || options.joints > options.codec.maxJoints) {
      throw new DexhilError('CONFIG_INVALID', `${options.name}: ${options.joints} joints configured, the CAN database describes ${options.codec.maxJoints}`);
    }
    this.name = options.name;
    this.clock = options.clock;
    this.channel = options.channel;
    this.codec = options.codec;
    this.positionRad = doubles(options.joints);
    this.velocityRadS = doubles(options.joints);
    this.torqueNm = doubles(options.joints);
    this.tempC = doubles(options.joints);
    this.setpoint = doubles(options.joints);
    this.target = doubles(options.joints);
    this.quietTicks = new Array<number>(options.joints).fill(0);
    this.speedRadS = options.maxVelocityRadS;
  }

  get joints(): number {
    return this.options.joints;
  }

  /** Why the link to the motors is gone (the adapter was unplugged), once it is. */
  linkLost: string | undefined;
  private readonly linkLostListeners = new Set<(reason: string) => void>();

  /** Told by the transport that the link is gone: noted, and said to onLinkLost listeners. */
  markLinkLost(reason: string): void {
    if (this.linkLost !== undefined || this.state === 'finalized') return; // our own close is no loss
    this.linkLost = reason;
    for (const l of this.linkLostListeners) l(reason);
  }

  onLinkLost(listener: (reason: string) => void): () => void {
    this.linkLostListeners.add(listener);
    return () => this.linkLostListeners.delete(listener);
  }

  /** Every joint's feedback as it arrives (the safety supervisor checks it). */
  onFeedback(listener: (f: JointFeedback) => void): () => void {
    this.feedbackListeners.add(listener);
    return () => this.feedbackListeners.delete(listener);
  }

  onFault(listener: ArmFaultListener): () => void {
    this.faultListeners.add(listener);
    return () => this.faultListeners.delete(listener);
  }

  /** Starts listening and identifies every joint motor. -> inactive. */
  async open(signal?: AbortSignal): Promise<DeviceInfo> {
    this.channel.addListener('onMessage', this.onFrameBound);
    this.channel.start();
    const infos: JointInfo[] = [];
    for (let j = 1; j <= this.joints; j++) infos.push(await this.identify(j, signal));
    for (const i of infos) {
      if (i.protocolMajor !== ARM_PROTOCOL.major) {
        throw new DexhilError('PROTOCOL_VERSION', `${this.name}: joint ${i.joint} speaks protocol ${i.protocolMajor}.${i.protocolMinor}, this harness speaks ${ARM_PROTOCOL.major}.x`, {
          hint: 'flash the joint with a matching firmware or use a matching dexhil release',
        });
      }
    }
    const firmwares = [...new Set(infos.map((i) => i.firmware))];
    if (firmwares.length > 1) {
      throw new DexhilError('PROTOCOL_VERSION', `${this.name}: joints run different firmware (${infos.map((i) => `J${i.joint}=${i.firmware}`).join(', ')})`, {
        hint: 'flash every joint with the same firmware before a run',
      });
    }
    const first = infos[0]!;
    this.info = {
      name: this.name,
      kind: 'arm',
      transport: this.options.transport,
      mode: this.options.mode,
      model: `${MOTOR_MODELS[first.model] ?? `model ${first.model}`} x${this.joints}`,
      firmware: first.firmware,
      protocol: `${first.protocolMajor}.${first.protocolMinor}`,
      serial: infos.map((i) => i.serial.toString(16).toUpperCase().padStart(4, '0')).join('-'),
    };
    this.state = 'inactive';
    return this.info;
  }

  private identify(joint: number, signal?: AbortSignal): Promise<JointInfo> {
    throwIfAborted(signal);
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(this.options.requestTimeoutMs, () => {
        this.infoWaiters.delete(joint);
        reject(
          new DexhilError('DEVICE_TIMEOUT', `${this.name}: joint ${joint} did not answer the info request within ${this.options.requestTimeoutMs} ms`, {
            hint: `check the CAN wiring and termination, the bitrate, and that joint ${joint} is powered`,
          }),
        );
      });
      this.infoWaiters.set(joint, (i) => {
        timer.cancel();
        resolve(i);
      });
      this.send(this.codec.infoRequest(joint));
    });
  }

  /** Enables every motor and starts the control loop holding the current position. -> active. */
  async activate(signal?: AbortSignal): Promise<void> {
    this.requireState('inactive', 'activate');
    const before = this.feedbackSeen;
    for (let j = 1; j <= this.joints; j++) this.send(this.codec.special(j, 'enable'));
    const deadline = this.clock.nowMs() + this.options.requestTimeoutMs;
    while (this.feedbackSeen - before < this.joints) {
      if (this.clock.nowMs() > deadline) {
        throw new DexhilError('DEVICE_TIMEOUT', `${this.name}: motors did not confirm enable within ${this.options.requestTimeoutMs} ms`);
      }
      await this.clock.sleep(1, signal);
    }
    for (let j = 0; j < this.joints; j++) {
      this.setpoint[j] = this.positionRad[j]!;
      this.target[j] = this.positionRad[j]!;
    }
    this.state = 'active';
    this.loop = this.clock.setInterval(1000 / this.options.controlHz, () => this.controlTick());
  }

  /**
   * Moves to `targetRad` (one value per joint) along a velocity-limited path.
   * @throws DexhilError DEVICE_STATE unless active; ABORTED when the signal fires (the arm holds).
   */
  async moveTo(targetRad: readonly number[], options: MoveOptions = {}): Promise<MoveResult> {
    this.requireState('active', 'move');
    if (targetRad.length !== this.joints) throw new RangeError(`${this.name}: target has ${targetRad.length} values for ${this.joints} joints`);
    const tol = options.toleranceRad ?? 0.02;
    const start = this.clock.nowMs();
    targetRad.forEach((v, j) => {
      this.target[j] = v;
    });
    this.speedRadS = Math.min(options.speedRadS ?? this.options.maxVelocityRadS, this.options.maxVelocityRadS);
    const periodMs = 1000 / this.options.controlHz;
    this.movesInProgress++;
    try {
      return await this.followMove(targetRad, tol, start, periodMs, options);
    } finally {
      this.movesInProgress--;
    }
  }

  private async followMove(targetRad: readonly number[], tol: number, start: number, periodMs: number, options: MoveOptions): Promise<MoveResult> {
    for (;;) {
      try {
        await this.clock.sleep(periodMs, options.signal);
      } catch (err) {
        this.hold();
        throw err;
      }
      const stoppedBy = options.guard?.();
      if (stoppedBy !== undefined) {
        this.hold();
        return { reached: false, stoppedBy, durationMs: this.clock.nowMs() - start };
      }
      if (this.positionRad.every((p, j) => Math.abs(p - targetRad[j]!) <= tol)) {
        return { reached: true, durationMs: this.clock.nowMs() - start };
      }
      if (options.timeoutMs !== undefined && this.clock.nowMs() - start > options.timeoutMs) {
        this.hold();
        return { reached: false, stoppedBy: 'move-timeout', durationMs: this.clock.nowMs() - start };
      }
    }
  }

  /** Stops motion where the arm is now: target and setpoint become the measured position. */
  hold(): void {
    for (let j = 0; j < this.joints; j++) {
      this.target[j] = this.positionRad[j]!;
      this.setpoint[j] = this.positionRad[j]!;
    }
  }

  /**
   * Emergency hold: the setpoint becomes the measured position and is sent to every motor now,
   * not at the next control tick. Returns without waiting for anything.
   */
  stopNow(): void {
    this.hold();
    if (this.state !== 'active') return;
    for (let j = 0; j < this.joints; j++) {
      this.send(this.codec.command(j + 1, { positionRad: this.setpoint[j]!, velocityRadS: 0, kp: this.options.kp, kd: this.options.kd, torqueFfNm: 0 }));
    }
  }

  /** Holds, then disables every motor and stops the control loop. -> inactive. */
  async deactivate(): Promise<void> {
    if (this.state !== 'active') return;
    this.hold();
    this.loop?.cancel();
    this.loop = undefined;
    for (let j = 1; j <= this.joints; j++) this.send(this.codec.special(j, 'disable'));
    this.state = 'inactive';
  }

  async close(): Promise<void> {
    if (this.state === 'finalized') return;
    await this.deactivate();
    this.channel.removeListener('onMessage', this.onFrameBound);
    this.state = 'finalized';
  }

  private controlTick(): void {
    if (this.movesInProgress === 0 && this.setpoint.every((s, j) => s === this.target[j])) {
      this.idleTicks++;
      if (this.idleTicks < this.options.controlHz / this.options.holdHz) return;
    }
    this.idleTicks = 0;
    const step = this.speedRadS / this.options.controlHz;
    const refreshTicks = this.options.controlHz / this.options.holdHz;
    for (let j = 0; j < this.joints; j++) {
      const err = this.target[j]! - this.setpoint[j]!;
      // A joint standing still at its setpoint, settled there, waits for its next refresh.
      if (err === 0 && this.movesInProgress > 0 && Math.abs(this.positionRad[j]! - this.setpoint[j]!) <= SETTLED_RAD && ++this.quietTicks[j]! < refreshTicks) continue;
      this.quietTicks[j] = 0;
      this.setpoint[j] = this.setpoint[j]! + Math.max(-step, Math.min(step, err));
      this.send(
        this.codec.command(j + 1, {
          positionRad: this.setpoint[j]!,
          velocityRadS: 0,
          kp: this.options.kp,
          kd: this.options.kd,
          torqueFfNm: 0,
        }),
      );
    }
  }

  private send(frame: CanFrame): void {
    this.stats.tx++;
    this.channel.send(frame);
    this.options.trace?.(frame, this.clock.nowNs());
  }

  private onFrame(frame: CanFrame): void {
    this.lastRxMonoMs = monotonicMs();
    this.options.trace?.(frame, frame.tsNs ?? this.clock.nowNs());
    const d = this.codec.decode(frame);
    if (d.kind === 'feedback') {
      if (d.feedback.joint < 1 || d.feedback.joint > this.joints) {
        this.stats.malformed++; // a joint this arm does not have
        return;
      }
      this.stats.rx++;
      this.applyFeedback(d.feedback);
    } else if (d.kind === 'info') {
      this.stats.rx++;
      this.infoWaiters.get(d.info.joint)?.(d.info);
      this.infoWaiters.delete(d.info.joint);
    } else if (d.kind === 'unknown') {
      this.stats.malformed++;
    } else {
      this.stats.rx++; // a command from another host on the bus: seen and counted, not ours to act on
    }
  }

  private applyFeedback(f: JointFeedback): void {
    const j = f.joint - 1;
    this.positionRad[j] = f.positionRad;
    this.velocityRadS[j] = f.velocityRadS;
    this.torqueNm[j] = f.torqueNm;
    this.tempC[j] = Math.max(f.tempMosC, f.tempRotorC);
    this.feedbackSeen++;
    this.lastRxMs = this.clock.nowMs();
    for (const l of this.feedbackListeners) l(f);
    if (f.error !== 0) for (const l of this.faultListeners) l(f.joint, f.error, MOTOR_ERRORS[f.error] ?? `error ${f.error}`);
  }

  private requireState(expected: LifecycleState, what: string): void {
    if (this.state !== expected) {
      throw new DexhilError('DEVICE_STATE', `${this.name}: cannot ${what} in state '${this.state}' (needs '${expected}')`);
    }
  }
}
