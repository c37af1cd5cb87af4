/**
 * A run against a baseline run folder (build A against this build B): the sequential test of each
 * scenario, its trials paired by initial-condition id, and the rule that stops a scenario once the
 * test has decided. Both kinds of run (one rig, trial blocks) ask it after every trial.
 */
import path from 'node:path';
import { loadRun } from '../analysis/compare.ts';
import { Sprt, type SprtDecision } from '../analysis/sequential.ts';
import { DexhilError } from './errors.ts';
import type { TrialRecord } from './events.ts';
import type { RunOptions } from './run.ts';
import type { ScenarioDef } from './scenario.ts';

/** What the sequential test decided for one scenario. */
export interface SequentialResult {
  scenario: string;
  decision: SprtDecision | 'undecided';
  /** Why it stopped: the boundary crossed, the maximum trial count, or the baseline's last trial. */
  stoppedBy: 'upper boundary' | 'lower boundary' | 'maximum trials' | 'baseline exhausted' | 'run aborted';
  trials: number;
  pairs: number;
  bWorse: number;
  bBetter: number;
  llr: number;
}

/** The sequential test of each scenario against a baseline run (see sequentialPlan). */
export type SequentialPlan = ReturnType<typeof sequentialPlan>;

/**
 * The sequential test of each scenario against the baseline run: its trials by initial-condition
 * id, one Sprt a scenario, and the stop rule the runner asks after each trial.
 * @throws DexhilError USAGE when the baseline cannot be paired with this run.
 */
export function sequentialPlan(baseline: NonNullable<RunOptions['baseline']>, seed: number, scenarios: readonly ScenarioDef[]) {
  const base = loadRun(baseline.dir, '--baseline');
  if (base.seed !== undefined && base.seed !== seed) {
    throw new DexhilError('USAGE', `--baseline ${baseline.dir} ran with seed ${base.seed}, this run with seed ${seed}: trials pair by initial condition only with the same seed`, { hint: `add --seed ${base.seed}` });
  }
  for (const s of scenarios) {
    const v = base.trials.find((r) => r.scenario === s.name)?.version;
    if (v !== undefined && v !== s.version) throw new DexhilError('USAGE', `--baseline: scenario ${s.name} is version ${v} there and ${s.version} here; trials of different versions cannot be paired`);
  }
  interface ScenarioTest {
    sprt: Sprt;
    trials: number;
    stoppedBy?: SequentialResult['stoppedBy'];
  }
  const state = new Map<string, ScenarioTest>();
  /** The stop rule of a scenario, with its test state; undefined when the baseline has no trials of it. */
  const ruleOf = (scenario: string, maxTrials: number): ((r: TrialRecord) => boolean) | undefined => {
    const baseRows = new Map(base.trials.filter((r) => r.scenario === scenario).map((r) => [r.icId, r]));
    if (baseRows.size === 0) return undefined; // not in the baseline: run it in full, nothing to pair
    const st: ScenarioTest = { sprt: new Sprt(baseline.design), trials: 0 };
    state.set(scenario, st);
    const lastBaseTrial = Math.max(...[...baseRows.values()].map((r) => r.trial));
    return (r) => {
      st.trials = r.trial;
      const a = baseRows.get(r.icId);
      const judged = (o: string): boolean => o === 'pass' || o === 'fail';
      if (a !== undefined && judged(a.outcome) && judged(r.outcome)) st.sprt.add(a.success, r.success);
      if (st.sprt.decision !== undefined) {
        st.stoppedBy = st.sprt.decision === 'regression' ? 'upper boundary' : 'lower boundary';
        return baseline.stopWhenDecided;
      }
      if (r.trial >= maxTrials) st.stoppedBy = 'maximum trials';
      else if (r.trial >= lastBaseTrial) {
        st.stoppedBy = 'baseline exhausted';
        return true;
      }
      return false;
    };
  };
  return {
    /**
     * The stop rule of a scenario, asked after each of its trials; undefined when the baseline
     * has no trials of it (it runs in full). Resuming, the trials already on disk go through the
     * rule first: 'decided' when they stop the scenario.
     */
    stopAfter(scenario: string, maxTrials: number, onDisk: readonly TrialRecord[] = []): ((r: TrialRecord) => boolean) | 'decided' | undefined {
      const rule = ruleOf(scenario, maxTrials);
      const before = onDisk.filter((r) => r.scenario === scenario).sort((x, y) => x.trial - y.trial);
      return before.some((r) => rule?.(r) === true) ? 'decided' : rule;
    },
    report(maxTrials: number, aborted: boolean) {
      const b = new Sprt(baseline.design).bounds;
      return {
        rule: 'Wald SPRT on discordant pairs, paired by initial-condition id with the baseline run',
        baseline: path.resolve(baseline.dir),
        design: { ...baseline.design, theta1: b.theta1, upper: b.upper, lower: b.lower, maxTrials },
        stop_when_decided: baseline.stopWhenDecided,
        scenarios: [...state.entries()].map(([scenario, st]): SequentialResult => ({
          scenario,
          decision: st.sprt.decision ?? 'undecided',
          stoppedBy: st.stoppedBy ?? (aborted ? 'run aborted' : 'maximum trials'),
          trials: st.trials,
          pairs: st.sprt.pairs,
          bWorse: st.sprt.bWorse,
          bBetter: st.sprt.bBetter,
          llr: Number(st.sprt.llr.toFixed(6)),
        })),
      };
    },
  };
}
