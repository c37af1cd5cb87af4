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

/** The current task world's methods, each bound to it (see callsOf). */
interface TaskCalls {
  update: TaskWorld['update'];
  wrench: TaskWorld['wrench'];
  tipForcesN: TaskWorld['tipForcesN'];
  holding: TaskWorld['holding'];
}

const NO_TASK: TaskCalls = {
  update: () => undefined,
  wrench: () => ZERO_WRENCH,
  tipForcesN: () => doubles(5),
  holding: () => false,
};

/**
 * A task world's methods bound to it. The sensor code that asks the world is optimised with the
 * world's code inlined; calling a task world's methods on it there would inline the first task
 * class met, and the next scenario's class would throw that code away (--trace-deopt: "wrong map",
 * in five functions at each scenario switch, each compiled again). A bound function is a new call
 * target for each trial, so those calls stay generic calls from the start and nothing is inlined
 * or thrown away at a switch.
 */
function callsOf(w: TaskWorld): TaskCalls {
  return { update: w.update.bind(w), wrench: w.wrench.bind(w), tipForcesN: w.tipForcesN.bind(w), holding: w.holding.bind(w) };
}

export class SimWorld {
  armQ: number[] = doubles(0);
  hand: HandCommand = { postureRad: doubles(15), currentLimitA: 0 };
  private task: TaskCalls = NO_TASK;
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
      this.task = NO_TASK;
      return { ok: false, reason: `automatic ${task} scene reset did not verify (simulated reset fault)` };
    }
    const ctx = { sites: this.sites, params: this.profile.tasks[task] ?? {}, ic: new Rng(icSeed), dyn: dyn.fork('world') };
    const world = task === 'zipper' ? new ZipperWorld(ctx) : task === 'fabric' ? new FabricWorld(ctx) : task === 'paper' ? new PaperWorld(ctx) : undefined;
    this.task = world === undefined ? NO_TASK : callsOf(world);
    this.lastUpdateMs = -1;
    return { ok: true };
  }

  private update(): void {
    const t = this.clock.nowMs();
    if (t === this.lastUpdateMs) return;
    this.lastUpdateMs = t;
    if (this.arm !== undefined) this.armQ = this.arm.jointsNow();
    this.task.update({ tMs: t, armQ: this.armQ, hand: this.hand });
  }

  wrench(mount: SensorMount): Wrench {
    this.update();
    return this.task.wrench(mount);
  }

  tipForcesN(): number[] {
    this.update();
    return this.task.tipForcesN();
  }

  holding(): boolean {
    this.update();
    return this.task.holding();
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
