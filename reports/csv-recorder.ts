/**
 * The CSV recorder: a listener on the event stream that writes trials.csv, steps.csv and
 * corrections.csv. Rows of a trial are held until the trial ends and then appended to all three
 * files at once, so a crash loses at most the trial in progress. devices.csv (identity and link
 * health per device) is written when the run ends.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { HarnessEvent } from '../harness/events.ts';
import { CORRECTION_COLUMNS, correctionRow, DEVICE_COLUMNS, deviceRow, STEP_COLUMNS, stepRow, TRIAL_COLUMNS, trialRow, type RunContext } from './columns.ts';

type Cell = string | number;

/** CSV text for rows; cells starting with = + - @ (and tab/CR) are escaped against formula injection. */
export function toCsv(rows: readonly (readonly Cell[])[]): string {
  return rows.length === 0 ? '' : stringify(rows as Cell[][], { escape_formulas: true, record_delimiter: 'unix' });
}

export class CsvRecorder {
  readonly files: { trials: string; steps: string; corrections: string; devices: string };
  private ctx: RunContext | undefined;
  private steps: Cell[][] = [];
  private corrections: Cell[][] = [];
  trialsWritten = 0;

  /** `traceSlice` gives the trials.csv `traces` cell of the trial that just ended. */
  constructor(
    readonly dir: string,
    private readonly traceSlice: () => string = () => '',
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
      case 'run-start': {
        const { run } = e;
        this.ctx = {
          runId: run.runId,
          rigId: run.rigId,
          rigMode: Object.entries(run.rigMode).map(([k, v]) => `${k}=${v}`).join(';'),
          firmware: run.devices.map((d) => `${d.name}=${d.firmware}`).join(';'),
        };
        writeFileSync(this.files.trials, toCsv([[...TRIAL_COLUMNS]]));
        writeFileSync(this.files.steps, toCsv([[...STEP_COLUMNS]]));
        writeFileSync(this.files.corrections, toCsv([[...CORRECTION_COLUMNS]]));
        break;
      }
      case 'attempt-end':
        if (this.ctx) this.steps.push(stepRow(this.ctx, e.record));
        break;
      case 'correction':
        if (this.ctx) this.corrections.push(correctionRow(this.ctx, e.record));
        break;
      case 'trial-end':
        if (!this.ctx) break;
        // Steps and corrections first: a trial row on disk means its details are there too.
        appendFileSync(this.files.steps, toCsv(this.steps));
        appendFileSync(this.files.corrections, toCsv(this.corrections));
        appendFileSync(this.files.trials, toCsv([trialRow(this.ctx, e.record, this.traceSlice())]));
        this.steps = [];
        this.corrections = [];
        this.trialsWritten++;
        break;
      case 'devices':
        if (this.ctx) writeFileSync(this.files.devices, toCsv([[...DEVICE_COLUMNS], ...e.devices.map((d) => deviceRow(this.ctx!, d))]));
        break;
      default:
        break;
    }
  };
}
