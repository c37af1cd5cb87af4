/**
 * Fold a towel: find a corner by feel, flatten it by dragging, fold twice, each fold checked on
 * the plate F/T sensor (bunched or crooked cloth moves the centre of mass).
 */
import type { ScenarioDef, StageContext } from '../harness/scenario.ts';
import { average, moveTo, openHand, pinch, pinchBySearch, pinchForceN, table } from './skills.ts';

const FLAT_NM = 0.16;
const SQUARE_NM = 0.33;
const SLIP_N = 0.8;

function plateMoment(ctx: StageContext): number {
  const t = table(ctx);
  return Math.hypot(t.tx, t.ty);
}

async function fold(ctx: StageContext, corner: string, memoKey: string): Promise<void> {
  const grip = ctx.memo.get('grip') ?? 0.3;
  if (!(await pinchBySearch(ctx, corner, memoKey, 1.5, grip))) ctx.fail('corner-not-found');
  const slip = await moveTo(ctx, corner, { 2: 0.12 }, { guard: () => (pinchForceN(ctx) < SLIP_N ? 'slip' : undefined) });
  const carry = slip ?? (await moveTo(ctx, 'fabric.fold_end', { 2: 0.12 }, { speedRadS: 0.5, guard: () => (pinchForceN(ctx) < SLIP_N ? 'slip' : undefined) }));
  if (carry === 'slip') {
    ctx.memo.set('grip', Math.min(0.9, grip + 0.2)); // hold tighter next time
    await openHand(ctx);
    ctx.fail('corner-slipped');
  }
  await moveTo(ctx, 'fabric.fold_end');
  await openHand(ctx);
  await moveTo(ctx, 'fabric.fold_end', { 2: 0.1 });
  let m = await average(ctx, () => plateMoment(ctx));
  while (m > SQUARE_NM && ctx.remaining('refold') > 0) {
    const before = m;
    await ctx.correct('refold', { check: 'table.moment', value: before, unit: 'N·m' }, async () => {
      await moveTo(ctx, 'fabric.fold_end');
      await pinch(ctx, 0.3);
      await moveTo(ctx, 'fabric.fold_end', { 2: 0.06 });
      await moveTo(ctx, 'fabric.fold_end');
      await openHand(ctx);
      await moveTo(ctx, 'fabric.fold_end', { 2: 0.1 });
      m = await average(ctx, () => plateMoment(ctx));
      return m <= SQUARE_NM;
    });
  }
  if (!ctx.measure('fold.plate_moment', m, 'N·m', { max: SQUARE_NM })) ctx.fail('fold-crooked');
}

export const foldFabric: ScenarioDef = {
  name: 'fold-fabric',
  version: '1.0.0',
  task: 'fabric',
  description: 'Fold a towel in two stages: find a corner by feel, flatten, fold, fold again',
  success: `two folds laid and the plate moment <= ${SQUARE_NM} N·m after each (cloth flat and square)`,
  needs: ['arm', 'hand', 'wrist_ft', 'table_ft'],
  trialTimeoutMs: 180_000,
  maxCorrections: { regrasp: 5, reflatten: 3, refold: 2 },
  stages: [
    {
      name: 'find-corner',
      description: 'pinch where corner A should be, searching around it until cloth is felt',
      timeoutMs: 30_000,
      maxAttempts: 1,
      retryKind: 'regrasp',
      async run(ctx) {
        if (!(await pinchBySearch(ctx, 'fabric.corner_a', 'corner_a', 1.5))) ctx.fail('corner-not-found');
      },
    },
    {
      name: 'flatten',
      description: 'drag the corner outward under tension until the plate moment says flat',
      timeoutMs: 45_000,
      maxAttempts: 1,
      retryKind: 'reflatten',
      async run(ctx) {
        const drag = async (): Promise<number> => {
          await moveTo(ctx, 'fabric.stretch', {}, { speedRadS: 0.4 });
          await openHand(ctx);
          await moveTo(ctx, 'fabric.stretch', { 2: 0.1 });
          return average(ctx, () => plateMoment(ctx));
        };
        let m = await drag();
        while (m > FLAT_NM && ctx.remaining('reflatten') > 0) {
          const before = m;
          await ctx.correct('reflatten', { check: 'table.moment', value: before, unit: 'N·m' }, async () => {
            if (!(await pinchBySearch(ctx, 'fabric.corner_a', 'corner_a', 1.5))) return false;
            m = await drag();
            return m <= FLAT_NM;
          });
        }
        if (!ctx.measure('flatten.plate_moment', m, 'N·m', { max: FLAT_NM })) ctx.fail('still-wrinkled');
      },
    },
    {
      name: 'fold-1',
      description: 'carry corner A over to the fold line; regrasp tighter on a slip',
      timeoutMs: 40_000,
      maxAttempts: 3,
      retryKind: 'regrasp',
      run: (ctx) => fold(ctx, 'fabric.corner_a', 'corner_a'),
    },
    {
      name: 'fold-2',
      description: 'carry corner B over to the fold line; regrasp tighter on a slip',
      timeoutMs: 40_000,
      maxAttempts: 3,
      retryKind: 'regrasp',
      run: (ctx) => fold(ctx, 'fabric.corner_b', 'corner_b'),
    },
    {
      name: 'verify',
      description: 'step back home and check the folded towel is square on the plate',
      timeoutMs: 15_000,
      maxAttempts: 1,
      retryKind: 'retry',
      async run(ctx) {
        await ctx.rig.arm!.moveTo(ctx.rig.home(), { toleranceRad: 0.01, timeoutMs: 10000, signal: ctx.signal });
        const m = await average(ctx, () => plateMoment(ctx), 300);
        if (!ctx.measure('verify.plate_moment', m, 'N·m', { max: SQUARE_NM })) ctx.fail('not-square');
      },
    },
  ],
};
