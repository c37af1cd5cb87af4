/**
 * signals.csv: the force/torque and grip signals around the events of a trial, for the plots of
 * report.html. For every trial that failed, erred, timed out or made a correction, the samples
 * from 2 s before its first event to 1 s after its last one (within the trial) are written:
 *
 *   run_id, scenario, trial, t_ms (ms since the trial started, as corrections.csv's t_ms), channel, value
 *
 * Channels: `<sensor>.force_n` and `<sensor>.torque_nm` (magnitudes) of each F/T sensor, and
 * `<hand>.grip_n` (the sum of the fingertip forces). Raw samples, no down-sampling: this file is
 * the record, the report thins what it draws.
 *
 * Like the trace recorder, it taps the devices (again after a reconnect) and listens to the event
 * stream; a trial's rows are written before its trials.csv row, so a row on disk has its signals.
 */
import { closeSync, existsSync, openSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HarnessEvent } from '../harness/events.ts';
import type { Rig } from '../harness/rig.ts';
import { toCsv, writeAll } from './csv-recorder.ts';

export const SIGNAL_COLUMNS = ['run_id', 'scenario', 'trial', 't_ms', 'channel', 'value'] as const;

/**
 * Keeps a series' shape in at most about 2*buckets points: each time bucket's lowest and highest.
 * The series is times `t` (ascending) and values `v`; the points kept come as [t0, v0, t1, v1, ...].
 */
export function thin(t: ArrayLike<number>, v: ArrayLike<number>, buckets = 90): Float64Array {
  const n = t.length;
  const kept: number[] = [];
  if (n <= 2 * buckets) for (let i = 0; i < n; i++) kept.push(i);
  else {
    const t0 = t[0]!;
    const span = t[n - 1]! - t0 || 1;
    let b = -1;
    let lo = -1;
    let hi = -1;
    const flush = (): void => {
      if (lo < 0) return;
      if (lo === hi) kept.push(lo);
      else if (t[lo]! <= t[hi]!) kept.push(lo, hi);
      else kept.push(hi, lo);
    };
    for (let i = 0; i < n; i++) {
      const k = Math.min(buckets - 1, Math.floor(((t[i]! - t0) / span) * buckets));
      if (k !== b) {
        flush();
        b = k;
        lo = i;
        hi = i;
      } else {
        if (v[i]! < v[lo]!) lo = i;
        if (v[i]! > v[hi]!) hi = i;
      }
    }
    flush();
  }
  const out = new Float64Array(2 * kept.length);
  kept.forEach((i, j) => {
    out[2 * j] = t[i]!;
    out[2 * j + 1] = v[i]!;
  });
  return out;
}

/**
 * A trial's signals as report.html draws them: by channel, the points kept by `thin` as
 * [t0, v0, t1, v1, ...] (seconds since the trial started, value), as signals.csv carries them (t_ms
 * to 0.1 ms, values to 4 decimals). Flat arrays of numbers: they cross from worker threads as one
 * copy each, and a run keeps every trial's.
 */
export type SignalPlot = Record<string, Float64Array>;

/** How much signal before the first event and after the last one goes into the file. */
export const SIGNAL_BEFORE_MS = 2000;
export const SIGNAL_AFTER_MS = 1000;

/*
 * A signals.csv row's numbers are `t.toFixed(1)` and `Number(v.toFixed(4))`, which cost more than the
 * rest of the row (a few hundred thousand rows a run). Below, the same numbers from integer
 * rounding: x * 10^k rounded to the nearest integer is toFixed's digits, and dividing it back by
 * 10^k gives the very double that parsing those digits gives (both are correctly rounded), except
 * where x * 10^k lies within a hair of a half: there the product's own rounding could tip it the
 * other way from toFixed's exact decimal rounding, so toFixed decides. A test holds both to
 * toFixed, near-halves included.
 */

/** How far from a half the fractional part of x * 10^k must be for integer rounding to agree with toFixed. */
const HALF_MARGIN = 1e-6;

/** `t.toFixed(1)` as a count of tenths (the digits without the point), or -1 where toFixed must say. */
export function tenths(t: number): number {
  const y = t * 10;
  if (!(y >= 0 && y < 1e9)) return -1;
  // `| 0`: a whole number below 2^31, and -0 (t = -0) becomes 0 as toFixed's digits do.
  return Math.abs(y - Math.floor(y) - 0.5) > HALF_MARGIN ? Math.round(y) | 0 : -1;
}

/** A signals.csv time cell, `t.toFixed(1)`, from `n = tenths(t)` where that is not -1. */
export function timeCell(t: number, n: number): string {
  return n >= 0 ? `${(n - (n % 10)) / 10}.${n % 10}` : t.toFixed(1);
}

/** `Number(v.toFixed(4))`: `v` to 4 decimals. */
export function round4(v: number): number {
  const y = v * 1e4;
  if (y === 0) return 0; // toFixed writes -0 as "0.0000"
  if (Math.abs(y) < 1e9 && Math.abs(y - Math.floor(y) - 0.5) > HALF_MARGIN) return Math.round(y) / 1e4;
  return Number(v.toFixed(4));
}

/** One channel's samples in the trial so far: times (ms since trial start) and values. */
interface Channel {
  t: number[];
  v: number[];
}

/**
 * Calls `on(channel, tMs, value)` with the rig's force/torque and grip signals as they arrive:
 * `<sensor>.force_n` and `<sensor>.torque_nm` (magnitudes) of each F/T sensor, `<hand>.grip_n`
 * (the sum of the fingertip forces); `tMs` is the rig clock's receive time. Follows the devices
 * through reconnects. Returns the function that stops it.
 */
export function tapSignals(rig: Rig, on: (channel: string, tMs: number, value: number) => void): () => void {
  const untap: (() => void)[] = [];
  const tap = (): void => {
    for (const u of untap.splice(0)) u();
    for (const s of rig.sensors) {
      const force = `${s.name}.force_n`;
      const torque = `${s.name}.torque_nm`;
      untap.push(
        s.driver.onSample((w) => {
          on(force, w.rxMs, Math.hypot(w.fx, w.fy, w.fz));
          on(torque, w.rxMs, Math.hypot(w.tx, w.ty, w.tz));
        }),
      );
    }
    const hand = rig.hand;
    if (hand !== undefined) {
      const grip = `${hand.name}.grip_n`;
      untap.push(hand.onState((h) => on(grip, h.rxMs, h.tipForceN.reduce((a, b) => a + b, 0))));
    }
  };
  tap();
  const offReconnect = rig.onReconnect(() => tap());
  return () => {
    offReconnect();
    for (const u of untap.splice(0)) u();
  };
}

/** A finished trial's signals: its signals.csv rows and its report.html plot. */
export interface TrialSignals {
  rows: string;
  plot: SignalPlot;
}

/**
 * A trial's signals, from the rig's taps and the event stream: `observe` each event; at a trial's
 * end it returns the trial's signals.csv rows (possibly none). It writes nothing itself, so a
 * simulated rig in a worker thread can hand the rows to the thread that owns the file.
 */
export class SignalCollector {
  private trial: { scenario: string; trial: number; startMs: number; events: number[] } | undefined;
  private channels = new Map<string, Channel>();
  private readonly untap: () => void;

  constructor(rig: Rig) {
    this.untap = tapSignals(rig, (channel, tMs, value) => this.record(channel, tMs, value));
  }

  private record(channel: string, tMs: number, value: number): void {
    if (this.trial === undefined) return;
    let c = this.channels.get(channel);
    if (c === undefined) {
      c = { t: [], v: [] };
      this.channels.set(channel, c);
    }
    c.t.push(tMs - this.trial.startMs);
    c.v.push(value);
  }

  /**
   * Follows the event stream; at a trial's end, returns its signals.csv rows (text, maybe '') and
   * its plot for report.html (the same points, thinned; empty when the rows are).
   */
  observe(e: HarnessEvent, runId: string): TrialSignals | undefined {
    switch (e.type) {
      case 'trial-start':
        this.trial = { scenario: e.scenario, trial: e.trial, startMs: e.tMs, events: [] };
        this.channels = new Map();
        return undefined;
      case 'correction':
        this.trial?.events.push(e.record.tMs);
        return undefined;
      case 'trial-end': {
        const tr = this.trial;
        this.trial = undefined;
        if (tr === undefined) return undefined;
        const r = e.record;
        const events = [...tr.events];
        if (r.outcome === 'fail' || r.outcome === 'error' || r.outcome === 'timeout') events.push(r.durationMs);
        if (events.length === 0) return { rows: '', plot: {} };
        const from = Math.max(0, Math.min(...events) - SIGNAL_BEFORE_MS);
        const to = Math.min(r.durationMs, Math.max(...events) + SIGNAL_AFTER_MS);
        // The rows as toCsv writes them, built by hand: this file takes a few hundred thousand rows
        // a run, and csv-stringify's per-cell work was most of the recorder's time. The text cells
        // go through toCsv once a trial (quoting, formula escape); the number cells need neither
        // (t_ms is text but never negative: rows start at `from` >= 0, so it needs no escape).
        // The plot's points are those cells' numbers.
        const lead = toCsv([[runId, tr.scenario, tr.trial]]).slice(0, -1);
        let rows = '';
        const plot: SignalPlot = {};
        for (const [name, c] of [...this.channels].sort(([a], [b]) => a.localeCompare(b))) {
          const channel = toCsv([[name]]).slice(0, -1);
          const ts: number[] = [];
          const vs: number[] = [];
          for (let i = 0; i < c.t.length; i++) {
            const t = c.t[i]!;
            if (t < from || t > to) continue;
            const n = tenths(t);
            const tCell = timeCell(t, n);
            const v = round4(c.v[i]!);
            rows += `${lead},${tCell},${channel},${v}\n`;
            ts.push((n >= 0 ? n / 10 : Number(tCell)) / 1000);
            vs.push(v);
          }
          if (ts.length > 0) plot[name] = thin(ts, vs);
        }
        return { rows, plot };
      }
      default:
        return undefined;
    }
  }

  /** Stops listening to the devices. Safe to call twice. */
  close(): void {
    this.untap();
  }
}

/**
 * signals.csv of a run: collects from `rig` and writes each trial's rows when it ends. Without a
 * rig (trials run on simulated rigs in worker threads), it writes the rows it is given (`add`).
 * It keeps each trial's plot for report.html, which then need not read the file back; a resumed
 * run keeps none (its earlier trials are only in the file).
 */
export class SignalRecorder {
  readonly file: string;
  /** The plot of every trial with signals, by `scenario#trial` (undefined when resuming). */
  readonly plots: Map<string, SignalPlot> | undefined;
  private fd: number | undefined;
  private runId = '';
  private readonly collector: SignalCollector | undefined;

  constructor(
    dir: string,
    rig: Rig | undefined,
    private readonly resume = false,
  ) {
    this.file = path.join(dir, 'signals.csv');
    this.collector = rig === undefined ? undefined : new SignalCollector(rig);
    this.plots = resume ? undefined : new Map();
  }

  readonly listener = (e: HarnessEvent): void => {
    if (e.type === 'run-start') {
      this.runId = e.run.runId;
      if (!this.resume || !existsSync(this.file) || statSync(this.file).size === 0) writeFileSync(this.file, toCsv([[...SIGNAL_COLUMNS]]));
      this.fd = openSync(this.file, 'a');
    } else if (e.type === 'run-end') this.close();
    else {
      const signals = this.collector?.observe(e, this.runId);
      if (signals !== undefined && e.type === 'trial-end') this.add(e.record, signals);
    }
  };

  /** Appends a finished trial's rows (before its trials.csv row) and keeps its plot. */
  add(trial: { scenario: string; trial: number }, signals: TrialSignals): void {
    if (this.fd !== undefined && signals.rows !== '') writeAll(this.fd, signals.rows);
    if (this.plots !== undefined && Object.keys(signals.plot).length > 0) this.plots.set(`${trial.scenario}#${trial.trial}`, signals.plot);
  }

  /** Stops listening to the devices and closes the file. Safe to call twice. */
  close(): void {
    this.collector?.close();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
