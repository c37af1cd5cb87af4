/**
 * The world host: one per simulated rig. It holds what the devices physically do (arm joint
 * positions, the hand's command) and the current task world, and answers the simulated sensors.
 */
import type { Clock } from '../../../harness/clock.ts';
import { doubles, doublesFrom } from '../../arrays.ts';
import type { Wrench } from '../../types.ts';
import { Rng } from '../rng.ts';
import { FabricWorld } from './fabric.ts';
import { PaperWorld } from './paper.ts';
import type { HandCommand, SensorMount, Sites, TaskWorld, WorldParams } from './types.ts';
import { ZERO_WRENCH } from './types.ts';
import { ZipperWorld } from './zipper.ts';

export type TaskName = 'zipper' | 'fabric' | 'paper' | 'none';

export interface WorldProfile {
  /** Probability that an automatic scene reset fails (the trial is then invalid, not failed). */
  resetFailure: number;
  tasks: Readonly<Record<string, WorldParams>>;
}

export interface ResetResult {
  ok: boolean;
  reason?: string;
}

/** A simulated arm as the world sees it. */
export interface ArmJoints {
  /** Every joint's position now, rad (a fresh array each call). */
  jointsNow(): number[];
}

export class SimWorld {
  armQ: number[] = doubles(0);
  hand: HandCommand = { postureRad: doubles(15), currentLimitA: 0 };
  private task: TaskWorld | undefined;
  private lastUpdateMs = -1;
  private arm: ArmJoints | undefined;
  private readonly sites: Sites;

  /**
   * `clock` is the rig's: the world moves on its time. (A clock, not a `() => number`: the sensor
   * code that asks the world is optimised once for every rig, where a closure made per rig would
   * be a new call target for each trial block's rig.)
   */
  constructor(
    sites: Sites,
    private readonly profile: WorldProfile,
    private readonly clock: Pick<Clock, 'nowMs'>,
  ) {
    // As doubles, like the arm's joint angles they are compared with (drivers/arrays.ts).
    this.sites = Object.fromEntries(Object.entries(sites).map(([name, at]) => [name, doublesFrom(at)]));
  }

  /**
   * Sets up the scene for a trial: `icSeed` fixes the initial condition (same id, same scene),
   * `dynSeed` what happens during the trial.
   */
  reset(task: TaskName, icSeed: number, dynSeed: number): ResetResult {
    const dyn = new Rng(dynSeed);
    if (dyn.fork('reset').chance(this.profile.resetFailure)) {
      this.task = undefined;
      return { ok: false, reason: `automatic ${task} scene reset did not verify (simulated reset fault)` };
    }
    const ctx = { sites: this.sites, params: this.profile.tasks[task] ?? {}, ic: new Rng(icSeed), dyn: dyn.fork('world') };
    this.task = task === 'zipper' ? new ZipperWorld(ctx) : task === 'fabric' ? new FabricWorld(ctx) : task === 'paper' ? new PaperWorld(ctx) : undefined;
    this.lastUpdateMs = -1;
    return { ok: true };
  }

  private update(): void {
    const t = this.clock.nowMs();
    if (t === this.lastUpdateMs) return;
    this.lastUpdateMs = t;
    if (this.arm !== undefined) this.armQ = this.arm.jointsNow();
    this.task?.update({ tMs: t, armQ: this.armQ, hand: this.hand });
  }

  wrench(mount: SensorMount): Wrench {
    this.update();
    return this.task?.wrench(mount) ?? ZERO_WRENCH;
  }

  tipForcesN(): number[] {
    this.update();
    return this.task?.tipForcesN() ?? doubles(5);
  }

  holding(): boolean {
    this.update();
    return this.task?.holding() ?? false;
  }

  /**
   * The simulated arm, asked where its joints are each time the world moves on: the joints move
   * between the commands the host sends, and the host sends fewer to joints that stand still
   * (drivers/arm/driver.ts). (An object, not a closure, for the reason the clock is one.)
   */
  attachArm(arm: ArmJoints): void {
    this.arm = arm;
    this.lastUpdateMs = -1;
    this.update();
  }

  handCommanded(cmd: HandCommand): void {
    this.hand = cmd;
    this.lastUpdateMs = -1;
    this.update();
  }
}
