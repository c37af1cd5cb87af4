/**
 * Toilet-paper tidying (hotel routine): pinch the sheet end, pull a length out, feel it for dirt
 * or wrinkles and tear that part off at the perforation, press a seal sticker, seat the roll.
 */
import type { ScenarioDef, StageContext } from '../harness/scenario.ts';
import { average, moveTo, openHand, pinch, pinchBySearch, pinchForceN, wrist } from './skills.ts';

const LOST_N = 0.8;
const ROUGH_SD_N = 0.25;
const SEAT_JAM_N = 10;

function tipStd(samples: number[]): number {
  const m = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return Math.sqrt(samples.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, samples.length - 1));
}

/** Pulls the sheet up until it tears; returns the fall-off ratio 100 ms after the peak. */
async function tear(ctx: StageContext, siteOffset: number): Promise<number> {
  let peak = 0;
  let prev = 0;
  await moveTo(ctx, 'paper.tear', { 2: siteOffset }, {
    speedRadS: 0.3,
    guard: () => {
      const fz = wrist(ctx).fz;
      peak = Math.max(peak, fz);
      const falling = peak > 2.5 && fz < prev - 0.2;
      prev = fz;
      return falling ? 'torn' : undefined;
    },
  });
  await ctx.sleep(100);
  ctx.measure('tear.peak_force', peak, 'N', { min: 2.5, max: 12 });
  return peak > 0 ? wrist(ctx).fz / peak : 1;
}

export const toiletPaper: ScenarioDef = {
  name: 'toilet-paper',
  version: '1.0.0',
  task: 'paper',
  description: 'Tidy a toilet roll: pull the sheet, tear off a dirty part, seal it, seat the roll',
  success: 'a clean edge (dirty part torn off at the perforation), the seal stuck (peel test), the roll seated in its holder',
  needs: ['arm', 'hand', 'wrist_ft'],
  trialTimeoutMs: 150_000,
  maxCorrections: { regrasp: 4, retear: 2, reapply: 1, realign: 5 },
  stages: [
    {
      name: 'grasp-sheet',
      description: 'pinch the hanging sheet end, searching by feel',
      timeoutMs: 25_000,
      maxAttempts: 1,
      retryKind: 'regrasp',
      async run(ctx) {
        if (!(await pinchBySearch(ctx, 'paper.sheet', 'sheet', 1.2))) ctx.fail('sheet-not-found');
      },
    },
    {
      name: 'pull-sheet',
      description: 'pull a length of paper out, feeling its texture; regrasp if it tears off early',
      timeoutMs: 30_000,
      maxAttempts: 3,
      retryKind: 'regrasp',
      async run(ctx) {
        if (pinchForceN(ctx) < LOST_N && !(await pinchBySearch(ctx, 'paper.sheet', 'sheet', 1.2))) ctx.fail('sheet-not-found');
        const tips: number[] = [];
        const off = ctx.rig.hand!.onState((s) => tips.push(s.tipForceN[0] ?? 0));
        const stop = await moveTo(ctx, 'paper.pull_end', {}, { speedRadS: 0.3, guard: () => (pinchForceN(ctx) < LOST_N ? 'lost' : undefined) });
        off();
        if (stop === 'lost') {
          await openHand(ctx);
          await moveTo(ctx, 'paper.sheet', { 2: 0.05 });
          ctx.fail('sheet-torn-early');
        }
        const rough = tipStd(tips.slice(Math.floor(tips.length / 2)));
        ctx.measure('sheet.roughness', rough, 'N');
        ctx.memo.set('dirty', rough > ROUGH_SD_N ? 1 : 0);
      },
    },
    {
      name: 'tear',
      description: 'tear the dirty part off at the perforation; a ragged tear is trimmed again',
      timeoutMs: 25_000,
      maxAttempts: 1,
      retryKind: 'retear',
      async run(ctx) {
        if (ctx.memo.get('dirty') !== 1) {
          ctx.measure('tear.needed', 0, 'bool', { max: 1 });
          return;
        }
        let ratio = await tear(ctx, 0);
        while (ratio > 0.3 && ctx.remaining('retear') > 0) {
          const before = ratio;
          await ctx.correct('retear', { check: 'tear.falloff_ratio', value: before, unit: '1' }, async () => {
            await pinch(ctx, 0.4);
            await moveTo(ctx, 'paper.tear', { 2: 0.05 }, { speedRadS: 0.3 });
            await ctx.sleep(100);
            ratio = wrist(ctx).fz / 3.5;
            return ratio <= 0.3;
          });
        }
        const ok = ctx.measure('tear.falloff_ratio', ratio, '1', { max: 0.3 });
        await openHand(ctx);
        if (!ok) ctx.fail('tear-ragged');
      },
    },
    {
      name: 'apply-seal',
      description: 'press the seal sticker with 6-15 N for a second, then peel-test it',
      timeoutMs: 25_000,
      maxAttempts: 2,
      retryKind: 'reapply',
      async run(ctx) {
        await moveTo(ctx, 'paper.sticker', { 2: 0.05 });
        await moveTo(ctx, 'paper.sticker', { 2: -0.12 }, { speedRadS: 0.05, guard: () => (wrist(ctx).fz > 9.5 ? 'pressed' : undefined) });
        const press = await average(ctx, () => wrist(ctx).fz, 1000, 50);
        ctx.measure('seal.press_force', press, 'N', { min: 6, max: 15 });
        await moveTo(ctx, 'paper.sticker', { 2: 0.04 }, { speedRadS: 0.2 });
        const peel = await average(ctx, () => wrist(ctx).fz, 200);
        const ok = ctx.measure('seal.peel_force', peel, 'N', { max: -0.8 });
        await moveTo(ctx, 'paper.sticker', { 2: 0.08 });
        if (!ok) ctx.fail('seal-not-stuck');
      },
    },
    {
      name: 'seat-roll',
      description: 'lower the roll into its holder; on a jam read the twist, roll the wrist, retry',
      timeoutMs: 30_000,
      maxAttempts: 1,
      retryKind: 'realign',
      async run(ctx) {
        let roll = 0;
        const lower = async (): Promise<boolean> => {
          await moveTo(ctx, 'paper.holder', { 5: roll });
          return (await moveTo(ctx, 'paper.holder', { 2: -0.08, 5: roll }, { speedRadS: 0.1, guard: () => (wrist(ctx).fz > SEAT_JAM_N ? 'jam' : undefined) })) === undefined;
        };
        let seated = await lower();
        while (!seated && ctx.remaining('realign') > 0) {
          const w = wrist(ctx);
          seated = await ctx.correct('realign', { check: 'wrist.fz', value: w.fz, unit: 'N' }, async () => {
            roll += w.tz / 0.8;
            return lower();
          });
        }
        if (!seated) ctx.fail('roll-jammed');
        const rest = await average(ctx, () => wrist(ctx).fz, 300);
        if (!ctx.measure('roll.rest_force', rest, 'N', { min: 0.5, max: 3 })) ctx.fail('roll-not-seated');
      },
    },
  ],
};
