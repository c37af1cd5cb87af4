/**
 * Column definitions of the CSV reports. One table per file; the README documents each column
 * from here, and the golden-file tests pin them.
 */
import type { AttemptRecord, CorrectionRecord, DeviceHealth, RunInfo, TrialRecord } from '../harness/events.ts';

export interface RunContext {
  runId: string;
  rigId: string;
  rigMode: string;
  firmware: string;
}

/** The columns every row of a run shares, from its run-start: rig mode and firmware as `name=value;...`. */
export function runContext(run: RunInfo): RunContext {
  return {
    runId: run.runId,
    rigId: run.rigId,
    rigMode: Object.entries(run.rigMode).map(([k, v]) => `${k}=${v}`).join(';'),
    firmware: run.devices.map((d) => `${d.name}=${d.firmware}`).join(';'),
  };
}

type Cell = string | number;

export const TRIAL_COLUMNS = [
  'run_id', 'rig_id', 'rig_mode', 'scenario', 'scenario_version', 'trial', 'ic_id', 'seed', 'outcome', 'success',
  'first_attempt_success', 'stages_reached', 'stages_total', 'rubric_score', 'failure_label', 'fault_domain', 'corrections_total',
  'corrections_by_kind', 'duration_ms', 'timeout_ms', 'peak_force_n', 'firmware', 'started_at', 'wall_ms', 'traces',
] as const;

export const STEP_COLUMNS = [
  'run_id', 'scenario', 'trial', 'stage_index', 'stage', 'attempt', 'start_ms', 'duration_ms', 'outcome', 'failure_label',
  'measurements_ok', 'measurements',
] as const;

export const CORRECTION_COLUMNS = [
  'run_id', 'scenario', 'trial', 'stage', 'attempt', 't_ms', 'kind', 'trigger_check', 'trigger_value', 'trigger_unit',
  'actor', 'recovered', 'duration_ms',
] as const;

export const DEVICE_COLUMNS = [
  'run_id', 'device', 'kind', 'transport', 'mode', 'model', 'firmware', 'protocol', 'serial', 'rx', 'tx', 'crc_errors',
  'seq_gaps', 'malformed', 'reboots', 'reconnects', 'rx_rate_hz',
] as const;

/** Columns that legitimately differ between two runs with the same seed. */
export const NONDETERMINISTIC_COLUMNS: ReadonlySet<string> = new Set(['run_id', 'started_at', 'wall_ms']);

const ms = (v: number): string => v.toFixed(1);
const num = (v: number, digits = 4): string => (Number.isFinite(v) ? Number(v.toFixed(digits)).toString() : '');
const bool = (v: boolean): number => (v ? 1 : 0);

/** `traces`: the trial's slice of each raw trace, e.g. `arm.log:120-4410;hand.serial.txt:31-950`. */
export function trialRow(ctx: RunContext, r: TrialRecord, traces = ''): Cell[] {
  const kinds = Object.entries(r.corrections).sort(([a], [b]) => a.localeCompare(b));
  return [
    ctx.runId, ctx.rigId, ctx.rigMode, r.scenario, r.scenarioVersion, r.trial, r.icId, r.seed, r.outcome, bool(r.success),
    bool(r.firstAttemptSuccess), r.stagesReached, r.stagesTotal, num(r.rubricScore), r.failureLabel, r.faultDomain,
    kinds.reduce((s, [, n]) => s + n, 0), kinds.map(([k, n]) => `${k}=${n}`).join(';'), ms(r.durationMs), r.timeoutMs,
    num(r.peakForceN, 2), ctx.firmware, new Date(r.wallStartMs).toISOString(), ms(r.wallMs), traces,
  ];
}

export function stepRow(ctx: RunContext, a: AttemptRecord): Cell[] {
  return [
    ctx.runId, a.scenario, a.trial, a.stageIndex + 1, a.stage, a.attempt, ms(a.startMs), ms(a.durationMs), a.outcome, a.failureLabel,
    bool(a.measurements.every((m) => m.ok)),
    a.measurements
      .map((m) => `${m.name}=${num(m.value)} ${m.unit} [${m.min === undefined ? '' : num(m.min)}..${m.max === undefined ? '' : num(m.max)}] ${m.ok ? 'ok' : 'out'}`)
      .join('; '),
  ];
}

export function correctionRow(ctx: RunContext, c: CorrectionRecord): Cell[] {
  return [
    ctx.runId, c.scenario, c.trial, c.stage, c.attempt, ms(c.tMs), c.kind, c.triggerCheck,
    c.triggerValue === undefined ? '' : num(c.triggerValue), c.triggerUnit, c.actor, bool(c.recovered), ms(c.durationMs),
  ];
}

export function deviceRow(ctx: RunContext, d: DeviceHealth): Cell[] {
  const { info, stats } = d;
  return [
    ctx.runId, info.name, info.kind, info.transport, info.mode, info.model, info.firmware, info.protocol, info.serial, stats.rx, stats.tx,
    stats.crcErrors, stats.seqGaps, stats.malformed, stats.reboots, d.reconnects, num(d.rxRateHz, 2),
  ];
}
