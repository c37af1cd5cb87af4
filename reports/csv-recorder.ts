/**
 * The CSV recorder: a listener on the event stream that writes trials.csv, steps.csv and
 * corrections.csv. Rows of a trial are held until the trial ends, then its steps and corrections
 * are written and flushed to disk (fsync), then its trial row, flushed too, before the next trial
 * starts: a crash loses at most the trial in progress, and a trial row on disk has its details.
 *
 * A simulated run in trial blocks ends trials a hundred times a second, and three fsyncs a trial
 * kept its thread waiting for the disk about 7% of the time. There (`syncEveryMs`) trial rows wait
 * up to that long and go to disk together, still after their details: a crash can then lose the
 * trials that ended in that time, which `--resume` runs again with identical rows.
 *
 * devices.csv (identity and link health per device) is written when the run ends.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { csvParse } from 'd3-dsv';
import { monotonicMs } from '../harness/clock.ts';
import type { AttemptRecord, CorrectionRecord, HarnessEvent, TrialRecord } from '../harness/events.ts';
import { CORRECTION_COLUMNS, correctionRow, DEVICE_COLUMNS, deviceRow, runContext, STEP_COLUMNS, stepRow, TRIAL_COLUMNS, trialRow, type RunContext } from './columns.ts';

type Cell = string | number;

/** CSV text for rows; cells starting with = + - @ (and tab/CR) are escaped against formula injection. */
export function toCsv(rows: readonly (readonly Cell[])[]): string {
  return rows.length === 0 ? '' : stringify(rows as Cell[][], { escape_formulas: true, record_delimiter: 'unix' });
}

/**
 * The rows of a report CSV as objects keyed by its header (a missing trailing cell reads as ''),
 * blank lines skipped; none when the file does not exist. Parsed with d3-dsv (RFC 4180): about
 * 3x faster than csv-parse on a run's signals.csv (341,598 rows: 0.6-0.8 s against 2.2 s), which
 * the report reads whole at the end of every run. csv-parse stays for crash repair, which needs the
 * byte offset of each row.
 */
export function readCsvRows(file: string): Record<string, string>[] {
  if (!existsSync(file)) return [];
  const rows: Record<string, string>[] = csvParse(readFileSync(file, 'utf8'));
  return rows.filter((r) => Object.values(r).some((v) => v !== ''));
}

/** Writes all of `text` (a write may take fewer bytes than given). */
export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
}

export class CsvRecorder {
  readonly files: { trials: string; steps: string; corrections: string; devices: string };
  private ctx: RunContext | undefined;
  private steps: Cell[][] = [];
  private corrections: Cell[][] = [];

  private fds: { trials: number; steps: number; corrections: number } | undefined;
  /** Trial rows whose steps and corrections are written, waiting to go to disk together. */
  private held: string[] = [];
  private lastSync = -Infinity;
  private syncTimer: NodeJS.Timeout | undefined;
  private lateFailure: unknown;

  /**
   * `traceSlice` gives the trials.csv `traces` cell of the trial that just ended. With `resume`,
   * the files of an interrupted run (repaired first) are appended to, not started afresh.
   */
  constructor(
    readonly dir: string,
    private readonly traceSlice: () => string = () => '',
    private readonly resume = false,
    /** Wall ms a trial row may wait for others before the rows go to disk (0: each trial at once). */
    private readonly syncEveryMs = 0,
  ) {
    this.files = {
      trials: path.join(dir, 'trials.csv'),
      steps: path.join(dir, 'steps.csv'),
      corrections: path.join(dir, 'corrections.csv'),
      devices: path.join(dir, 'devices.csv'),
    };
  }

  readonly listener = (e: HarnessEvent): void => {
    switch (e.type) {
      case 'run-start':
        this.start(runContext(e.run));
        break;
      case 'attempt-end':
        if (this.ctx) this.steps.push(stepRow(this.ctx, e.record));
        break;
      case 'correction':
        if (this.ctx) this.corrections.push(correctionRow(this.ctx, e.record));
        break;
      case 'trial-end': {
        if (!this.ctx) break;
        this.writeRows(toCsv(this.steps), toCsv(this.corrections), toCsv([trialRow(this.ctx, e.record, this.traceSlice())]));
        this.steps = [];
        this.corrections = [];
        break;
      }
      case 'run-end':
        this.close();
        break;
      case 'devices':
        if (this.ctx) writeFileSync(this.files.devices, toCsv([[...DEVICE_COLUMNS], ...e.devices.map((d) => deviceRow(this.ctx!, d))]));
        break;
      default:
        break;
    }
  };

  /** Opens the report files for a run with this context (a new run writes the headers). */
  start(ctx: RunContext): void {
    this.ctx = ctx;
    const open = (file: string, columns: readonly string[]): number => {
      // A new run starts each file with its header; a resumed one keeps what is there.
      if (!this.resume || !existsSync(file) || statSync(file).size === 0) writeFileSync(file, toCsv([[...columns]]));
      return openSync(file, 'a');
    };
    this.fds = { trials: open(this.files.trials, TRIAL_COLUMNS), steps: open(this.files.steps, STEP_COLUMNS), corrections: open(this.files.corrections, CORRECTION_COLUMNS) };
  }

  /**
   * Writes one finished trial with its stage attempts and corrections under `ctx` (a fleet's
   * coordinator writes each trial with the context of the rig that ran it).
   */
  writeTrial(ctx: RunContext, record: TrialRecord, attempts: readonly AttemptRecord[], corrections: readonly CorrectionRecord[], traces = ''): void {
    this.writeRows(toCsv(attempts.map((a) => stepRow(ctx, a))), toCsv(corrections.map((c) => correctionRow(ctx, c))), toCsv([trialRow(ctx, record, traces)]));
  }

  private writeRows(steps: string, corrections: string, trial: string): void {
    this.throwLateFailure();
    if (!this.fds) return;
    writeAll(this.fds.steps, steps);
    writeAll(this.fds.corrections, corrections);
    this.held.push(trial);
    const now = monotonicMs();
    if (now - this.lastSync >= this.syncEveryMs) this.sync();
    else {
      this.syncTimer ??= setTimeout(() => {
        try {
          this.sync();
        } catch (err) {
          this.lateFailure = err;
        }
      }, this.syncEveryMs - (now - this.lastSync)).unref();
    }
  }

  /** A write that failed in a timer (the disk is full, say) fails the next write or the close. */
  private throwLateFailure(): void {
    if (this.lateFailure === undefined) return;
    const err = this.lateFailure;
    this.lateFailure = undefined;
    throw err;
  }

  /** Writes the held trial rows, after their steps and corrections are on disk: a trial row on disk means its details are there too. */
  private sync(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    if (this.fds === undefined || this.held.length === 0) return;
    fsyncSync(this.fds.steps);
    fsyncSync(this.fds.corrections);
    writeAll(this.fds.trials, this.held.join(''));
    fsyncSync(this.fds.trials);
    this.held = [];
    this.lastSync = monotonicMs();
  }

  /** Writes what is held and closes the report files (the run ended). Safe to call twice. */
  close(): void {
    if (this.fds === undefined) return;
    try {
      this.sync();
    } finally {
      for (const fd of Object.values(this.fds)) closeSync(fd);
      this.fds = undefined;
    }
    this.throwLateFailure();
  }
}
