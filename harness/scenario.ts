/**
 * What a scenario is: a task split into stages, each with a timeout and bounded attempts, sensor
 * checks declared as measurements, typed corrections, a written success predicate and a rubric.
 * Scenarios see only the Rig and the StageContext below.
 */
import type { TaskName } from '../drivers/sim/world/index.ts';
import type { DeviceNeed } from './rig-plan.ts';
import type { Rig } from './rig.ts';

/** The task was not done (a verdict, not a fault). `label` names what went wrong. */
export class TaskFailure extends Error {
  constructor(readonly label: string, detail?: string) {
    super(detail === undefined ? label : `${label}: ${detail}`);
    this.name = 'TaskFailure';
  }
}

export interface Trigger {
  /** The check that tripped, e.g. `wrist.fz`. */
  check: string;
  value?: number;
  unit?: string;
}

export interface StageContext {
  readonly rig: Rig;
  readonly trial: number;
  /** 1-based attempt number of this stage. */
  readonly attempt: number;
  readonly signal: AbortSignal;
  /** Trial-scoped scratch state shared between stages (e.g. the grip current that worked). */
  readonly memo: Map<string, number>;
  sleep(ms: number): Promise<void>;
  /** Records a measurement against its limits; returns whether it is within them. */
  measure(name: string, value: number, unit: string, limits?: { min?: number; max?: number }): boolean;
  /**
   * Runs a correction: something went wrong (the trigger) and `action` tries to recover,
   * returning whether it did. Bounded per trial by the scenario's `maxCorrections` for the kind:
   * past the bound the correction is not tried and this returns false.
   */
  correct(kind: string, trigger: Trigger, action: () => Promise<boolean>): Promise<boolean>;
  /** Corrections of this kind still allowed in this trial. */
  remaining(kind: string): number;
  /** Ends this attempt as a task failure. */
  fail(label: string, detail?: string): never;
}

export interface StageDef {
  name: string;
  /** What the stage does, for `dexhil list`. */
  description: string;
  timeoutMs: number;
  maxAttempts: number;
  /** Correction kind recorded when a failed attempt is retried (e.g. `regrasp`). */
  retryKind: string;
  /** Partial-credit weight in the rubric (default 1). */
  weight?: number;
  run(ctx: StageContext): Promise<void>;
}

export interface ScenarioDef {
  name: string;
  version: string;
  task: TaskName;
  description: string;
  /** The success predicate, in words; the last stage checks it. */
  success: string;
  /**
   * Who gives the verdict when every stage is done: `sensors` (default: the stages' checks are
   * the verdict) or `operator` (a person confirms or fails it; harness/operator.ts).
   */
  judge?: 'sensors' | 'operator';
  needs: readonly DeviceNeed[];
  trialTimeoutMs: number;
  maxCorrections: Readonly<Record<string, number>>;
  stages: readonly StageDef[];
}
