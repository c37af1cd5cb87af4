/**
 * The simulated task world: hidden physical state behind the simulated devices. Device peers
 * feed it what the robot does (arm joint positions, hand commands) and read back what sensors
 * would feel (wrenches, fingertip forces). Scenario code never sees it: it only sees sensors.
 *
 * Not modelled: real kinematics and contact mechanics. Task sites are points in joint space
 * (the work cell file); the tool position is the first three joints and the tool roll is joint 6.
 */
import type { Wrench } from '../../types.ts';
import type { Rng } from '../rng.ts';

export type Vec = readonly number[];
export type SensorMount = 'wrist' | 'table';

export interface HandCommand {
  /** The 15 actuated targets, rad. */
  postureRad: Vec;
  currentLimitA: number;
}

/** What the world sees of the robot at an instant. */
export interface RobotState {
  tMs: number;
  armQ: Vec;
  hand: HandCommand;
}

/** Per-task world parameters from the firmware/sim profile (probabilities, scales). */
export type WorldParams = Readonly<Record<string, number>>;

export interface TaskWorld {
  readonly task: string;
  /** Advances the world to `robot.tMs` given what the robot is doing now. */
  update(robot: RobotState): void;
  wrench(mount: SensorMount): Wrench;
  /** Fingertip normal forces, N, thumb..little. */
  tipForcesN(): number[];
  /** True when something in the hand stops the fingers closing (currents rise to the limit). */
  holding(): boolean;
}

export type Sites = Readonly<Record<string, Vec>>;

export interface WorldContext {
  sites: Sites;
  params: WorldParams;
  /** Draws for the initial condition (same id, same scene). */
  ic: Rng;
  /** Draws for what happens during the trial. */
  dyn: Rng;
}

/**
 * No load. Read-only by its type, not frozen: a frozen object has a hidden class of its own, and
 * the sensor code that meets it beside the task worlds' wrenches was compiled again for it.
 */
export const ZERO_WRENCH: Readonly<Wrench> = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };

export function site(sites: Sites, name: string): Vec {
  const s = sites[name];
  if (s === undefined) throw new Error(`work cell has no site '${name}'`);
  return s;
}

/** Distance in the tool plane (joints 1 and 2) between the arm and a point. */
export function planarDist(q: Vec, p: Vec): number {
  return Math.hypot((q[0] ?? 0) - (p[0] ?? 0), (q[1] ?? 0) - (p[1] ?? 0));
}

/** Distance over the first three joints (tool position). */
export function toolDist(q: Vec, p: Vec): number {
  return Math.hypot((q[0] ?? 0) - (p[0] ?? 0), (q[1] ?? 0) - (p[1] ?? 0), (q[2] ?? 0) - (p[2] ?? 0));
}

/** Is the hand commanded closed on something (a pinch or power posture with grip current)? */
export function handClosed(h: HandCommand): boolean {
  const flex = (h.postureRad[2] ?? 0) + (h.postureRad[4] ?? 0);
  return flex > 0.8 && h.currentLimitA >= 0.15;
}

export function p(params: WorldParams, key: string, fallback: number): number {
  return params[key] ?? fallback;
}
