/**
 * The one typed event stream. The runner emits; recorders and report writers listen.
 * Adding a report format means adding a listener, never touching the runner.
 *
 * Times: `tMs` is clock time (virtual or real) in ms since the run started; `wallMs` is epoch ms.
 */
import type { DeviceInfo, LinkStats, RigMode } from '../drivers/types.ts';

export type Outcome = 'pass' | 'fail' | 'error' | 'timeout' | 'aborted';
export type AttemptOutcome = 'done' | 'failed' | 'timeout' | 'error' | 'aborted';
export type Actor = 'harness' | 'supervisor' | 'operator' | 'scenario';

export interface Measurement {
  name: string;
  value: number;
  unit: string;
  min?: number;
  max?: number;
  ok: boolean;
}

export interface CorrectionRecord {
  scenario: string;
  trial: number;
  stage: string;
  attempt: number;
  tMs: number;
  kind: string;
  triggerCheck: string;
  triggerValue: number | undefined;
  triggerUnit: string;
  actor: Actor;
  recovered: boolean;
  durationMs: number;
}

export interface AttemptRecord {
  scenario: string;
  trial: number;
  stage: string;
  stageIndex: number;
  attempt: number;
  startMs: number;
  durationMs: number;
  outcome: AttemptOutcome;
  failureLabel: string;
  measurements: Measurement[];
}

/**
 * Whose fault a trial that was not a clean pass is: the task (the scenario failed, or pushed a
 * limit), the firmware (a device refused, rebooted or reported an error), the rig (a link lost,
 * a device silent, a failed reset), or the harness (a bug of ours). Empty for a pass or an abort.
 */
export type FaultDomain = 'task' | 'firmware' | 'rig' | 'harness';

export interface TrialRecord {
  scenario: string;
  scenarioVersion: string;
  trial: number;
  icId: string;
  seed: number;
  outcome: Outcome;
  success: boolean;
  firstAttemptSuccess: boolean;
  stagesReached: number;
  stagesTotal: number;
  rubricScore: number;
  failureLabel: string;
  faultDomain: FaultDomain | '';
  corrections: Record<string, number>;
  startMs: number;
  durationMs: number;
  timeoutMs: number;
  peakForceN: number;
  wallStartMs: number;
  wallMs: number;
}

export interface RunInfo {
  runId: string;
  rigId: string;
  rigMode: RigMode;
  seed: number;
  clock: 'real' | 'virtual';
  devices: DeviceInfo[];
  scenarios: { name: string; version: string; trials: number }[];
  skipped: { name: string; reason: string }[];
  config: unknown;
  profile: string;
  startedWallMs: number;
}

/** One device's identity and link health over the run, for devices.csv. */
export interface DeviceHealth {
  info: DeviceInfo;
  stats: LinkStats;
  /** Times the harness reopened the link after losing it. */
  reconnects: number;
  /** Messages received per second of clock time since bring-up. */
  rxRateHz: number;
}

export type HarnessEvent =
  | { type: 'run-start'; run: RunInfo }
  | { type: 'devices'; devices: DeviceHealth[] }
  | { type: 'run-end'; runId: string; tMs: number; wallMs: number; aborted: boolean }
  | { type: 'scenario-start'; scenario: string; version: string; trials: number; tMs: number }
  | { type: 'scenario-skip'; scenario: string; reason: string }
  | { type: 'scenario-end'; scenario: string; tMs: number }
  | { type: 'trial-start'; scenario: string; trial: number; icId: string; tMs: number }
  | { type: 'trial-end'; record: TrialRecord }
  | { type: 'stage-start'; scenario: string; trial: number; stage: string; tMs: number }
  | { type: 'stage-end'; scenario: string; trial: number; stage: string; reached: boolean; tMs: number }
  | { type: 'attempt-end'; record: AttemptRecord }
  | { type: 'measurement'; scenario: string; trial: number; stage: string; measurement: Measurement; tMs: number }
  | { type: 'correction'; record: CorrectionRecord }
  | { type: 'fault'; scenario: string; trial: number; device: string; code: string; message: string; tMs: number; domain?: FaultDomain; reactionUs?: number }
  | { type: 'sample'; channel: string; value: number; tMs: number }
  /** An operator's answer: a reset confirmed or skipped, a verdict on a trial. */
  | { type: 'operator'; kind: 'reset' | 'verdict'; scenario: string; trial: number; answer: string; by: string; tMs: number }
  /** An operator's pause or resume (from the terminal or MQTT), said to every listener. */
  | { type: 'control'; action: 'pause' | 'resume'; by: string; tMs: number };

export type Listener = (event: HarnessEvent) => void;

/**
 * A synchronous fan-out bus. Listeners run in subscription order; a listener that throws is
 * reported once on stderr and detached, so one broken writer never stops the run or the others.
 */
export class EventBus {
  private listeners: Listener[] = [];
  private readonly failures: { listener: Listener; error: unknown }[] = [];

  subscribe(listener: Listener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(event: HarnessEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (error) {
        this.failures.push({ listener: l, error });
        this.listeners = this.listeners.filter((x) => x !== l);
        process.stderr.write(`dexhil: a report listener failed on '${event.type}' and was detached: ${String(error)}\n`);
      }
    }
  }

  /** Listener failures so far (a run that lost a writer must say so). */
  get listenerFailures(): readonly { error: unknown }[] {
    return this.failures;
  }
}
