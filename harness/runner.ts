/**
 * The runner: run -> scenario -> trial -> stage -> attempt. It owns timing (per-stage and
 * per-trial timeouts that stop motion), outcomes, retries and corrections, and tells the world
 * through the event stream. It never writes a report itself. One attempt of a stage (what the
 * stage code sees, the stage timeout) is harness/attempt.ts.
 *
 * Outcomes: `pass`/`fail` are verdicts on the task; `error` (rig, device or harness fault, failed
 * reset), `timeout` and `aborted` mean the trial could not be judged.
 */
import { objects } from '../drivers/arrays.ts';
import type { FtSample } from '../drivers/ft/driver.ts';
import { hash32 } from '../drivers/sim/rng.ts';
import { forceMagnitudeN } from '../drivers/types.ts';
import { guarded, runAttempt, StageTimeout } from './attempt.ts';
import { AbortedError, DexhilError, domainOf, errorLabel } from './errors.ts';
import type { CorrectionRecord, EventBus, FaultDomain, Outcome, TrialRecord } from './events.ts';
import type { Rig } from './rig.ts';
import { OperatorDesk, type Answer, type Question } from './operator.ts';
import type { ScenarioDef, Trigger } from './scenario.ts';

export interface RunPlan {
  scenarios: readonly ScenarioDef[];
  trials: number;
  seed: number;
}

/** Initial-condition seed: depends on the run seed, scenario and trial index only. */
export function icSeedOf(seed: number, scenario: string, trial: number): number {
  return hash32(`ic/${seed}/${scenario}/${trial}`);
}

export function icIdOf(icSeed: number): string {
  return icSeed.toString(16).padStart(8, '0');
}

/** What the runner needs of the safety supervisor (harness/safety.ts). */
export interface TrialGuard {
  /** Waits for a previous trip's staged stop, then re-arms for the coming trial. */
  nextTrial(): Promise<void>;
  /** Resolves when a safe stop in progress is complete. */
  settled(): Promise<void>;
}

export class Runner {
  private aborted = false;
  private readonly runAbort = new AbortController();
  /** The trial in progress: its abort controller and where it is. */
  private current: { scenario: string; trial: number; startMs: number; abort: AbortController } | undefined;
  private stopReason: string | undefined;

  constructor(
    private readonly rig: Rig,
    private readonly bus: EventBus,
    private readonly guard?: TrialGuard,
    private readonly operator: { desk: OperatorDesk; judge?: 'operator' } = { desk: new OperatorDesk() },
  ) {}

  /** Who judges a scenario's trials: its own `judge`, unless the run says operator for all. */
  judgeOf(scenario: ScenarioDef): 'sensors' | 'operator' {
    return this.operator.judge ?? scenario.judge ?? 'sensors';
  }

  /** Asks the operator (the simulated world stands still meanwhile); rejects when the run is aborted. */
  private async ask(q: Question): Promise<Answer> {
    const a = await this.rig.clock.waitOutside(this.operator.desk.ask(q, this.runAbort.signal));
    this.bus.emit({ type: 'operator', kind: a.kind, scenario: q.scenario, trial: q.trial, answer: a.kind === 'reset' ? (a.done ? 'done' : 'skip') : a.pass ? 'pass' : `fail ${a.label}`, by: a.by, tMs: this.rig.clock.nowMs() });
    return a;
  }

  /**
   * Ends the trial in progress with `err` (a safety stop, a lost device): it becomes `error` with
   * the error's label and fault domain. The fault is reported as an event either way.
   */
  interruptTrial(err: DexhilError & { label?: string; trip?: { device: string; domain: FaultDomain; reactionUs: number | undefined } }): void {
    const c = this.current;
    this.bus.emit({
      type: 'fault',
      scenario: c?.scenario ?? '',
      trial: c?.trial ?? 0,
      device: err.trip?.device ?? 'rig',
      code: err.label ?? errorLabel(err),
      message: err.message,
      tMs: c === undefined ? this.rig.clock.nowMs() : this.rig.clock.nowMs() - c.startMs,
      domain: err.trip?.domain ?? domainOf(err),
      ...(err.trip?.reactionUs === undefined ? {} : { reactionUs: err.trip.reactionUs }),
    });
    c?.abort.abort(err);
  }

  /** Ends the run after the trial in progress (which keeps its own outcome). */
  stopAfterTrial(reason: string): void {
    this.stopReason ??= reason;
  }

  /** Why the run stopped before its plan was done (an abort, or stopAfterTrial), if it did. */
  get stoppedBecause(): string | undefined {
    return this.stopReason;
  }

  /** Stops the run: the current trial ends `aborted` (motion held), no further trial starts. */
  abort(reason: string): void {
    this.aborted = true;
    this.stopReason ??= reason;
    this.runAbort.abort(new AbortedError(reason));
  }

  get wasAborted(): boolean {
    return this.aborted;
  }

  private pauseGate: { resume: () => void; resumed: Promise<void> } | undefined;

  /**
   * Holds the run before its next trial (the trial in progress finishes) until `resume` or
   * `abort`. Returns false when it was paused already.
   */
  pause(by: string): boolean {
    if (this.pauseGate !== undefined) return false;
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    this.pauseGate = { resume, resumed };
    this.bus.emit({ type: 'control', action: 'pause', by, tMs: this.rig.clock.nowMs() });
    return true;
  }

  /** Lets a paused run go on. Returns false when it was not paused. */
  resume(by: string): boolean {
    const gate = this.pauseGate;
    if (gate === undefined) return false;
    this.pauseGate = undefined;
    this.bus.emit({ type: 'control', action: 'resume', by, tMs: this.rig.clock.nowMs() });
    gate.resume();
    return true;
  }

  get paused(): boolean {
    return this.pauseGate !== undefined;
  }

  /** Waits while the run is paused; an abort ends the wait. */
  private async waitIfPaused(): Promise<void> {
    const gate = this.pauseGate;
    if (gate === undefined || this.aborted) return;
    const signal = this.runAbort.signal;
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
      void gate.resumed.then(resolve);
    });
  }

  /**
   * Runs up to `trials` trials, leaving out those in `done`; `stopAfter` (a sequential test) may
   * end the scenario early by returning true after a trial.
   */
  async runScenario(scenario: ScenarioDef, trials: number, seed: number, stopAfter?: (record: TrialRecord) => boolean, done?: ReadonlySet<number>): Promise<TrialRecord[]> {
    const clock = this.rig.clock;
    this.bus.emit({ type: 'scenario-start', scenario: scenario.name, version: scenario.version, trials, tMs: clock.nowMs() });
    const records: TrialRecord[] = [];
    for (let t = 1; t <= trials && !this.aborted && this.stopReason === undefined; t++) {
      if (done?.has(t) === true) continue; // on disk already (a resumed run)
      const record = await this.runJob(scenario, t, seed);
      if (record === undefined) break;
      records.push(record);
      if (stopAfter?.(record) === true) break;
    }
    this.bus.emit({ type: 'scenario-end', scenario: scenario.name, tMs: clock.nowMs() });
    return records;
  }

  /**
   * Runs one trial when the run may go on: after a pause is lifted and a lost device is back.
   * Returns undefined (and runs nothing) when the run was aborted or has lost its rig.
   */
  async runJob(scenario: ScenarioDef, trial: number, seed: number): Promise<TrialRecord | undefined> {
    await this.waitIfPaused();
    if (this.aborted) return undefined;
    try {
      await this.guard?.nextTrial(); // a lost device comes back first, or the run ends here
    } catch (err) {
      this.stopReason = err instanceof DexhilError ? err.describe() : String(err);
      this.bus.emit({ type: 'fault', scenario: scenario.name, trial, device: 'rig', code: 'rig-lost', message: this.stopReason, tMs: this.rig.clock.nowMs(), domain: 'rig' });
      return undefined;
    }
    let skipped: string | undefined;
    if (this.rig.resetBy === 'operator') {
      // Asked before the trial's clock starts: the wait for a person is not the trial's time.
      const icId = icIdOf(icSeedOf(seed, scenario.name, trial));
      try {
        const a = await this.ask({ kind: 'reset', scenario: scenario.name, trial, icId, text: `Reset the ${scenario.task} scene for ${scenario.name} trial ${trial} (initial condition ${icId}).` });
        if (a.kind === 'reset' && !a.done) skipped = `operator skipped the reset (${a.by})`;
      } catch (err) {
        if (this.aborted) return undefined;
        throw err;
      }
    }
    return this.runTrial(scenario, trial, seed, skipped);
  }

  /** Aborted when the run is (for waits outside a trial, e.g. a fleet worker waiting for a job). */
  get abortSignal(): AbortSignal {
    return this.runAbort.signal;
  }

  /** Runs one trial; `resetSkipped` (an operator could not reset the scene) makes it an `error` at once. */
  async runTrial(scenario: ScenarioDef, trial: number, seed: number, resetSkipped?: string): Promise<TrialRecord> {
    const { rig, bus } = this;
    const clock = rig.clock;
    const icSeed = icSeedOf(seed, scenario.name, trial);
    const icId = icIdOf(icSeed);
    const dynSeed = hash32(`dyn/${seed}/${scenario.name}/${trial}`);
    const startMs = clock.nowMs();
    const wallStartMs = clock.wallMs();
    const wallT0 = performance.now();
    bus.emit({ type: 'trial-start', scenario: scenario.name, trial, icId, tMs: startMs });

    const trialAbort = new AbortController();
    this.current = { scenario: scenario.name, trial, startMs, abort: trialAbort };
    const onRunAbort = (): void => trialAbort.abort(this.runAbort.signal.reason);
    this.runAbort.signal.addEventListener('abort', onRunAbort, { once: true });
    const trialTimer = clock.setTimer(scenario.trialTimeoutMs, () => trialAbort.abort(new StageTimeout(`trial ${trial}`, scenario.trialTimeoutMs)));

    let peakForceN = 0;
    const onForce = (w: FtSample): void => {
      const f = forceMagnitudeN(w);
      if (f > peakForceN) peakForceN = f;
    };
    // A list made for functions from the start (drivers/arrays.ts): the array `map` made here had
    // more than one hidden class, and this function, the runner's largest, was compiled again when
    // the other one reached the loop that unsubscribes (--trace-deopt: "wrong map").
    const unsubs = objects<() => void>();
    for (const s of rig.sensors) unsubs.push(s.driver.onSample(onForce));
    const armFault = rig.arm?.onFault((joint, code, text) => {
      bus.emit({ type: 'fault', scenario: scenario.name, trial, device: rig.arm?.name ?? 'arm', code: `motor-${code}`, message: `joint ${joint}: ${text}`, tMs: clock.nowMs() - startMs });
    });

    const corrections: Record<string, number> = {};
    const memo = new Map<string, number>();
    let outcome: Outcome = 'pass';
    let failureLabel = '';
    let faultDomain: FaultDomain | '' = '';
    let stagesReached = 0;
    let rubric = 0;
    let firstAttemptSuccess = true;
    const totalWeight = scenario.stages.reduce((s, st) => s + (st.weight ?? 1), 0);

    const emitCorrection = (c: Omit<CorrectionRecord, 'scenario' | 'trial'>): void => {
      corrections[c.kind] = (corrections[c.kind] ?? 0) + 1;
      bus.emit({ type: 'correction', record: { scenario: scenario.name, trial, ...c } });
    };

    try {
      const reset = resetSkipped !== undefined ? { ok: false, reason: resetSkipped } : await guarded(trialAbort.signal, rig.resetScene(scenario.task, icSeed, dynSeed, trialAbort.signal));
      if (!reset.ok) {
        outcome = 'error';
        failureLabel = 'reset-failed';
        faultDomain = 'rig';
        bus.emit({ type: 'fault', scenario: scenario.name, trial, device: 'rig', code: 'reset-failed', message: reset.reason ?? 'reset failed', tMs: clock.nowMs() - startMs });
      } else {
        stages: for (const [stageIndex, stage] of scenario.stages.entries()) {
          bus.emit({ type: 'stage-start', scenario: scenario.name, trial, stage: stage.name, tMs: clock.nowMs() - startMs });
          let pendingRetry: { kind: string; trigger: Trigger; atMs: number; attempt: number } | undefined;
          for (let attempt = 1; attempt <= stage.maxAttempts; attempt++) {
            const result = await runAttempt({ rig, bus, aborted: () => this.aborted }, scenario, stage, stageIndex, trial, attempt, startMs, trialAbort.signal, memo, corrections, emitCorrection);
            if (pendingRetry) {
              emitCorrection({
                stage: stage.name,
                attempt: pendingRetry.attempt,
                tMs: pendingRetry.atMs,
                kind: stage.retryKind,
                triggerCheck: pendingRetry.trigger.check,
                triggerValue: undefined,
                triggerUnit: '',
                actor: 'harness',
                recovered: result.outcome === 'done',
                durationMs: clock.nowMs() - startMs - pendingRetry.atMs,
              });
              pendingRetry = undefined;
            }
            if (result.outcome === 'done') {
              stagesReached++;
              rubric += stage.weight ?? 1;
              bus.emit({ type: 'stage-end', scenario: scenario.name, trial, stage: stage.name, reached: true, tMs: clock.nowMs() - startMs });
              continue stages;
            }
            firstAttemptSuccess = false;
            if (result.outcome === 'failed' && attempt < stage.maxAttempts && !trialAbort.signal.aborted) {
              pendingRetry = { kind: stage.retryKind, trigger: { check: result.label }, atMs: clock.nowMs() - startMs, attempt };
              continue;
            }
            bus.emit({ type: 'stage-end', scenario: scenario.name, trial, stage: stage.name, reached: false, tMs: clock.nowMs() - startMs });
            outcome = result.outcome === 'failed' ? 'fail' : result.outcome;
            failureLabel = result.outcome === 'failed' ? result.label : `${stage.name}-${result.label}`;
            faultDomain = outcome === 'fail' || outcome === 'timeout' ? 'task' : outcome === 'error' ? result.domain : '';
            break stages;
          }
        }
      }
    } catch (err) {
      outcome = this.aborted ? 'aborted' : err instanceof StageTimeout ? 'timeout' : 'error';
      failureLabel = outcome === 'timeout' ? 'trial-timeout' : outcome === 'aborted' ? 'aborted' : errorLabel(err);
      faultDomain = outcome === 'timeout' ? 'task' : outcome === 'error' ? domainOf(err) : '';
      // An interrupted trial's fault was reported when it was raised.
      if (outcome === 'error' && err !== trialAbort.signal.reason) bus.emit({ type: 'fault', scenario: scenario.name, trial, device: 'rig', code: failureLabel, message: err instanceof Error ? err.message : String(err), tMs: clock.nowMs() - startMs, domain: faultDomain || 'harness' });
    } finally {
      this.current = undefined;
      trialTimer.cancel();
      this.runAbort.signal.removeEventListener('abort', onRunAbort);
      for (const u of unsubs) u();
      armFault?.();
    }
    // A trial stopped for safety ends once the rig is safe (motors disabled, hand idle).
    if (trialAbort.signal.aborted) await this.guard?.settled();
    const durationMs = clock.nowMs() - startMs;
    if (outcome === 'pass' && this.judgeOf(scenario) === 'operator') {
      // The stages are done; whether the task is, a person says (the wait is not the trial's time).
      try {
        const a = await this.ask({ kind: 'verdict', scenario: scenario.name, trial, icId, text: `${scenario.name} trial ${trial} (initial condition ${icId}): every stage is done. Success means: ${scenario.success}.` });
        if (a.kind === 'verdict' && !a.pass) {
          outcome = 'fail';
          failureLabel = a.label;
          faultDomain = 'task';
        }
      } catch (err) {
        if (!this.aborted) throw err;
        outcome = 'aborted';
        failureLabel = 'aborted';
        faultDomain = '';
      }
    }
    if (outcome !== 'pass') {
      const failed = await rig.holdAll();
      for (const f of failed) bus.emit({ type: 'fault', scenario: scenario.name, trial, device: 'rig', code: 'hold-failed', message: f, tMs: clock.nowMs() - startMs });
    }
    const record: TrialRecord = {
      scenario: scenario.name,
      scenarioVersion: scenario.version,
      trial,
      icId,
      seed,
      outcome,
      success: outcome === 'pass',
      firstAttemptSuccess: outcome === 'pass' && firstAttemptSuccess && Object.keys(corrections).length === 0,
      stagesReached,
      stagesTotal: scenario.stages.length,
      rubricScore: totalWeight > 0 ? rubric / totalWeight : 0,
      failureLabel,
      faultDomain,
      corrections,
      startMs,
      durationMs,
      timeoutMs: scenario.trialTimeoutMs,
      peakForceN,
      wallStartMs,
      wallMs: performance.now() - wallT0,
    };
    bus.emit({ type: 'trial-end', record });
    return record;
  }
}
