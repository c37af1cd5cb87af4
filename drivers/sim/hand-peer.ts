/**
 * Simulated dexterous hand: 15 actuated joints tracking their targets at a limited speed, 5
 * coupled joints following through their linkage, motor currents from the tracking effort (at the
 * current limit when fingers close on an object), fingertip forces from the world.
 * Not modelled: tendon friction, joint limits per finger, thermal current derating.
 */
import type { Clock } from '../../harness/clock.ts';
import { doubles, doublesFrom } from '../arrays.ts';
import type { ByteStream } from '../transport/byte-stream.ts';
import { ACTUATED, expandPosture } from '../hand/model.ts';
import type { FaultKnobs } from './faults.ts';
import { LinePeer, type PeerIdentity } from './line-peer.ts';
import type { Rng } from './rng.ts';
import type { SimWorld } from './world/index.ts';

export class HandPeer extends LinePeer {
  private active = false;
  private readonly pos = doubles(ACTUATED.length);
  private target = doubles(ACTUATED.length);
  private currentLimitA = 0.3;
  private lastMs = 0;

  constructor(
    stream: ByteStream,
    clock: Clock,
    identity: PeerIdentity,
    faults: FaultKnobs,
    rng: Rng,
    private readonly world: SimWorld,
    private readonly speedRadS: number,
  ) {
    super(stream, clock, identity, faults, rng, 1000);
  }

  private advance(): void {
    const now = this.clock.nowMs();
    const step = (this.speedRadS * (now - this.lastMs)) / 1000;
    this.lastMs = now;
    const blocked = this.world.holding();
    // In place: this runs for every sample and request (nothing else holds this.pos).
    const pos = this.pos;
    for (let i = 0; i < pos.length; i++) {
      const p = pos[i]!;
      const t = this.target[i]!;
      // Fingers closing on a held object stop short of the target.
      const goal = blocked && t > p ? Math.min(t, p + step * 0.05) : t;
      pos[i] = p + Math.max(-step, Math.min(step, goal - p));
    }
  }

  protected override handle(verb: string, args: string[]): ReturnType<LinePeer['handle']> {
    this.advance();
    switch (verb) {
      case 'MODE':
        if (args[0] !== 'ACTIVE' && args[0] !== 'IDLE') return { ok: false, code: 2, reason: 'mode must be ACTIVE or IDLE' };
        this.active = args[0] === 'ACTIVE';
        this.target = this.pos.slice();
        return { ok: true };
      case 'POS': {
        if (!this.active) return { ok: false, code: 3, reason: 'not active' };
        const n = args.map(Number);
        if (n.length !== ACTUATED.length + 1 || n.some((v) => !Number.isInteger(v))) return { ok: false, code: 2, reason: `POS needs current and ${ACTUATED.length} positions` };
        this.currentLimitA = n[0]! / 1000;
        this.target = doublesFrom(n.slice(1).map((v) => v / 1000));
        this.world.handCommanded({ postureRad: this.target, currentLimitA: this.currentLimitA });
        return { ok: true };
      }
      case 'HOLD':
        this.target = this.pos.slice();
        return { ok: true };
      default:
        return { ok: false, code: 1, reason: `unknown command ${verb}` };
    }
  }

  protected override sample(): (string | number)[] {
    this.advance();
    const full = expandPosture(this.pos);
    const holding = this.world.holding();
    const tips = this.world.tipForcesN();
    // Positions (with encoder noise), currents, tip forces, in milli-units, in one array.
    const out: number[] = [];
    for (const r of full) out.push(Math.round(1000 * (r + this.rng.normal(0, 0.002))));
    for (let i = 0; i < this.pos.length; i++) {
      const p = this.pos[i]!;
      const t = this.target[i]!;
      let a = 0;
      if (this.active) a = holding && t > p + 0.05 ? this.currentLimitA : Math.min(this.currentLimitA, 0.05 + 0.4 * Math.abs(t - p));
      out.push(Math.round(1000 * a));
    }
    for (const f of tips) out.push(Math.round(1000 * Math.max(0, f)));
    return out;
  }
}
