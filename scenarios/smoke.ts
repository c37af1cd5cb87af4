/**
 * Rig bring-up: sweep every arm joint and check it tracks, close and open the hand and check the
 * motors draw current, tare every F/T sensor and check it reads near zero. Runs on whatever
 * devices the rig has.
 */
import { POSTURES } from '../drivers/hand/model.ts';
import { forceMagnitudeN } from '../drivers/types.ts';
import type { ScenarioDef } from '../harness/scenario.ts';

export const smoke: ScenarioDef = {
  name: 'smoke',
  version: '1.0.0',
  task: 'none',
  description: 'Rig bring-up: joint sweep, grasp, tare',
  success: 'every joint tracks a ±0.2 rad sweep within 0.01 rad, the hand draws current when closing, every F/T reads < 1 N after tare',
  needs: [],
  trialTimeoutMs: 60_000,
  maxCorrections: {},
  stages: [
    {
      name: 'joint-sweep',
      description: 'move each arm joint +0.2 rad and back; check tracking',
      timeoutMs: 30_000,
      maxAttempts: 1,
      retryKind: 'retry',
      async run(ctx) {
        const arm = ctx.rig.arm;
        if (arm === undefined) return;
        const home = ctx.rig.home();
        let worst = 0;
        for (let j = 0; j < arm.joints; j++) {
          for (const d of [0.2, 0]) {
            const target = home.map((v, k) => (k === j ? v + d : v));
            const r = await arm.moveTo(target, { toleranceRad: 0.005, timeoutMs: 3000, signal: ctx.signal });
            if (!r.reached) ctx.fail('joint-did-not-track', `joint ${j + 1}`);
            worst = Math.max(worst, Math.abs((arm.positionRad[j] ?? 0) - (target[j] ?? 0)));
          }
        }
        if (!ctx.measure('sweep.worst_error', worst, 'rad', { max: 0.01 })) ctx.fail('joint-did-not-track');
      },
    },
    {
      name: 'grasp',
      description: 'close a power grasp and open again; check motor current and joint travel',
      timeoutMs: 10_000,
      maxAttempts: 1,
      retryKind: 'retry',
      async run(ctx) {
        const hand = ctx.rig.hand;
        if (hand === undefined) return;
        await hand.setPosture(POSTURES.power, 0.3, ctx.signal);
        await ctx.sleep(150);
        const current = Math.max(...(hand.latest?.currentA ?? [0]));
        await ctx.sleep(500);
        const closed = hand.latest?.positionRad[6] ?? 0; // index_pip
        await hand.setPosture(POSTURES.open, 0.3, ctx.signal);
        await ctx.sleep(600);
        const ok1 = ctx.measure('grasp.peak_current', current, 'A', { min: 0.05 });
        const ok2 = ctx.measure('grasp.index_pip_closed', closed, 'rad', { min: 1.0 });
        if (!ok1 || !ok2) ctx.fail('hand-did-not-close');
      },
    },
    {
      name: 'tare',
      description: 'tare each F/T sensor and check it reads < 1 N',
      timeoutMs: 5_000,
      maxAttempts: 1,
      retryKind: 'retry',
      async run(ctx) {
        for (const s of ctx.rig.sensors) {
          await s.driver.tare(ctx.signal);
          await ctx.sleep(200);
          const f = s.driver.latest;
          const mag = f === undefined ? Infinity : forceMagnitudeN(f);
          if (!ctx.measure(`${s.name}.force_after_tare`, mag, 'N', { max: 1 })) ctx.fail('sensor-not-zero', s.name);
        }
      },
    },
  ],
};
