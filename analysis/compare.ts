/**
 * `dexhil compare A B`: is build B (a run folder) worse than build A (the baseline)? Per
 * scenario and overall, from the runs' trials.csv and steps.csv:
 *
 * - success rate (judged trials: pass or fail) with Wilson 95% intervals, the difference B - A with
 *   Newcombe's hybrid score interval, Boschloo's exact test for "B worse" (Fisher's shown too), and
 *   the exact McNemar test when the runs share initial-condition ids (paired trials);
 * - corrections per trial (exact permutation test), completion time of successful trials (ratio
 *   of geometric means with a Welch interval; Mann-Whitney), time to success with the others
 *   censored at the trial timeout (restricted mean time), and how far trials got (stage reach);
 * - a verdict: REGRESSION or IMPROVED when the Holm-adjusted exact test says so at alpha,
 *   NON-INFERIOR when the difference's one-sided (1 - alpha) bound is above -margin, else
 *   INCONCLUSIVE with the trials per build that would settle it. Only the success rate is gated.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readCsvRows } from '../reports/csv-recorder.ts';
import { DexhilError } from '../harness/errors.ts';
import {
  boschlooBWorse, fisherBWorse, geometricMeanRatio, holm, mannWhitneyGreater, mcnemarBWorse, newcombeDiff, permutationMeanGreater, rmst, trialsToDetect, wilson, zQuantile,
} from './stats.ts';

export type Verdict = 'REGRESSION' | 'IMPROVED' | 'NON-INFERIOR' | 'INCONCLUSIVE';

export interface CompareOptions {
  /** One-sided level of the gate (Holm-adjusted across scenarios). */
  alpha: number;
  /** Non-inferiority margin on the success rate (absolute, e.g. 0.05 = 5 points). */
  margin: number;
  /** Power for the trials-needed figure. */
  power: number;
  /** Require paired trials (same initial-condition ids); an error when they are not. */
  paired: boolean;
}

export const DEFAULT_COMPARE: CompareOptions = { alpha: 0.05, margin: 0.05, power: 0.8, paired: false };

interface TrialRow {
  scenario: string;
  version: string;
  trial: number;
  icId: string;
  outcome: string;
  success: boolean;
  stagesReached: number;
  stagesTotal: number;
  corrections: number;
  durationMs: number;
  timeoutMs: number;
}

export interface RunData {
  dir: string;
  runId: string;
  label: string;
  seed: number | undefined;
  trials: TrialRow[];
  /** Stage names by scenario, in order (from steps.csv). */
  stages: Map<string, string[]>;
  /** Scenarios a sequential test stopped early, with its decision. */
  stoppedEarly: { scenario: string; decision: string; trials: number }[];
}

export interface BuildStats {
  judged: number;
  passes: number;
  rate: number;
  lo: number;
  hi: number;
  /** Trials that could not be judged (error, timeout, aborted), left out of the rate. */
  unjudged: number;
  correctionsPerTrial: number;
  /** Geometric mean completion time of successful trials, s. */
  geoMeanS: number | undefined;
  /** Restricted mean time to success up to the timeout, s. */
  rmstS: number;
  /** Share of judged trials that got through each stage. */
  reach: number[];
}

export interface ScenarioComparison {
  scenario: string;
  version: string;
  a: BuildStats;
  b: BuildStats;
  diff: { diff: number; lo: number; hi: number };
  fisherP: number;
  boschlooP: number;
  boschlooBetterP: number;
  holmP: number;
  holmBetterP: number;
  paired: { pairs: number; bWorse: number; bBetter: number; mcnemarP: number } | undefined;
  corrections: { pvalue: number | undefined };
  time: { ratio: number; lo: number; hi: number; mannWhitneyP: number } | undefined;
  rmst: { diffS: number; lo: number; hi: number; tauS: number };
  stages: string[];
  verdict: Verdict;
  /** Trials per build that would settle an INCONCLUSIVE verdict. */
  trialsNeeded: number | undefined;
  reason: string;
}

export interface Comparison {
  a: { dir: string; runId: string; label: string };
  b: { dir: string; runId: string; label: string };
  options: CompareOptions;
  scenarios: ScenarioComparison[];
  skipped: { scenario: string; reason: string }[];
  overall: { a: { judged: number; passes: number; rate: number; lo: number; hi: number }; b: { judged: number; passes: number; rate: number; lo: number; hi: number }; diff: { diff: number; lo: number; hi: number } };
  regression: boolean;
  notes: string[];
}

/** Reads a run folder. @throws DexhilError USAGE naming what is missing or unreadable. */
export function loadRun(dir: string, which: string): RunData {
  const trialsFile = path.join(dir, 'trials.csv');
  if (!existsSync(dir)) throw new DexhilError('USAGE', `${which}: no run folder ${dir}`, { hint: 'give the folder a `dexhil run` wrote (reports/runs/<run-id>)' });
  if (!existsSync(trialsFile)) throw new DexhilError('USAGE', `${which}: ${dir} has no trials.csv`, { hint: 'give the folder a `dexhil run` wrote; a run stopped before its first trial has nothing to compare' });
  let rows: Record<string, string>[];
  try {
    rows = readCsvRows(trialsFile);
  } catch (err) {
    throw new DexhilError('USAGE', `${which}: cannot read ${trialsFile}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const need = ['scenario', 'scenario_version', 'trial', 'ic_id', 'outcome', 'stages_reached', 'stages_total', 'corrections_total', 'duration_ms', 'timeout_ms'];
  const missing = rows.length === 0 ? [] : need.filter((c) => !(c in rows[0]!));
  if (missing.length > 0) throw new DexhilError('USAGE', `${which}: ${trialsFile} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, { hint: 'was it written by dexhil?' });
  const trials = rows.map((r, i): TrialRow => {
    const num = (k: string): number => {
      const v = Number(r[k]);
      if (!Number.isFinite(v)) throw new DexhilError('USAGE', `${which}: ${trialsFile} line ${i + 2}: ${k} is '${r[k]}', not a number`);
      return v;
    };
    return {
      scenario: r['scenario']!,
      version: r['scenario_version']!,
      trial: num('trial'),
      icId: r['ic_id']!,
      outcome: r['outcome']!,
      success: r['outcome'] === 'pass',
      stagesReached: num('stages_reached'),
      stagesTotal: num('stages_total'),
      corrections: num('corrections_total'),
      durationMs: num('duration_ms'),
      timeoutMs: num('timeout_ms'),
    };
  });
  const stages = new Map<string, string[]>();
  for (const s of readCsvRows(path.join(dir, 'steps.csv'))) {
    const list = stages.get(s['scenario']!) ?? [];
    list[Number(s['stage_index']) - 1] = s['stage']!;
    stages.set(s['scenario']!, list);
  }
  let runId = path.basename(dir);
  let label = runId;
  let seed: number | undefined;
  const stoppedEarly: RunData['stoppedEarly'] = [];
  const manifestFile = path.join(dir, 'manifest.json');
  if (existsSync(manifestFile)) {
    try {
      const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as { run_id?: string; seed?: number; profile?: { name?: string }; devices?: { name: string; firmware: string }[]; sequential?: { scenarios?: { scenario: string; decision: string; trials: number; stoppedBy: string }[] } };
      for (const q of m.sequential?.scenarios ?? []) if (q.stoppedBy.endsWith('boundary')) stoppedEarly.push({ scenario: q.scenario, decision: q.decision, trials: q.trials });
      runId = m.run_id ?? runId;
      seed = m.seed;
      const fw = (m.devices ?? []).map((d) => `${d.name} ${d.firmware}`).join(', ');
      label = `${runId}${m.profile?.name ? ` (profile ${m.profile.name}${fw ? `; ${fw}` : ''})` : ''}`;
    } catch {
      // the manifest is a convenience here: trials.csv is the record
    }
  }
  return { dir, runId, label, seed, trials, stages, stoppedEarly };
}

function buildStats(rows: readonly TrialRow[], stageCount: number, tauMs: number): BuildStats {
  const judged = rows.filter((r) => r.outcome === 'pass' || r.outcome === 'fail');
  const passes = judged.filter((r) => r.success);
  const w = wilson(passes.length, judged.length);
  const times = passes.map((r) => r.durationMs / 1000).filter((t) => t > 0);
  const r = rmst(judged.map((t) => t.durationMs), judged.map((t) => t.success), tauMs);
  return {
    judged: judged.length,
    passes: passes.length,
    rate: judged.length > 0 ? passes.length / judged.length : NaN,
    lo: w.lo,
    hi: w.hi,
    unjudged: rows.length - judged.length,
    correctionsPerTrial: judged.length > 0 ? judged.reduce((s, t) => s + t.corrections, 0) / judged.length : NaN,
    geoMeanS: times.length > 0 ? Math.exp(times.reduce((s, t) => s + Math.log(t), 0) / times.length) : undefined,
    rmstS: r.rmst / 1000,
    reach: Array.from({ length: stageCount }, (_, k) => (judged.length > 0 ? judged.filter((t) => t.stagesReached >= k + 1).length / judged.length : NaN)),
  };
}

function compareScenario(name: string, aRows: TrialRow[], bRows: TrialRow[], stages: string[], pairedAllowed: boolean): Omit<ScenarioComparison, 'holmP' | 'holmBetterP' | 'verdict' | 'trialsNeeded' | 'reason'> {
  const tauMs = Math.max(...aRows.map((r) => r.timeoutMs), ...bRows.map((r) => r.timeoutMs));
  const stageCount = Math.max(stages.length, ...aRows.map((r) => r.stagesTotal), ...bRows.map((r) => r.stagesTotal));
  const a = buildStats(aRows, stageCount, tauMs);
  const b = buildStats(bRows, stageCount, tauMs);
  const judged = (rows: TrialRow[]): TrialRow[] => rows.filter((r) => r.outcome === 'pass' || r.outcome === 'fail');
  const ja = judged(aRows);
  const jb = judged(bRows);
  let paired: ScenarioComparison['paired'];
  if (pairedAllowed) {
    const byIc = new Map(ja.map((r) => [r.icId, r]));
    let pairs = 0;
    let bWorse = 0;
    let bBetter = 0;
    for (const r of jb) {
      const other = byIc.get(r.icId);
      if (other === undefined) continue;
      pairs++;
      if (other.success && !r.success) bWorse++;
      if (!other.success && r.success) bBetter++;
    }
    paired = { pairs, bWorse, bBetter, mcnemarP: mcnemarBWorse(bWorse, bBetter) };
  }
  const timesA = ja.filter((r) => r.success).map((r) => r.durationMs / 1000);
  const timesB = jb.filter((r) => r.success).map((r) => r.durationMs / 1000);
  const gmr = geometricMeanRatio(timesA, timesB);
  const ra = rmst(ja.map((r) => r.durationMs), ja.map((r) => r.success), tauMs);
  const rb = rmst(jb.map((r) => r.durationMs), jb.map((r) => r.success), tauMs);
  const z = zQuantile(0.975);
  const seDiff = Math.sqrt(ra.variance + rb.variance) / 1000;
  const diffS = (rb.rmst - ra.rmst) / 1000;
  const canTest = ja.length > 0 && jb.length > 0;
  return {
    scenario: name,
    version: aRows[0]!.version,
    a,
    b,
    diff: canTest ? newcombeDiff(a.passes, a.judged, b.passes, b.judged) : { diff: NaN, lo: NaN, hi: NaN },
    fisherP: canTest ? fisherBWorse(a.passes, a.judged, b.passes, b.judged) : 1,
    boschlooP: canTest ? boschlooBWorse(a.passes, a.judged, b.passes, b.judged) : 1,
    boschlooBetterP: canTest ? boschlooBWorse(b.passes, b.judged, a.passes, a.judged) : 1,
    paired,
    corrections: { pvalue: canTest ? permutationMeanGreater(ja.map((r) => r.corrections), jb.map((r) => r.corrections)) : undefined },
    time: gmr === undefined ? undefined : { ratio: gmr.ratio, lo: gmr.lo, hi: gmr.hi, mannWhitneyP: mannWhitneyGreater(timesB, timesA).pvalue },
    rmst: { diffS, lo: diffS - z * seDiff, hi: diffS + z * seDiff, tauS: tauMs / 1000 },
    stages: Array.from({ length: stageCount }, (_, k) => stages[k] ?? `stage ${k + 1}`),
  };
}

/**
 * Trials per build at which the verdict rule itself would show non-inferiority within `margin`
 * if the observed rates held: the smallest n whose Newcombe one-sided bound clears -margin.
 */
function trialsForNonInferiority(pA: number, pB: number, margin: number, alpha: number): number | undefined {
  const clears = (n: number): boolean => newcombeDiff(pA * n, n, pB * n, n, 1 - 2 * alpha).lo > -margin;
  let hi = 2;
  while (!clears(hi)) {
    hi *= 2;
    if (hi > 1e7) return undefined;
  }
  let lo = hi / 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (clears(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export function compareRuns(runA: RunData, runB: RunData, options: CompareOptions = DEFAULT_COMPARE): Comparison {
  const o = options;
  const notes: string[] = [];
  const skipped: { scenario: string; reason: string }[] = [];
  const names = [...new Set([...runA.trials, ...runB.trials].map((r) => r.scenario))];
  const work: { name: string; aRows: TrialRow[]; bRows: TrialRow[] }[] = [];
  for (const name of names) {
    const aRows = runA.trials.filter((r) => r.scenario === name);
    const bRows = runB.trials.filter((r) => r.scenario === name);
    if (aRows.length === 0 || bRows.length === 0) {
      skipped.push({ scenario: name, reason: `only in run ${aRows.length === 0 ? 'B' : 'A'}` });
      continue;
    }
    const va = new Set(aRows.map((r) => r.version));
    const vb = new Set(bRows.map((r) => r.version));
    if (va.size !== 1 || vb.size !== 1 || [...va][0] !== [...vb][0]) {
      throw new DexhilError('USAGE', `scenario ${name}: run A used version ${[...va].join('/')} and run B version ${[...vb].join('/')}; trials of different scenario versions are not comparable`, {
        hint: 'run both builds with the same dexhil and scenario version (`dexhil list` shows it), or leave the scenario out of one run',
      });
    }
    work.push({ name, aRows, bRows });
  }
  if (work.length === 0) throw new DexhilError('USAGE', `runs ${runA.dir} and ${runB.dir} have no scenario in common`, { hint: 'run the same scenarios on both builds' });

  // Paired when each build ran the same initial conditions (same seed, same trial numbers).
  const sameIcs = work.every(({ aRows, bRows }) => {
    const ia = new Set(aRows.map((r) => r.icId));
    return bRows.some((r) => ia.has(r.icId));
  });
  if (o.paired && !sameIcs) {
    throw new DexhilError('USAGE', `--paired: the runs share no initial-condition ids (seeds ${runA.seed ?? '?'} and ${runB.seed ?? '?'}), so their trials cannot be paired`, {
      hint: 'run build B with the same --seed as the baseline, or compare without --paired',
    });
  }
  for (const [which, run] of [['A', runA], ['B', runB]] as const) {
    for (const q of run.stoppedEarly) {
      notes.push(`run ${which} stopped ${q.scenario} after ${q.trials} trials when its sequential test decided "${q.decision}": that decision is the verdict for it; the fixed-sample p-values here do not allow for the early stop`);
    }
  }
  if (!sameIcs) notes.push(`trials are not paired: the runs started from different initial conditions (seeds ${runA.seed ?? '?'} and ${runB.seed ?? '?'})`);

  const partial = work.map(({ name, aRows, bRows }) => compareScenario(name, aRows, bRows, runA.stages.get(name) ?? runB.stages.get(name) ?? [], sameIcs));
  const holmWorse = holm(partial.map((p) => p.boschlooP));
  const holmBetter = holm(partial.map((p) => p.boschlooBetterP));
  const scenarios = partial.map((p, i): ScenarioComparison => {
    const holmP = holmWorse[i]!;
    const holmBetterP = holmBetter[i]!;
    const { a, b } = p;
    let verdict: Verdict;
    let trialsNeeded: number | undefined;
    let reason: string;
    if (a.judged === 0 || b.judged === 0) {
      verdict = 'INCONCLUSIVE';
      reason = `no judged trials in run ${a.judged === 0 ? 'A' : 'B'}`;
    } else if (holmP < o.alpha) {
      verdict = 'REGRESSION';
      reason = `success ${pct(a.rate)} -> ${pct(b.rate)}, Boschloo p = ${fmtP(p.boschlooP)} (Holm ${fmtP(holmP)} < ${o.alpha})`;
    } else if (holmBetterP < o.alpha) {
      verdict = 'IMPROVED';
      reason = `success ${pct(a.rate)} -> ${pct(b.rate)}, Boschloo p = ${fmtP(p.boschlooBetterP)} for B better (Holm ${fmtP(holmBetterP)} < ${o.alpha})`;
    } else {
      // One-sided (1 - alpha) lower bound of B - A: Newcombe's interval at 1 - 2 alpha.
      const ni = newcombeDiff(a.passes, a.judged, b.passes, b.judged, 1 - 2 * o.alpha);
      if (ni.lo > -o.margin) {
        verdict = 'NON-INFERIOR';
        reason = `B - A >= ${signed(ni.lo)} with ${pct(1 - o.alpha)} confidence, within the margin -${pct(o.margin)}`;
      } else {
        verdict = 'INCONCLUSIVE';
        trialsNeeded = b.rate < a.rate ? trialsToDetect(a.rate, b.rate, o.alpha, o.power) : trialsForNonInferiority(a.rate, b.rate, o.margin, o.alpha);
        reason =
          b.rate < a.rate
            ? `success ${pct(a.rate)} -> ${pct(b.rate)} is not significant (Boschloo p = ${fmtP(p.boschlooP)}); about ${trialsNeeded ?? '?'} trials per build would detect a drop this size with ${pct(o.power)} power`
            : `no drop seen, but ${a.judged} and ${b.judged} trials cannot rule out one of ${pct(o.margin)}; if the rates held, about ${trialsNeeded ?? '?'} trials per build would`;
      }
    }
    return { ...p, holmP, holmBetterP, verdict, trialsNeeded, reason };
  });

  const sum = (f: (s: ScenarioComparison) => number): number => scenarios.reduce((acc, s) => acc + f(s), 0);
  const pool = (judged: number, passes: number) => ({ judged, passes, rate: judged > 0 ? passes / judged : NaN, ...wilson(passes, judged) });
  const oa = pool(sum((s) => s.a.judged), sum((s) => s.a.passes));
  const ob = pool(sum((s) => s.b.judged), sum((s) => s.b.passes));
  notes.push(`verdicts are gated on the success rate: Boschloo one-sided tests, Holm-adjusted over ${scenarios.length} scenario${scenarios.length > 1 ? 's' : ''} at alpha ${o.alpha}; non-inferiority margin ${pct(o.margin)}`);
  return {
    a: { dir: runA.dir, runId: runA.runId, label: runA.label },
    b: { dir: runB.dir, runId: runB.runId, label: runB.label },
    options: o,
    scenarios,
    skipped,
    overall: { a: oa, b: ob, diff: oa.judged > 0 && ob.judged > 0 ? newcombeDiff(oa.passes, oa.judged, ob.passes, ob.judged) : { diff: NaN, lo: NaN, hi: NaN } },
    regression: scenarios.some((s) => s.verdict === 'REGRESSION'),
    notes,
  };
}

export function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '-';
}

function signed(v: number): string {
  return `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)} pts`;
}

export function fmtP(p: number | undefined): string {
  if (p === undefined || !Number.isFinite(p)) return '-';
  return p < 0.0001 ? p.toExponential(1) : p.toFixed(4);
}
