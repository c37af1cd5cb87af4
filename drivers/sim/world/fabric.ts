/**
 * Fabric world: a towel on a table plate that stands on a force/torque sensor. The robot finds a
 * corner by pinching where it should be (a corner may be off its nominal spot or tucked under),
 * drags it to flatten, and folds twice. Cloth is random: drags leave wrinkles, a pinch can slip
 * during a fold (more so with a weak grip), and a fold can land crooked.
 *
 * Hidden per initial condition: corner offsets, tucked corners, initial wrinkle, cloth slipperiness.
 * Sensors: fingertips (cloth in the pinch), wrist F/T (cloth weight while lifted), table F/T
 * (off-centre moments from bunched or crooked cloth).
 */
import { doubles } from '../../arrays.ts';
import type { Wrench } from '../../types.ts';
import { handClosed, p, planarDist, site, type RobotState, type SensorMount, type TaskWorld, type Vec, type WorldContext } from './types.ts';

const CORNERS = ['fabric.corner_a', 'fabric.corner_b'] as const;
/** `held` value for the folded edge (picked up again to straighten a crooked fold). */
const EDGE = -1;

export class FabricWorld implements TaskWorld {
  readonly task = 'fabric';
  private readonly offsets: [number, number][];
  private readonly tucked: boolean[];
  private readonly slipperiness: number;
  private wrinkle: number;
  private crooked = 0;
  private folds = 0;
  private held: number | undefined;
  private wasClosed = false;
  private carrying: { from: Vec; slipAt: number | undefined } | undefined;
  private w: Wrench = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };
  private table: Wrench = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };
  private tips = doubles(5);
  private dragStart: Vec | undefined;
  /** The current grip has already been dragged to the stretch line (one flattening per grip). */
  private dragged = false;

  constructor(private readonly ctx: WorldContext) {
    const sd = p(ctx.params, 'corner_offset_sd_rad', 0.012);
    this.offsets = CORNERS.map(() => [ctx.ic.normal(0, sd), ctx.ic.normal(0, sd)] as [number, number]);
    this.tucked = CORNERS.map(() => ctx.ic.chance(p(ctx.params, 'corner_tucked', 0.12)));
    this.wrinkle = ctx.ic.uniform(0.25, 1.0);
    this.slipperiness = ctx.ic.uniform(0.5, 1.5);
  }

  update(r: RobotState): void {
    const { sites, params, dyn } = this.ctx;
    const q = r.armQ;
    const closed = handClosed(r.hand);
    if (closed && !this.wasClosed) {
      this.held = this.pinch(q);
      this.dragged = false;
    }
    if (!closed) {
      if (this.held === EDGE) this.straighten();
      else if (this.held !== undefined && this.carrying !== undefined) this.place(q);
      this.held = undefined;
      this.carrying = undefined;
    }
    this.wasClosed = closed;

    if (this.held !== undefined && this.held !== EDGE) {
      const corner = site(sites, CORNERS[this.held]!);
      const lifted = (corner[2] ?? 0) - (q[2] ?? 0) < -0.05;
      if (lifted && this.carrying === undefined) {
        // Starting to carry the corner: will it slip on the way? A weaker grip slips more.
        const grip = Math.max(0.1, r.hand.currentLimitA);
        const pSlip = Math.min(0.9, p(params, 'slip_rate', 0.1) * this.slipperiness * (0.5 / grip));
        this.carrying = { from: q.slice(), slipAt: dyn.chance(pSlip) ? dyn.uniform(0.05, 0.25) : undefined };
      }
      if (this.carrying?.slipAt !== undefined && planarDist(q, this.carrying.from) > this.carrying.slipAt) {
        this.held = undefined; // slipped out of the pinch
        this.carrying = undefined;
      }
      if (!lifted && !this.dragged && planarDist(q, corner) > 0.06) this.dragStart ??= corner;
    }
    const stretch = site(sites, 'fabric.stretch');
    if (this.held !== undefined && this.dragStart !== undefined && planarDist(q, stretch) < 0.02) {
      // A drag under tension pulls wrinkles out, never all of them.
      this.wrinkle *= dyn.uniform(p(params, 'flatten_keep_min', 0.2), p(params, 'flatten_keep_max', 0.75));
      this.dragStart = undefined;
      this.dragged = true;
    }
    const weightN = p(params, 'cloth_weight_n', 3.0);
    const liftedShare = this.carrying !== undefined ? 0.45 : 0;
    this.w = { fx: dyn.normal(0, 0.1), fy: dyn.normal(0, 0.1), fz: -weightN * liftedShare + dyn.normal(0, 0.12), tx: dyn.normal(0, 0.004), ty: dyn.normal(0, 0.004), tz: dyn.normal(0, 0.003) };
    // Bunched cloth moves the centre of mass: the plate sensor sees it as moments.
    const bunch = this.wrinkle * 0.5 + this.crooked * 6;
    this.table = { fx: dyn.normal(0, 0.05), fy: dyn.normal(0, 0.05), fz: weightN * (1 - liftedShare) + dyn.normal(0, 0.05), tx: bunch * 0.6 + dyn.normal(0, 0.01), ty: bunch * 0.8 + dyn.normal(0, 0.01), tz: dyn.normal(0, 0.005) };
    this.tips = this.held !== undefined ? [2.4 + dyn.normal(0, 0.25), 2.2 + dyn.normal(0, 0.25), 0.05, 0, 0] : [Math.abs(dyn.normal(0, 0.04)), Math.abs(dyn.normal(0, 0.04)), 0, 0, 0];
  }

  /** Which corner a pinch at q catches, if any. */
  private pinch(q: Vec): number | undefined {
    const { sites, params, dyn } = this.ctx;
    if (this.folds > 0 && planarDist(q, site(sites, 'fabric.fold_end')) < 0.03) return EDGE;
    for (let i = 0; i < CORNERS.length; i++) {
      const c = site(sites, CORNERS[i]!);
      const e = Math.hypot((q[0] ?? 0) - (c[0] ?? 0) - this.offsets[i]![0], (q[1] ?? 0) - (c[1] ?? 0) - this.offsets[i]![1]);
      if (e < 0.05 && !this.tucked[i] && e < p(params, 'pinch_tol_rad', 0.016) && dyn.chance(p(params, 'pinch_success', 0.95))) return i;
      // Pinching near a tucked corner shakes it loose for the next try.
      if (e < 0.05 && this.tucked[i] && dyn.chance(0.6)) this.tucked[i] = false;
    }
    return undefined;
  }

  /** Releasing a carried corner at the fold line completes a fold, straight or not. */
  private place(q: Vec): void {
    const { sites, params, dyn } = this.ctx;
    const foldEnd = site(sites, 'fabric.fold_end');
    if (planarDist(q, foldEnd) < 0.04) {
      this.folds++;
      this.crooked = Math.abs(dyn.normal(0, p(params, 'crooked_sd', 0.02))) + this.wrinkle * 0.02 + planarDist(q, foldEnd) * 0.3;
    }
  }

  /** Lifting the folded edge and laying it again straightens it, usually. */
  private straighten(): void {
    if (this.ctx.dyn.chance(p(this.ctx.params, 'refold_success', 0.75))) this.crooked *= 0.3;
  }

  wrench(mount: SensorMount): Wrench {
    return mount === 'wrist' ? this.w : this.table;
  }
  tipForcesN(): number[] {
    return this.tips;
  }
  holding(): boolean {
    return this.held !== undefined;
  }
}
