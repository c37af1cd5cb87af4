/**
 * Simulated 6-axis force/torque sensor: streams the world's load on its mount plus bias, noise
 * and a slowly drifting temperature; TARE zeroes the bias at the current load.
 * Not modelled: cross-talk between axes, saturation, overload latching.
 */
import type { Clock } from '../../harness/clock.ts';
import type { ByteStream } from '../transport/byte-stream.ts';
import type { Wrench } from '../types.ts';
import type { FaultKnobs } from './faults.ts';
import { LinePeer, type PeerIdentity } from './line-peer.ts';
import type { Rng } from './rng.ts';
import type { SimWorld } from './world/index.ts';
import type { SensorMount } from './world/types.ts';

export class FtPeer extends LinePeer {
  private bias: Wrench;
  private offset: Wrench = { fx: 0, fy: 0, fz: 0, tx: 0, ty: 0, tz: 0 };

  constructor(
    stream: ByteStream,
    clock: Clock,
    identity: PeerIdentity,
    faults: FaultKnobs,
    rng: Rng,
    private readonly world: SimWorld,
    private readonly mount: SensorMount,
    private readonly noiseN: number,
  ) {
    super(stream, clock, identity, faults, rng, 7000);
    this.bias = { fx: rng.normal(0, 2), fy: rng.normal(0, 2), fz: rng.normal(0, 3), tx: rng.normal(0, 0.05), ty: rng.normal(0, 0.05), tz: rng.normal(0, 0.05) };
  }

  private raw(): Wrench {
    const load = this.world.wrench(this.mount);
    const b = this.bias;
    const n = this.noiseN;
    const r = this.rng;
    // Noise drawn axis by axis, fx to tz: forces with noiseN, torques with noiseN / 20.
    return {
      fx: load.fx + b.fx + r.normal(0, n),
      fy: load.fy + b.fy + r.normal(0, n),
      fz: load.fz + b.fz + r.normal(0, n),
      tx: load.tx + b.tx + r.normal(0, n / 20),
      ty: load.ty + b.ty + r.normal(0, n / 20),
      tz: load.tz + b.tz + r.normal(0, n / 20),
    };
  }

  protected override handle(verb: string): ReturnType<LinePeer['handle']> {
    if (verb === 'TARE') {
      const r = this.raw();
      // Written out, not spread: a spread copy has a hidden class of its own (see ZERO_WRENCH).
      this.offset = { fx: r.fx, fy: r.fy, fz: r.fz, tx: r.tx, ty: r.ty, tz: r.tz };
      return { ok: true };
    }
    return { ok: false, code: 1, reason: `unknown command ${verb}` };
  }

  protected override sample(): (string | number)[] {
    const r = this.raw();
    const o = this.offset;
    const temp = 310 + Math.round(10 * Math.sin(this.clock.nowMs() / 600000));
    return [milli(r.fx - o.fx), milli(r.fy - o.fy), milli(r.fz - o.fz), milli(r.tx - o.tx), milli(r.ty - o.ty), milli(r.tz - o.tz), temp];
  }
}

/** A force or torque in the line's integer thousandths (mN, mNm). */
function milli(v: number): number {
  return Math.round(1000 * v);
}
