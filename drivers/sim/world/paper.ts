/**
 * Toilet-paper world (hotel bathroom routine): the roll sits in its holder, the sheet end hangs.
 * The robot pinches the sheet end, pulls a length out (the sheet may tear early), feels the sheet
 * for dirt or wrinkles (rough texture), tears at the perforation (clean: a force peak then a sharp
 * drop; ragged: a slow decay), presses a seal sticker (adhesion needs the right press force), and
 * seats the roll back in its holder (a misaligned roll jams).
 *
 * Hidden per initial condition: sheet-end offset, dirty outer sheet, tear strength, holder roll offset.
 */
import { doubles } from '../../arrays.ts';
import type { Wrench } from '../../types.ts';
import { handClosed, p, planarDist, site, type RobotState, type SensorMount, type TaskWorld, type WorldContext } from './types.ts';

export class PaperWorld implements TaskWorld {
  readonly task = 'paper';
  private readonly endOffset: number;
  private readonly dirty: boolean;
  private readonly tearStrengthN: number;
  private readonly holderOffset: number;
  private held = false;
  private wasClosed = false;
  private pulled = 0;
  private earlyTearAt: number | undefined;
  private tearState: 'none' | 'clean' | 'ragged' = 'none';
  private tearT: number | undefined;
  private peak = 0;
  private readonly holderStiffness: number;
  private pressMs = 0;
  private sealTried = false;
  private sealed = false;
  private seated = false;
  private lastT = 0;
  private w: Wrench = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };
  private tips = doubles(5);

  constructor(private readonly ctx: WorldContext) {
    this.endOffset = ctx.ic.normal(0, p(ctx.params, 'end_offset_sd_rad', 0.012));
    this.dirty = ctx.ic.chance(p(ctx.params, 'dirty_sheet', 0.4));
    this.tearStrengthN = ctx.ic.uniform(4.5, 7.5);
    this.holderOffset = ctx.ic.normal(0, p(ctx.params, 'holder_offset_sd_rad', 0.07));
    this.holderStiffness = ctx.ic.uniform(0.45, 1.4);
  }

  update(r: RobotState): void {
    const { sites, params, dyn } = this.ctx;
    const q = r.armQ;
    const dt = Math.max(0, r.tMs - this.lastT);
    this.lastT = r.tMs;
    const closed = handClosed(r.hand);
    const sheet = site(sites, 'paper.sheet');
    if (closed && !this.wasClosed) {
      const e = Math.abs((q[0] ?? 0) - (sheet[0] ?? 0) - this.endOffset);
      const nearSheet = Math.abs((q[1] ?? 0) - (sheet[1] ?? 0)) < 0.05 + this.pulled;
      this.held = nearSheet && e < p(params, 'pinch_tol_rad', 0.016) && dyn.chance(p(params, 'pinch_success', 0.94));
    }
    if (!closed) this.held = false;
    this.wasClosed = closed;
    const w: Wrench = { fx: dyn.normal(0, 0.08), fy: dyn.normal(0, 0.08), fz: dyn.normal(0, 0.1), tx: dyn.normal(0, 0.003), ty: dyn.normal(0, 0.003), tz: dyn.normal(0, 0.003) };
    let tips = [Math.abs(dyn.normal(0, 0.03)), Math.abs(dyn.normal(0, 0.03)), 0, 0, 0];

    const pullEnd = site(sites, 'paper.pull_end');
    const span = (pullEnd[1] ?? 0) - (sheet[1] ?? 0);
    const s = Math.max(0, ((q[1] ?? 0) - (sheet[1] ?? 0)) / span);
    if (this.held && this.tearState === 'none') {
      if (s > this.pulled) {
        if (this.earlyTearAt === undefined && this.pulled < 0.05 && dyn.chance(p(params, 'early_tear', 0.08))) this.earlyTearAt = dyn.uniform(0.2, 0.8);
        this.pulled = s;
        if (this.earlyTearAt !== undefined && s > this.earlyTearAt) {
          // The sheet tore off in the hand: the new end is hanging again, a bit lower.
          this.held = false;
          this.earlyTearAt = undefined;
          this.pulled = 0;
        }
      }
      if (this.held) {
        w.fx += 1.4 + dyn.normal(0, 0.15); // roll friction while pulling
        // Texture under the fingertips: a dirty or wrinkled sheet is rough.
        const rough = this.dirty && s > 0.3 ? p(params, 'rough_sd_n', 0.5) : 0.08;
        tips = [1.8 + dyn.normal(0, rough), 1.7 + dyn.normal(0, rough), 0, 0, 0];
      }
      const tear = site(sites, 'paper.tear');
      const tearSpan = (tear[2] ?? 0) - (pullEnd[2] ?? 0);
      const tension = this.held ? ((q[2] ?? 0) - (pullEnd[2] ?? 0)) / tearSpan : 0;
      if (this.held && tension > 0) {
        const f = 9 * tension;
        w.fz += f;
        if (f > this.tearStrengthN) {
          this.tearState = dyn.chance(p(params, 'ragged_tear', 0.15)) ? 'ragged' : 'clean';
          this.tearT = r.tMs;
          this.peak = f;
        }
      }
    } else if (this.tearState !== 'none' && this.tearT !== undefined) {
      // After the tear: a clean perforation lets go at once, a ragged tear decays slowly.
      const since = r.tMs - this.tearT;
      const tau = this.tearState === 'clean' ? 15 : 400;
      w.fz += this.peak * Math.exp(-since / tau);
      if (this.held) tips = [1.5 + dyn.normal(0, 0.05), 1.4 + dyn.normal(0, 0.05), 0, 0, 0];
    }
    if (this.tearState === 'ragged' && this.held && this.tearT !== undefined && r.tMs - this.tearT > 1000) {
      // Pinching and tearing again further along trims the ragged edge.
      const tear = site(sites, 'paper.tear');
      if ((q[2] ?? 0) - (tear[2] ?? 0) > 0.03) {
        this.tearState = dyn.chance(p(params, 'retear_success', 0.8)) ? 'clean' : 'ragged';
        this.tearT = r.tMs;
        this.peak = 3.5;
      }
    }

    const sticker = site(sites, 'paper.sticker');
    if (planarDist(q, sticker) < 0.02) {
      const depth = (sticker[2] ?? 0) - (q[2] ?? 0);
      const press = depth > 0 ? p(params, 'press_stiffness_n', 120) * depth : 0;
      w.fz += press;
      if (press > 6 && press < 15) this.pressMs += dt;
      if (!this.sealed && !this.sealTried && this.pressMs > 800) {
        // One press, one chance: the sticker either takes or it does not.
        this.sealTried = true;
        this.sealed = dyn.chance(p(params, 'seal_success', 0.9));
      }
      if (depth < -0.02 && depth > -0.06) w.fz -= this.sealed ? 1.6 + dyn.normal(0, 0.15) : 0.1; // peel test
      if (depth < -0.045) {
        this.pressMs = 0; // lifted clear: the next press is a new try
        this.sealTried = false;
      }
    }

    const holder = site(sites, 'paper.holder');
    if (planarDist(q, holder) < 0.03 && !this.seated) {
      const depth = (holder[2] ?? 0) - (q[2] ?? 0);
      const err = (q[5] ?? 0) - ((holder[5] ?? 0) + this.holderOffset);
      if (depth > 0.02) {
        if (Math.abs(err) > p(params, 'seat_tol_rad', 0.05)) {
          w.fz += p(params, 'jam_stiffness_n', 250) * (depth - 0.02);
          w.tz += -this.holderStiffness * err;
        } else if (depth > 0.06) {
          this.seated = true;
        }
      }
    }
    if (this.seated && planarDist(q, holder) < 0.03) w.fz += 1.0 + dyn.normal(0, 0.1); // the roll rests in its cradle
    this.w = w;
    this.tips = tips;
  }

  wrench(mount: SensorMount): Wrench {
    return mount === 'wrist' ? this.w : { fx: 0, fy: 0, fz: this.seated ? 1.2 : 0, tx: 0, ty: 0, tz: 0 };
  }
  tipForcesN(): number[] {
    return this.tips;
  }
  holding(): boolean {
    return this.held;
  }
}
