/**
 * The safety supervisor: the last line between a scenario and the hardware. It runs beside the
 * runner, not inside scenario code, and a scenario cannot switch it off (scenarios see only the
 * Rig API). It checks every sample as it arrives, in the driver's own receive callback:
 *
 * - force/torque sensors: force and torque magnitude, per-axis limits, temperature;
 * - arm: joint positions against their range, joint speed, motor temperature, motor error codes;
 * - hand: motor currents;
 * - every device: a heartbeat watchdog (nothing received for `watchdogPeriods` expected periods).
 *
 * On a breach it stops the rig at once (the arm's hold setpoints are written to every motor in the
 * same callback, the hand is told to hold), records the reaction time from the offending sample's
 * arrival to that write, and tells the runner, which emits a `fault` event with the value and the
 * limit and ends the trial as `error` with the fault's label and domain. Then, staged, it disables
 * the arm's motors and idles the hand (zero current). It stays tripped until the next trial.
 */
import type { JointFeedback } from '../drivers/arm/codec.ts';
import { forceMagnitudeN } from '../drivers/types.ts';
import { monotonicMs, type TimerHandle } from './clock.ts';
import type { RigConfig, SafetyConfig } from './config.ts';
import { DexhilError } from './errors.ts';
import type { FaultDomain } from './events.ts';
import type { Rig } from './rig.ts';
import type { Runner } from './runner.ts';

/** A trip: what was breached, where, by how much, and how fast the rig was stopped. */
export interface SafetyTrip {
  device: string;
  /** What was checked, e.g. `fz`, `force`, `joint3.velocity`, `heartbeat`. */
  quantity: string;
  value: number;
  limit: number;
  unit: string;
  domain: FaultDomain;
  /** Wall-clock time from the sample's arrival to the stop command's write, µs (undefined for a silence). */
  reactionUs: number | undefined;
  message: string;
}

/** The error a trip ends the trial with. */
export class SafetyStop extends DexhilError {
  constructor(readonly trip: SafetyTrip) {
    super('SAFETY', trip.message);
  }
  get label(): string {
    return `safety:${this.trip.device}.${this.trip.quantity}`;
  }
}

export interface DeviceRates {
  /** Expected period between messages, ms, per device name. */
  [device: string]: number;
}

export class SafetySupervisor {
  private tripped: SafetyTrip | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private watchdog: TimerHandle | undefined;
  private staged: Promise<void> = Promise.resolve();
  /** Every trip of the run, in order. */
  readonly trips: SafetyTrip[] = [];

  /** Devices whose link or firmware state is lost: reconnected before the next trial. */
  private readonly lost = new Set<string>();
  private readonly offReconnect: () => void;

  /**
   * `periods` gives each device's expected message period (ms) for the watchdog. `onTrip` is told
   * after the rig was stopped (the runner ends the trial).
   */
  constructor(
    private readonly rig: Rig,
    private readonly limits: SafetyConfig,
    periods: DeviceRates,
    private readonly onTrip: (stop: SafetyStop) => void,
    /** Told when a lost device is back (after a reconnect), with the attempts it took. */
    private readonly onRecovered: (device: string, attempts: number) => void = () => undefined,
  ) {
    this.bind();
    // A reconnected device has new driver objects: listen to those.
    this.offReconnect = rig.onReconnect(() => this.bind());
    this.startWatchdog(periods);
  }

  /** Subscribes to every device's samples, link and boot events (again after a reconnect). */
  private bind(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    const { rig, limits } = this;
    for (const s of rig.sensors) {
      const own = limits.sensors[s.name] ?? {};
      const forceN = own.forceN ?? limits.forceN;
      const torqueNm = own.torqueNm ?? limits.torqueNm;
      const tempC = own.tempC ?? limits.ftTempC;
      const axes = (['fx', 'fy', 'fz', 'tx', 'ty', 'tz'] as const).filter((a) => own[a] !== undefined);
      this.unsubscribe.push(
        s.driver.onSample((w) => {
          if (this.tripped !== undefined) return;
          const f = forceMagnitudeN(w);
          if (f > forceN) return this.trip(s.name, 'force', f, forceN, 'N', 'task', s.driver.lastRxMonoMs);
          const tq = Math.hypot(w.tx, w.ty, w.tz);
          if (tq > torqueNm) return this.trip(s.name, 'torque', tq, torqueNm, 'N·m', 'task', s.driver.lastRxMonoMs);
          for (const a of axes) {
            const v = Math.abs(w[a]);
            if (v > own[a]!) return this.trip(s.name, a, v, own[a]!, a.startsWith('f') ? 'N' : 'N·m', 'task', s.driver.lastRxMonoMs);
          }
          if (w.tempC > tempC) return this.trip(s.name, 'temperature', w.tempC, tempC, '°C', 'rig', s.driver.lastRxMonoMs);
        }),
      );
    }
    const arm = rig.arm;
    if (arm !== undefined) {
      const [lo, hi] = limits.jointRangeRad;
      this.unsubscribe.push(
        arm.onFeedback((f: JointFeedback) => {
          if (this.tripped !== undefined) return;
          const at = `joint${f.joint}`;
          if (f.positionRad < lo || f.positionRad > hi) return this.trip(arm.name, `${at}.position`, f.positionRad, f.positionRad < lo ? lo : hi, 'rad', 'task', arm.lastRxMonoMs);
          if (Math.abs(f.velocityRadS) > limits.jointVelocityRadS) return this.trip(arm.name, `${at}.velocity`, Math.abs(f.velocityRadS), limits.jointVelocityRadS, 'rad/s', 'task', arm.lastRxMonoMs);
          const t = Math.max(f.tempMosC, f.tempRotorC);
          if (t > limits.motorTempC) return this.trip(arm.name, `${at}.temperature`, t, limits.motorTempC, '°C', 'firmware', arm.lastRxMonoMs);
        }),
        arm.onFault((joint, code, text) => {
          if (this.tripped === undefined) this.trip(arm.name, `joint${joint}.error`, code, 0, `(${text})`, 'firmware', arm.lastRxMonoMs);
        }),
      );
    }
    const hand = rig.hand;
    if (hand !== undefined) {
      this.unsubscribe.push(
        hand.onState((h) => {
          if (this.tripped !== undefined) return;
          for (let i = 0; i < h.currentA.length; i++) {
            const c = Math.abs(h.currentA[i]!);
            if (c > limits.handCurrentA) return this.trip(hand.name, `motor${i + 1}.current`, c, limits.handCurrentA, 'A', 'task', hand.lastRxMonoMs);
          }
        }),
      );
    }
    // A link gone, or a device that restarted (and forgot its setup): stop, and reconnect later.
    for (const d of [...(rig.arm ? [rig.arm] : []), ...(rig.hand ? [rig.hand] : []), ...rig.sensors.map((x) => x.driver)]) {
      this.unsubscribe.push(d.onLinkLost((reason) => this.lose(d.name, 'link', reason, 'rig')));
      if ('onBoot' in d) this.unsubscribe.push(d.onBoot((fw) => this.lose(d.name, 'reboot', `${d.name}: the device restarted (BOOT, firmware ${fw}); what was set up is lost`, 'firmware')));
    }
  }

  private lose(device: string, quantity: 'link' | 'reboot', message: string, domain: FaultDomain): void {
    this.lost.add(device);
    if (this.tripped === undefined) this.trip(device, quantity, NaN, NaN, '', domain, undefined, message);
  }

  /**
   * The heartbeat watchdog: one timer, set for the earliest moment a device could have been silent
   * too long (its last message plus its allowance). While messages flow it fires about once per
   * allowance per device, not on a fixed tick (which would cost the simulated rig its speed).
   */
  private startWatchdog(periods: DeviceRates): void {
    const { rig, limits } = this;
    const clock = rig.clock;
    const allowance = Object.fromEntries(Object.entries(periods).map(([d, p]) => [d, Math.max(limits.watchdogMinMs, p * limits.watchdogPeriods)]));
    const devices = Object.keys(allowance);
    if (devices.length === 0) return;
    const shortest = Math.min(...Object.values(allowance));
    let expectAt = 0;
    const schedule = (): void => {
      const now = clock.nowMs();
      let due = Infinity;
      for (const d of devices) {
        const last = this.lastHeard(d);
        if (last !== undefined) due = Math.min(due, last + allowance[d]! + 1);
      }
      // Not heard yet, or already overdue (tripped, waiting for the next trial): look again later.
      if (!(due > now + 1)) due = now + shortest;
      expectAt = due;
      this.watchdog = clock.setTimer(due - now, fire);
    };
    const fire = (): void => {
      // A timer that fires late means this process was stalled (GC, a loaded machine), and the
      // devices' lines may be waiting unread in their ports: let them in before judging.
      if (clock.nowMs() - expectAt > 50) {
        expectAt = clock.nowMs() + 10;
        this.watchdog = clock.setTimer(10, fire);
        return;
      }
      this.checkHeartbeats(allowance);
      schedule();
    };
    schedule();
  }

  /** When a device was last heard, counting silence again from a recovery. */
  private lastHeard(device: string): number | undefined {
    const heard = this.rig.lastHeardMs(device);
    return heard === undefined ? undefined : Math.max(heard, this.heardSince);
  }

  /**
   * Before the next trial: waits until the staged stop of a trip is done, reconnects the devices
   * that were lost (with backoff, for up to `reconnectTimeoutS`), then re-arms (the trial's reset
   * brings the rig back to a known state).
   * @throws DexhilError RIG_LOST when a device does not come back in time.
   */
  async nextTrial(): Promise<void> {
    await this.settled();
    if (this.lost.size > 0) await this.recover();
    this.rearm();
  }

  private async recover(): Promise<void> {
    const clock = this.rig.clock;
    const deadline = clock.nowMs() + this.limits.reconnectTimeoutS * 1000;
    for (const device of [...this.lost]) {
      let wait = 250;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.rig.reconnect(device);
          this.lost.delete(device);
          this.onRecovered(device, attempt);
          break;
        } catch (err) {
          if (clock.nowMs() + wait > deadline) {
            throw new DexhilError('RIG_LOST', `${device} did not come back within ${this.limits.reconnectTimeoutS} s (${attempt} attempts; last: ${err instanceof Error ? err.message : String(err)})`, {
              hint: 'check its cable and power, then `dexhil run --resume <run-dir>`; safety.reconnectTimeoutS sets how long to wait',
            });
          }
          await clock.sleep(wait);
          wait = Math.min(wait * 2, 5000);
        }
      }
    }
    // Silent devices that were not lost outright come back by themselves or trip again.
    this.heardSince = clock.nowMs();
  }

  /** Resolves when the staged stop of the last trip is done. */
  settled(): Promise<void> {
    return this.staged;
  }

  /** Clears the trip: the next breach trips again. */
  rearm(): void {
    this.tripped = undefined;
  }

  /** Clock time from which silence is counted again (after a recovery). */
  private heardSince = -Infinity;

  private checkHeartbeats(allowance: Record<string, number>): void {
    if (this.tripped !== undefined) return;
    const now = this.rig.clock.nowMs();
    for (const [device, ms] of Object.entries(allowance)) {
      const last = this.lastHeard(device);
      if (last === undefined) continue; // not heard yet: bring-up is checked by the pre-flight
      if (now - last > ms) {
        this.lost.add(device); // silent: reopen it before the next trial
        this.trip(device, 'heartbeat', now - last, ms, 'ms silent', 'rig', undefined);
        return;
      }
    }
  }

  private trip(device: string, quantity: string, value: number, limit: number, unit: string, domain: FaultDomain, rxMonoMs: number | undefined, text?: string): void {
    // Stop first, measure after: the hold setpoints go out in this very callback.
    this.rig.arm?.stopNow();
    const written = monotonicMs();
    const reactionUs = rxMonoMs === undefined || rxMonoMs === 0 ? undefined : (written - rxMonoMs) * 1000;
    const hand = this.rig.hand;
    if (hand !== undefined) void hand.hold().catch(() => undefined); // HOLD is written now; its reply may never come
    const message =
      text !== undefined
        ? text
        : quantity === 'heartbeat'
        ? `${device}: nothing received for ${value.toFixed(0)} ms (allowed ${limit.toFixed(0)} ms)`
        : quantity.endsWith('.error')
          ? `${device}: ${quantity.replace('.error', '')} reports error ${value} ${unit}`
          : `${device}: ${quantity} ${value.toFixed(3)} ${unit} over the limit ${limit} ${unit}`;
    const trip: SafetyTrip = { device, quantity, value, limit, unit, domain, reactionUs, message };
    this.tripped = trip;
    this.trips.push(trip);
    // Staged: once the hold is out, disable the motors and take the current off the hand.
    this.staged = this.rig.clock.sleep(200).then(async () => {
      await this.rig.arm?.deactivate().catch(() => undefined);
      if (hand !== undefined) await hand.deactivate().catch(() => undefined);
    });
    this.onTrip(new SafetyStop(trip));
  }

  close(): void {
    this.offReconnect();
    this.watchdog?.cancel();
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

/**
 * The safety supervisor of a run's rig: every device watched at its configured rate (arms at
 * their hold rate, line devices at their stream rate); a trip ends the trial in progress, and with
 * `safety.onBreach: abort` the run after it. `runner` is asked at trip time (it is built after).
 */
export function superviseRig(rig: Rig, config: RigConfig, runner: () => Pick<Runner, 'interruptTrial' | 'stopAfterTrial'> | undefined, notice?: (text: string) => void): SafetySupervisor {
  const periods: DeviceRates = {};
  for (const [name, dev] of Object.entries(config.devices)) periods[name] = 1000 / (dev.kind === 'arm' ? dev.holdHz : dev.streamHz);
  return new SafetySupervisor(
    rig,
    config.safety,
    periods,
    (stop) => {
      runner()?.interruptTrial(stop);
      if (config.safety.onBreach === 'abort') runner()?.stopAfterTrial(`safety stop: ${stop.message} (safety.onBreach: abort)`);
    },
    (device, attempts) => notice?.(`${device} reconnected after ${attempts} attempt${attempts > 1 ? 's' : ''}`),
  );
}
