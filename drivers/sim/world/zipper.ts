/**
 * Zipper world: a jacket zipper on the table. The robot grips the slider, inserts the pin into
 * the box (position control only: a misaligned pin jams and pushes back sideways), aligns the
 * slider with the teeth (a misaligned slider twists the wrist), pulls (fabric snags raise the pull
 * force; pulling through a snag tears the fabric), and the teeth either engage or split.
 *
 * Hidden per initial condition: box offset, teeth roll offset, snag positions.
 * Sensors: wrist F/T (jam force, lateral push-back, roll torque, pull force, separation force),
 * fingertips (slider in the pinch or not).
 */
import { doubles } from '../../arrays.ts';
import type { Wrench } from '../../types.ts';
import { handClosed, p, planarDist, site, type RobotState, type SensorMount, type TaskWorld, type WorldContext } from './types.ts';

export class ZipperWorld implements TaskWorld {
  readonly task = 'zipper';
  private readonly boxOffset: [number, number];
  private readonly rollOffset: number;
  private readonly snags: { at: number; cleared: boolean }[];
  private gripped = false;
  private wasClosed = false;
  private pinIn = false;
  private engaged: boolean | undefined;
  private progress = 0;
  private torn = false;
  private maxProgress = 0;
  private w: Wrench = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };
  private tips = doubles(5);

  constructor(private readonly ctx: WorldContext) {
    const sd = p(ctx.params, 'box_offset_sd_rad', 0.012);
    this.boxOffset = [ctx.ic.normal(0, sd), ctx.ic.normal(0, sd)];
    this.rollOffset = ctx.ic.normal(0, p(ctx.params, 'roll_offset_sd_rad', 0.08));
    const n = ctx.ic.poisson(p(ctx.params, 'snags_mean', 0.6));
    this.snags = Array.from({ length: n }, () => ({ at: ctx.ic.uniform(0.15, 0.85), cleared: false }));
  }

  update(r: RobotState): void {
    const { sites, dyn, params } = this.ctx;
    const q = r.armQ;
    const closed = handClosed(r.hand);
    const slider = site(sites, 'zipper.slider');
    if (closed && !this.wasClosed) {
      // Closing the pinch: it catches the slider if the hand is over it, most of the time.
      this.gripped = planarDist(q, slider) < 0.03 || this.pinIn ? dyn.chance(1 - p(params, 'slider_miss', 0.1)) : false;
    }
    if (!closed) this.gripped = false;
    this.wasClosed = closed;
    const w: Wrench = { fx: dyn.normal(0, 0.15), fy: dyn.normal(0, 0.15), fz: dyn.normal(0, 0.2), tx: dyn.normal(0, 0.005), ty: dyn.normal(0, 0.005), tz: dyn.normal(0, 0.004) };
    const box = site(sites, 'zipper.box');
    const boxIn = site(sites, 'zipper.box_in');
    const depth = clamp01(((box[2] ?? 0) - (q[2] ?? 0)) / ((box[2] ?? 0) - (boxIn[2] ?? 0)));
    const target = [(box[0] ?? 0) + this.boxOffset[0], (box[1] ?? 0) + this.boxOffset[1]];
    const ex = (q[0] ?? 0) - target[0]!;
    const ey = (q[1] ?? 0) - target[1]!;
    const err = Math.hypot(ex, ey);

    if (this.gripped && !this.pinIn && planarDist(q, box) < 0.08 && depth > 0.25) {
      if (err > p(params, 'insert_tol_rad', 0.01)) {
        // Jammed: the pin hits the box rim; the rim pushes back up and away from the offset.
        const k = p(params, 'jam_stiffness_n', 70);
        w.fz += k * (depth - 0.25);
        w.fx += (-ex / err) * 6 * depth;
        w.fy += (-ey / err) * 6 * depth;
      } else if (depth > 0.9) {
        this.pinIn = true;
      } else {
        w.fz += 2.5 * depth;
      }
    }

    const start = site(sites, 'zipper.start');
    const end = site(sites, 'zipper.end');
    const roll = (q[5] ?? 0) - ((start[5] ?? 0) + this.rollOffset);
    if (this.pinIn && this.gripped) {
      // The teeth twist the slider toward their line: torque about the tool axis.
      w.tz += -p(params, 'roll_stiffness_nm', 0.9) * roll;
      const span = (end[1] ?? 0) - (start[1] ?? 0);
      const s = clamp01(((q[1] ?? 0) - (start[1] ?? 0)) / span);
      if (this.engaged === undefined && s > 0.03) {
        const aligned = Math.abs(roll) < p(params, 'roll_tol_rad', 0.04);
        this.engaged = aligned && dyn.chance(p(params, 'teeth_engage', 0.95));
      }
      if (!this.torn) {
        let pull = s > 0.01 ? (this.engaged === false ? 1.8 : 5.5) + dyn.normal(0, 0.4) : 0;
        for (const snag of this.snags) {
          if (snag.cleared || s <= snag.at) continue;
          // Caught in the slider: the pull force climbs with every millimetre pulled past it.
          pull += p(params, 'snag_stiffness_n', 160) * (s - snag.at);
        }
        if (pull > p(params, 'tear_force_n', 40)) this.torn = true;
        this.maxProgress = Math.max(this.maxProgress, s);
        if (s < this.maxProgress - 0.03 && Math.abs(roll) > 0.06) {
          // Backed off and wiggling the slider: each caught snag behind may come free, once per try.
          for (const snag of this.snags) {
            if (!snag.cleared && snag.at > s && snag.at < this.maxProgress) snag.cleared = dyn.chance(p(params, 'snag_clear', 0.65));
          }
          this.maxProgress = s;
        }
        w.fx += pull;
        this.progress = s;
      }
    }
    const verify = site(sites, 'zipper.verify');
    if (this.progress > 0.97 && planarDist(q, verify) < 0.02) {
      // Side tug on the closed zipper: engaged teeth resist, split teeth give.
      w.fy += this.engaged && !this.torn ? p(params, 'separation_force_n', 9) + dyn.normal(0, 0.8) : 1.2 + dyn.normal(0, 0.3);
    }
    this.w = w;
    this.tips = this.gripped ? [3.2 + dyn.normal(0, 0.2), 3.0 + dyn.normal(0, 0.2), 0.05, 0.05, 0.05] : [dyn.normal(0, 0.03), dyn.normal(0, 0.03), 0, 0, 0];
  }

  wrench(mount: SensorMount): Wrench {
    return mount === 'wrist' ? this.w : { fx: 0, fy: 0, fz: 4.0, tx: 0, ty: 0, tz: 0 };
  }
  tipForcesN(): number[] {
    return this.tips;
  }
  holding(): boolean {
    return this.gripped;
  }
}

function clamp01(x: number): number {
  return Math.max(0, Math.min(1, Number.isFinite(x) ? x : 0));
}
