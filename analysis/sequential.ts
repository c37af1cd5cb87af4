/**
 * Early stopping for `dexhil run --baseline A --stop-when-decided`: Wald's sequential probability
 * ratio test on discordant pairs. Trial i of build B is paired with trial i of the baseline run
 * (same seed, so the same initial condition id). Only pairs where exactly one build passed carry
 * information about which is better; among them, "A passed, B failed" has probability theta.
 *
 *   H0 (no regression): theta = 1/2
 *   H1 (regression):    theta = p0 (1 - p1) / (p0 (1 - p1) + (1 - p0) p1)
 *
 * for a design regression from pass rate p0 to p1 (default 0.9 -> 0.8, trials independent given
 * the build). Each discordant pair adds log(theta1 / 0.5) or log((1 - theta1) / 0.5) to the log
 * likelihood ratio; it stops for "regression" at log((1 - beta) / alpha) and for "no regression"
 * at log(beta / (1 - alpha)). The boundaries are fixed before the first trial: there is no
 * p-value recomputed after each trial.
 */
export interface SprtDesign {
  /** Baseline pass rate of the design. */
  p0: number;
  /** The regressed pass rate the test must detect. */
  p1: number;
  alpha: number;
  power: number;
}

export const DEFAULT_SPRT: SprtDesign = { p0: 0.9, p1: 0.8, alpha: 0.05, power: 0.8 };

export type SprtDecision = 'regression' | 'no regression';

export interface SprtBounds {
  theta1: number;
  upper: number;
  lower: number;
  stepWorse: number;
  stepBetter: number;
}

export function sprtBounds(d: SprtDesign): SprtBounds {
  if (!(d.p0 > d.p1 && d.p0 <= 1 && d.p1 >= 0)) throw new RangeError(`the design needs p0 > p1 (a drop to detect), got ${d.p0} -> ${d.p1}`);
  const worse = d.p0 * (1 - d.p1);
  const better = (1 - d.p0) * d.p1;
  const theta1 = worse / (worse + better);
  const beta = 1 - d.power;
  return {
    theta1,
    upper: Math.log((1 - beta) / d.alpha),
    lower: Math.log(beta / (1 - d.alpha)),
    stepWorse: Math.log(theta1 / 0.5),
    stepBetter: Math.log((1 - theta1) / 0.5),
  };
}

/** One scenario's test, fed pair by pair. */
export class Sprt {
  readonly bounds: SprtBounds;
  llr = 0;
  pairs = 0;
  bWorse = 0;
  bBetter = 0;
  decision: SprtDecision | undefined;
  /** Pairs seen when the decision was made. */
  decidedAt: number | undefined;

  constructor(readonly design: SprtDesign = DEFAULT_SPRT) {
    this.bounds = sprtBounds(design);
  }

  /** Adds a pair of judged trials; returns the decision once there is one. */
  add(aPassed: boolean, bPassed: boolean): SprtDecision | undefined {
    if (this.decision !== undefined) return this.decision;
    this.pairs++;
    if (aPassed && !bPassed) {
      this.bWorse++;
      this.llr += this.bounds.stepWorse;
    } else if (!aPassed && bPassed) {
      this.bBetter++;
      this.llr += this.bounds.stepBetter;
    }
    if (this.llr >= this.bounds.upper) this.decision = 'regression';
    else if (this.llr <= this.bounds.lower) this.decision = 'no regression';
    if (this.decision !== undefined) this.decidedAt = this.pairs;
    return this.decision;
  }
}
