/**
 * Simulated arm: N joint motors in MIT mode on a CAN channel. Each motor answers every command
 * frame with a feedback frame, answers info requests, obeys enable/disable/zero, and tracks its
 * position setpoint with a first-order lag while enabled.
 * Not modelled: dynamics coupling between joints, gravity, gear backlash, bus-off.
 */
import type { Clock } from '../../harness/clock.ts';
import type { ArmCodec } from '../arm/codec.ts';
import { doubles } from '../arrays.ts';
import type { CanChannel } from '../transport/can.ts';
import type { CanFrame } from '../types.ts';
import type { FaultKnobs } from './faults.ts';
import type { Rng } from './rng.ts';
import type { ArmJoints, SimWorld } from './world/index.ts';

export interface ArmPeerOptions {
  joints: number;
  model: number;
  firmware: string;
  protocol: [number, number];
  serialBase: number;
  /** Position tracking time constant, ms. */
  tauMs: number;
}

interface Motor {
  enabled: boolean;
  q: number;
  v: number;
  pDes: number;
  kp: number;
  kd: number;
  zero: number;
  tempC: number;
  lastMs: number;
}

export class ArmPeer implements ArmJoints {
  private readonly motors: Motor[];
  private readonly onFrameBound = (f: CanFrame): void => this.onFrame(f);
  /** Clock time (ms) until which the motors are rebooting: deaf and silent. */
  private bootingUntilMs = -Infinity;
  framesSent = 0;

  constructor(
    private readonly channel: CanChannel,
    private readonly codec: ArmCodec,
    private readonly clock: Clock,
    private readonly options: ArmPeerOptions,
    readonly faults: FaultKnobs,
    private readonly rng: Rng,
    private readonly world: SimWorld,
    initialQ: readonly number[],
  ) {
    this.motors = Array.from({ length: options.joints }, (_, i) => ({
      enabled: false,
      q: initialQ[i] ?? 0,
      v: 0,
      pDes: initialQ[i] ?? 0,
      kp: 0,
      kd: 0,
      zero: 0,
      tempC: 32 + rng.normal(0, 1),
      lastMs: 0,
    }));
    channel.addListener('onMessage', this.onFrameBound);
    channel.start();
    world.attachArm(this);
  }

  /** Every joint's position now (each motor's state is only brought up to date when it is commanded). */
  jointsNow(): number[] {
    const now = this.clock.nowMs();
    const q = doubles(this.motors.length);
    for (let i = 0; i < this.motors.length; i++) {
      const m = this.motors[i]!;
      const dt = now - m.lastMs;
      q[i] = m.enabled && dt > 0 ? this.tracked(m, dt) : m.q;
    }
    return q;
  }

  /** Where an enabled motor's PD loop has taken it `dt` ms after its state was last brought up to date. */
  private tracked(m: Motor, dt: number): number {
    return m.pDes + (m.q - m.pDes) * Math.exp(-dt / this.options.tauMs);
  }

  private advance(m: Motor): void {
    const now = this.clock.nowMs();
    const dt = now - m.lastMs;
    m.lastMs = now;
    if (dt <= 0) return;
    if (!m.enabled) {
      m.v = 0;
      return;
    }
    const q0 = m.q;
    m.q = this.tracked(m, dt);
    m.v = ((m.q - q0) * 1000) / dt;
    const torque = m.kp * (m.pDes - m.q) - m.kd * m.v;
    m.tempC += (dt / 1000) * (0.02 * torque * torque - 0.01 * (m.tempC - 32));
  }

  /**
   * Every motor reboots (a firmware reset, a brown-out): nothing is heard or sent for `bootMs`,
   * then the motors answer again, disabled, with their zero offsets back to the factory zero. The
   * joints stay where they are (nothing holds them, nothing moves them in the simulation).
   */
  reboot(bootMs: number): void {
    this.bootingUntilMs = this.clock.nowMs() + bootMs;
    for (const m of this.motors) {
      this.advance(m);
      m.enabled = false;
      m.zero = 0;
    }
  }

  private onFrame(frame: CanFrame): void {
    if (this.clock.nowMs() < this.bootingUntilMs) return;
    const d = this.codec.decode(frame);
    if (d.kind === 'info-request') {
      const joints = d.joint === 0 ? this.motors.map((_, i) => i + 1) : [d.joint];
      for (const j of joints) {
        if (j < 1 || j > this.motors.length) continue;
        this.reply(
          this.codec.info({ joint: j, model: this.options.model, firmware: this.options.firmware, protocolMajor: this.options.protocol[0], protocolMinor: this.options.protocol[1], serial: (this.options.serialBase + j) & 0xffff }),
        );
      }
      return;
    }
    if (d.kind !== 'command' && d.kind !== 'special') return;
    const m = this.motors[d.joint - 1];
    if (m === undefined) return;
    this.advance(m);
    if (d.kind === 'special') {
      if (d.command === 'enable') {
        m.enabled = true;
        m.pDes = m.q;
      } else if (d.command === 'disable') m.enabled = false;
      else m.zero = m.q;
    } else if (m.enabled) {
      m.pDes = d.command.positionRad;
      m.kp = d.command.kp;
      m.kd = d.command.kd;
    }
    const torque = m.enabled ? Math.max(-18, Math.min(18, m.kp * (m.pDes - m.q) - m.kd * m.v)) : 0;
    this.reply(
      this.codec.feedback({
        joint: d.joint,
        error: m.tempC > 95 ? 1 : 0,
        positionRad: m.q - m.zero + this.rng.normal(0, 0.0003),
        velocityRadS: m.v,
        torqueNm: torque,
        tempMosC: Math.round(m.tempC - 2),
        tempRotorC: Math.round(m.tempC),
      }),
    );
  }

  private reply(frame: CanFrame): void {
    if (this.faults.stalled) return;
    if (this.faults.drop > 0 && this.rng.chance(this.faults.drop)) return;
    this.framesSent++;
    if (this.faults.latencyMs > 0) this.clock.setTimer(this.faults.latencyMs, () => this.channel.send(frame));
    else this.channel.send(frame);
  }

  stop(): void {
    this.channel.removeListener('onMessage', this.onFrameBound);
    this.channel.stop();
  }
}
