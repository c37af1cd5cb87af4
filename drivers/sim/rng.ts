/**
 * Seeded randomness for the simulator (pure-rand's xoroshiro128+). Streams are derived by label,
 * so adding a draw in one place never shifts the draws of another (initial conditions stay
 * paired across firmware profiles and code changes elsewhere).
 */
import { xoroshiro128plus } from 'pure-rand';

type Generator = ReturnType<typeof xoroshiro128plus>;

/** FNV-1a, 32-bit: a stable hash of a label, for deriving seeds. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer: every input bit flips about half the output bits. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export class Rng {
  private readonly gen: Generator;
  /** The second value of the last Box-Muller pair, when hasSpare (a field that stays a number). */
  private spare = 0;
  private hasSpare = false;

  constructor(readonly seed: number) {
    // xoroshiro's first outputs follow its seed closely: nearby seeds (trial 1, trial 2...) would
    // give nearly the same scene. Mix the seed and discard a few outputs so streams decorrelate.
    this.gen = xoroshiro128plus(fmix32(seed >>> 0) | 0);
    for (let i = 0; i < 8; i++) this.gen.unsafeNext();
  }

  /** A child stream: same parent seed and label, same numbers. */
  fork(label: string): Rng {
    return new Rng(hash32(`${this.seed}/${label}`));
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = (this.gen.unsafeNext() >>> 0) >>> 5; // 27 bits
    const lo = (this.gen.unsafeNext() >>> 0) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Normal(mean, sd), Box-Muller. */
  normal(mean = 0, sd = 1): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return mean + sd * this.spare;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * v;
    this.spare = r * Math.sin(angle);
    this.hasSpare = true;
    return mean + sd * r * Math.cos(angle);
  }

  /** Poisson(lambda) by inversion (small lambdas only). */
  poisson(lambda: number): number {
    let k = 0;
    let p = Math.exp(-lambda);
    let s = p;
    const u = this.float();
    while (u > s && k < 50) {
      k++;
      p *= lambda / k;
      s += p;
    }
    return k;
  }
}
