/**
 * Zipper: grip the slider, insert the pin into the box by feel, align the slider with the teeth,
 * pull it closed through fabric snags, and check that the teeth engaged.
 */
import type { ScenarioDef } from '../harness/scenario.ts';
import { average, moveTo, openHand, pinchBySearch, wrist } from './skills.ts';

const JAM_N = 12;
const SNAG_N = 16;
const ROLL_TOL_NM = 0.03;
const ROLL_STIFFNESS = 0.9; // N·m/rad, from bench calibration of the jig

export const zipper: ScenarioDef = {
  name: 'zipper',
  version: '1.0.0',
  task: 'zipper',
  description: 'Close a jacket zipper: pin into box by position control, slider aligned, pulled through snags',
  success: `slider pulled to the top stop and a side tug on the closed zipper resists with >= 5 N (teeth engaged)`,
  needs: ['arm', 'hand', 'wrist_ft'],
  trialTimeoutMs: 120_000,
  maxCorrections: { regrasp: 3, realign: 8, 'snag-recovery': 3, reinsert: 1 },
  stages: [
    {
      name: 'grasp-slider',
      description: 'pinch the slider tab; check fingertip force',
      timeoutMs: 20_000,
      maxAttempts: 2,
      retryKind: 'regrasp',
      async run(ctx) {
        if (!(await pinchBySearch(ctx, 'zipper.slider', 'slider', 2.0, 0.4))) ctx.fail('slider-not-gripped');
      },
    },
    {
      name: 'insert-pin',
      description: 'lower the pin into the box; on a jam, follow the side force and try again',
      timeoutMs: 30_000,
      maxAttempts: 2,
      retryKind: 'reinsert',
      async run(ctx) {
        let d0 = 0;
        let d1 = 0;
        const descend = async (): Promise<boolean> => {
          await moveTo(ctx, 'zipper.box', { 0: d0, 1: d1 });
          const stop = await moveTo(ctx, 'zipper.box_in', { 0: d0, 1: d1 }, { speedRadS: 0.15, guard: () => (wrist(ctx).fz > JAM_N ? 'jam' : undefined) });
          return stop === undefined;
        };
        let inserted = await descend();
        let step = 0.01;
        while (!inserted) {
          const w = wrist(ctx);
          const lateral = Math.hypot(w.fx, w.fy);
          const recovered = await ctx.correct('realign', { check: 'wrist.fz', value: w.fz, unit: 'N' }, async () => {
            // The rim pushes the pin toward the hole: step that way, smaller each time.
            d0 += (step * w.fx) / Math.max(lateral, 1e-6);
            d1 += (step * w.fy) / Math.max(lateral, 1e-6);
            step = Math.max(0.003, step * 0.6);
            return descend();
          });
          if (recovered) inserted = true;
          else if (ctx.remaining('realign') === 0) break;
        }
        ctx.measure('insert.force', wrist(ctx).fz, 'N', { max: JAM_N });
        if (!inserted) ctx.fail('pin-jammed');
      },
    },
    {
      name: 'align-slider',
      description: 'read the twist on the slider and roll the wrist until the teeth line up',
      timeoutMs: 15_000,
      maxAttempts: 1,
      retryKind: 'realign',
      async run(ctx) {
        let roll = 0;
        let tz = await average(ctx, () => wrist(ctx).tz);
        while (Math.abs(tz) > ROLL_TOL_NM) {
          const before = tz;
          const ok = await ctx.correct('realign', { check: 'wrist.tz', value: before, unit: 'N·m' }, async () => {
            roll += before / ROLL_STIFFNESS;
            await moveTo(ctx, 'zipper.start', { 5: roll });
            tz = await average(ctx, () => wrist(ctx).tz);
            return Math.abs(tz) <= ROLL_TOL_NM;
          });
          if (!ok && ctx.remaining('realign') === 0) break;
        }
        ctx.memo.set('roll', roll);
        if (!ctx.measure('align.twist', tz, 'N·m', { min: -ROLL_TOL_NM, max: ROLL_TOL_NM })) ctx.fail('slider-misaligned');
      },
    },
    {
      name: 'pull',
      description: 'pull the slider to the top; on a snag back off, wiggle and resume',
      timeoutMs: 40_000,
      maxAttempts: 1,
      retryKind: 'snag-recovery',
      async run(ctx) {
        const roll = ctx.memo.get('roll') ?? 0;
        let peak = 0;
        const forces: number[] = [];
        const guard = (): string | undefined => {
          const fx = wrist(ctx).fx;
          forces.push(fx);
          peak = Math.max(peak, fx);
          return fx > SNAG_N ? 'snag' : undefined;
        };
        let stop = await moveTo(ctx, 'zipper.end', { 5: roll }, { speedRadS: 0.08, guard });
        while (stop === 'snag') {
          const fx = wrist(ctx).fx;
          if (ctx.remaining('snag-recovery') === 0) break;
          await ctx.correct('snag-recovery', { check: 'wrist.fx', value: fx, unit: 'N' }, async () => {
            const q = ctx.rig.arm!.positionRad.slice();
            const back = q.map((v, j) => (j === 1 ? v - 0.03 : v));
            await ctx.rig.arm!.moveTo(back, { toleranceRad: 0.004, timeoutMs: 5000, signal: ctx.signal });
            for (const wiggle of [0.1, -0.1, 0]) await ctx.rig.arm!.moveTo(back.map((v, j) => (j === 5 ? roll + wiggle : v)), { toleranceRad: 0.01, timeoutMs: 5000, signal: ctx.signal });
            stop = await moveTo(ctx, 'zipper.end', { 5: roll }, { speedRadS: 0.08, guard });
            return stop !== 'snag';
          });
        }
        ctx.measure('pull.peak_force', peak, 'N', { max: SNAG_N + 6 });
        if (stop === 'snag') ctx.fail('snag-unrecovered');
        const sorted = forces.slice().sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
        if (!ctx.measure('pull.median_force', median, 'N', { min: 3 })) ctx.fail('teeth-not-engaged', 'the slider ran free');
      },
    },
    {
      name: 'verify',
      description: 'tug the closed zipper sideways: engaged teeth resist',
      timeoutMs: 15_000,
      maxAttempts: 1,
      retryKind: 'retry',
      async run(ctx) {
        await moveTo(ctx, 'zipper.verify', { 5: ctx.memo.get('roll') ?? 0 });
        const fy = await average(ctx, () => wrist(ctx).fy, 300);
        const ok = ctx.measure('verify.separation_force', fy, 'N', { min: 5 });
        await openHand(ctx);
        if (!ok) ctx.fail('teeth-split');
      },
    },
  ],
};
