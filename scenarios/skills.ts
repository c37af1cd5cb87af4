/**
 * Motions and readings shared by the task scenarios, written against the Rig API only.
 */
import { POSTURES } from '../drivers/hand/model.ts';
import type { Wrench } from '../drivers/types.ts';
import { DexhilError } from '../harness/errors.ts';
import type { StageContext } from '../harness/scenario.ts';

export interface Offsets {
  /** Joint index -> rad added to the site's value. */
  [joint: number]: number;
}

export function at(ctx: StageContext, siteName: string, offsets: Offsets = {}): number[] {
  const q = ctx.rig.site(siteName);
  for (const [j, d] of Object.entries(offsets)) q[Number(j)] = (q[Number(j)] ?? 0) + d;
  return q;
}

function arm(ctx: StageContext) {
  const a = ctx.rig.arm;
  if (a === undefined) throw new DexhilError('DEVICE_STATE', 'this scenario needs an arm');
  return a;
}

function hand(ctx: StageContext) {
  const h = ctx.rig.hand;
  if (h === undefined) throw new DexhilError('DEVICE_STATE', 'this scenario needs a hand');
  return h;
}

/** Moves to a site (plus offsets). Returns what stopped it, or undefined when it got there. */
export async function moveTo(
  ctx: StageContext,
  siteName: string,
  offsets: Offsets = {},
  options: { speedRadS?: number; guard?: () => string | undefined } = {},
): Promise<string | undefined> {
  const r = await arm(ctx).moveTo(at(ctx, siteName, offsets), { toleranceRad: 0.004, timeoutMs: 12000, signal: ctx.signal, ...options });
  if (!r.reached && r.stoppedBy === 'move-timeout') ctx.fail('move-timeout', `could not reach ${siteName}`);
  return r.reached ? undefined : r.stoppedBy;
}

export function wrist(ctx: StageContext): Wrench {
  const s = ctx.rig.sensor('wrist')?.latest;
  if (s === undefined) throw new DexhilError('DEVICE_TIMEOUT', 'wrist F/T sensor has sent no sample');
  return s;
}

export function table(ctx: StageContext): Wrench {
  const s = ctx.rig.sensor('table')?.latest;
  if (s === undefined) throw new DexhilError('DEVICE_TIMEOUT', 'table F/T sensor has sent no sample');
  return s;
}

/** Thumb + index fingertip force, N. */
export function pinchForceN(ctx: StageContext): number {
  const t = hand(ctx).latest?.tipForceN;
  return t === undefined ? 0 : (t[0] ?? 0) + (t[1] ?? 0);
}

/** Closes a pinch with the given current limit and lets the fingers settle; returns pinch force. */
export async function pinch(ctx: StageContext, currentA = 0.35): Promise<number> {
  await hand(ctx).setPosture(POSTURES.pinch, currentA, ctx.signal);
  await ctx.sleep(400);
  return pinchForceN(ctx);
}

export async function openHand(ctx: StageContext): Promise<void> {
  await hand(ctx).setPosture(POSTURES.open, 0.3, ctx.signal);
  await ctx.sleep(250);
}

/** Mean of a reading sampled every `periodMs` for `durationMs`. */
export async function average(ctx: StageContext, read: () => number, durationMs = 200, periodMs = 20): Promise<number> {
  let sum = 0;
  let n = 0;
  for (let t = 0; t < durationMs; t += periodMs) {
    await ctx.sleep(periodMs);
    sum += read();
    n++;
  }
  return sum / n;
}

/** The small search pattern used to find an edge or corner by feel (rad, joints 1 and 2). */
export const SEARCH: readonly [number, number][] = [
  [0, 0],
  [0.012, 0],
  [-0.012, 0],
  [0, 0.012],
  [0, -0.012],
  [0.012, 0.012],
  [-0.012, -0.012],
  [0.012, -0.012],
  [-0.012, 0.012],
];

/** Pinches at a site, walking the search pattern with `regrasp` corrections until something is held. */
export async function pinchBySearch(ctx: StageContext, siteName: string, memoKey: string, minForceN: number, currentA = 0.35): Promise<boolean> {
  const tryAt = async (i: number): Promise<boolean> => {
    const [d0, d1] = SEARCH[i % SEARCH.length]!;
    await openHand(ctx);
    await moveTo(ctx, siteName, { 0: d0, 1: d1, 2: 0.05 });
    await moveTo(ctx, siteName, { 0: d0, 1: d1 });
    const f = await pinch(ctx, currentA);
    if (f >= minForceN) ctx.memo.set(memoKey, i);
    return f >= minForceN;
  };
  let i = ctx.memo.get(memoKey) ?? 0;
  const f0 = await tryAt(i);
  ctx.measure(`${siteName}.pinch_force`, pinchForceN(ctx), 'N', { min: minForceN });
  if (f0) return true;
  while (ctx.remaining('regrasp') > 0) {
    i++;
    const index = i;
    const ok = await ctx.correct('regrasp', { check: `${siteName}.pinch_force`, value: pinchForceN(ctx), unit: 'N' }, () => tryAt(index));
    if (ok) return true;
  }
  return false;
}
