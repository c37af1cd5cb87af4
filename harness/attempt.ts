/**
 * One attempt of a stage: the StageContext the scenario's stage code gets (measurements against
 * limits, bounded corrections, its abort signal), the stage's timeout, and how the attempt ends
 * (done, failed, timeout, error, aborted). The runner (harness/runner.ts) runs trials of attempts.
 */
import { DexhilError, domainOf, errorLabel } from './errors.ts';
import type { AttemptOutcome, CorrectionRecord, EventBus, FaultDomain, Measurement } from './events.ts';
import type { Rig } from './rig.ts';
import { TaskFailure, type ScenarioDef, type StageContext, type StageDef } from './scenario.ts';

/** A stage or trial that ran out of time (its timer aborts the attempt with it). */
export class StageTimeout extends DexhilError {
  constructor(what: string, ms: number) {
    super('TIMEOUT', `${what} timed out after ${ms} ms`);
  }
}

/** What an attempt needs of its run: the rig, the event stream, and whether the run was aborted. */
export interface AttemptRun {
  rig: Rig;
  bus: EventBus;
  aborted(): boolean;
}

/** Runs one attempt of `stage`; throws the trial's abort reason when the whole trial was stopped. */
export async function runAttempt(
  run: AttemptRun,
  scenario: ScenarioDef,
  stage: StageDef,
  stageIndex: number,
  trial: number,
  attempt: number,
  trialStartMs: number,
  trialSignal: AbortSignal,
  memo: Map<string, number>,
  corrections: Record<string, number>,
  emitCorrection: (c: Omit<CorrectionRecord, 'scenario' | 'trial'>) => void,
): Promise<{ outcome: AttemptOutcome; label: string; domain: FaultDomain }> {
  const { rig, bus } = run;
  const clock = rig.clock;
  const ac = new AbortController();
  const onTrialAbort = (): void => ac.abort(trialSignal.reason);
  if (trialSignal.aborted) ac.abort(trialSignal.reason);
  trialSignal.addEventListener('abort', onTrialAbort, { once: true });
  const timer = clock.setTimer(stage.timeoutMs, () => ac.abort(new StageTimeout(`stage ${stage.name}`, stage.timeoutMs)));
  const measurements: Measurement[] = [];
  const started = clock.nowMs();
  const rel = (): number => clock.nowMs() - trialStartMs;
  const ctx: StageContext = {
    rig,
    trial,
    attempt,
    signal: ac.signal,
    memo,
    sleep: (ms) => clock.sleep(ms, ac.signal),
    measure(name, value, unit, limits = {}) {
      const ok = (limits.min === undefined || value >= limits.min) && (limits.max === undefined || value <= limits.max);
      const m: Measurement = { name, value, unit, ok, ...(limits.min === undefined ? {} : { min: limits.min }), ...(limits.max === undefined ? {} : { max: limits.max }) };
      measurements.push(m);
      bus.emit({ type: 'measurement', scenario: scenario.name, trial, stage: stage.name, measurement: m, tMs: rel() });
      return ok;
    },
    async correct(kind, trigger, action) {
      const bound = scenario.maxCorrections[kind] ?? 0;
      if ((corrections[kind] ?? 0) >= bound) return false;
      const t0 = rel();
      let recovered = false;
      try {
        recovered = await action();
      } finally {
        emitCorrection({
          stage: stage.name,
          attempt,
          tMs: t0,
          kind,
          triggerCheck: trigger.check,
          triggerValue: trigger.value,
          triggerUnit: trigger.unit ?? '',
          actor: 'scenario',
          recovered,
          durationMs: rel() - t0,
        });
      }
      return recovered;
    },
    remaining: (kind) => Math.max(0, (scenario.maxCorrections[kind] ?? 0) - (corrections[kind] ?? 0)),
    fail(label, detail) {
      throw new TaskFailure(label, detail);
    },
  };
  let outcome: AttemptOutcome = 'done';
  let label = '';
  let domain: FaultDomain = 'task';
  try {
    await guarded(ac.signal, stage.run(ctx));
  } catch (err) {
    if (err instanceof TaskFailure) {
      outcome = 'failed';
      label = err.label;
    } else if (run.aborted()) {
      outcome = 'aborted';
      label = 'aborted';
    } else if (err instanceof StageTimeout) {
      outcome = 'timeout';
      label = trialSignal.aborted ? 'trial-timeout' : 'timeout';
    } else {
      outcome = 'error';
      label = errorLabel(err);
      domain = domainOf(err);
    }
    await rig.holdAll();
  } finally {
    timer.cancel();
    trialSignal.removeEventListener('abort', onTrialAbort);
  }
  bus.emit({
    type: 'attempt-end',
    record: { scenario: scenario.name, trial, stage: stage.name, stageIndex, attempt, startMs: started - trialStartMs, durationMs: clock.nowMs() - started, outcome, failureLabel: label, measurements },
  });
  // The whole trial was stopped (its timeout, a safety stop, a lost device): end it with that.
  if (trialSignal.aborted && !run.aborted()) throw trialSignal.reason;
  return { outcome, label, domain };
}

/** Resolves with `p`, or rejects as soon as `signal` aborts, even if `p` ignores the signal. */
export function guarded<T>(signal: AbortSignal, p: Promise<T>): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
