/**
 * Raw traces of a run, in `traces/` of the run folder, one file per device:
 *
 * - `<arm>.log`: CAN frames in the `candump -L` format (reports/candump.ts), sent and received,
 *   for can-utils (canplayer, log2asc), python-can (CanutilsLogReader) and SavvyCAN;
 * - `<device>.serial.txt`: serial lines, one per line, with the same timestamp in front, the
 *   device name and the direction:
 *
 *     (1700000000.123456) hand rx =812,1234567,...*4F2A
 *     (1700000000.123901) hand tx $40,POS,300,...*91C0
 *
 *   Bytes outside printable ASCII (and the backslash) are written as `\xNN` (`\\`), so a corrupt
 *   line stays one line and shows what arrived.
 *
 * The recorder is a listener on the event stream too: each trial's slice of every trace (line
 * numbers, 1-based, inclusive) goes into its trials.csv row, and every trace is written out
 * before that row is, so a row on disk means its traces are there too.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { CanFrame, CanTrace, LineTrace } from '../drivers/types.ts';
import type { Clock } from '../harness/clock.ts';
import type { HarnessEvent } from '../harness/events.ts';
import type { TraceSink } from '../harness/rig.ts';
import { candumpLineUs, logStampUs } from './candump.ts';

/** `on`: always; `off`: never; `auto`: when the rig runs in wall time (a real device is in it). */
export type TraceMode = 'on' | 'off' | 'auto';

/**
 * Buffered characters after which a device's trace is written out before the trial ends. Small
 * enough that buffered lines are collected young: a 1 MiB buffer halved CAN ingest (bench).
 */
const FLUSH_CHARS = 1 << 16;

export interface TraceFile {
  device: string;
  /** Path relative to the run folder. */
  file: string;
  format: 'candump -L' | 'serial lines';
  records: number;
}

class DeviceTrace {
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingChars = 0;
  /** Lines written or pending. */
  records = 0;
  /** Line number at which the current trial started. */
  trialStart = 1;

  constructor(
    readonly info: TraceFile,
    private readonly absPath: string,
    resume: boolean,
  ) {
    if (resume && existsSync(absPath)) {
      // Continue after what an interrupted run wrote: cut a torn last line, count the rest.
      const buf = readFileSync(absPath);
      const whole = buf.lastIndexOf(0x0a) + 1;
      if (whole < buf.length) truncateSync(absPath, whole);
      for (let i = 0; i < whole; i++) if (buf[i] === 0x0a) this.records++;
      this.trialStart = this.records + 1;
    }
  }

  add(line: string): void {
    this.pending.push(line);
    this.pendingChars += line.length + 1;
    this.records++;
    if (this.pendingChars >= FLUSH_CHARS) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.fd ??= openSync(this.absPath, 'a');
    writeSync(this.fd, this.pending.join('\n') + '\n');
    this.pending = [];
    this.pendingChars = 0;
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const PRINTABLE = /^[\x20-\x5b\x5d-\x7e]*$/;

/** Serial text made printable and single-line: `\xNN` for bytes outside 0x20..0x7e, `\\` for `\`. */
export function escapeTraceText(text: string): string {
  if (PRINTABLE.test(text)) return text;
  return text.replace(/[^\x20-\x5b\x5d-\x7e]|\\/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** One serial trace line, at integer microseconds since the epoch. */
export function serialTraceLine(epochUs: number, device: string, dir: 'rx' | 'tx', text: string): string {
  return `${logStampUs(epochUs)} ${device} ${dir} ${escapeTraceText(text)}`;
}

export interface SerialTraceRecord {
  epochUs: bigint;
  device: string;
  dir: 'rx' | 'tx';
  /** The line as it was sent or received (escapes undone, latin1). */
  text: string;
}

const SERIAL_LINE = /^\((\d+)\.(\d{6})\) (\S+) (rx|tx) (.*)$/;

/** Reads one serial trace line back. @throws Error naming the line when it is not one. */
export function parseSerialTraceLine(line: string): SerialTraceRecord {
  const m = SERIAL_LINE.exec(line);
  if (m === null) throw new Error(`not a serial trace line: ${JSON.stringify(line.slice(0, 80))}`);
  const [, sec, frac, device, dir, body] = m as unknown as [string, string, string, string, 'rx' | 'tx', string];
  const text = body.replace(/\\(\\|x([0-9a-f]{2}))/g, (_, esc: string, hex: string | undefined) => (hex === undefined ? esc : String.fromCharCode(parseInt(hex, 16))));
  return { epochUs: BigInt(sec) * 1_000_000n + BigInt(frac), device, dir, text };
}

export class TraceRecorder implements TraceSink {
  private readonly traces = new Map<string, DeviceTrace>();
  private active = false;
  /** Epoch microseconds of clock time 0. */
  private baseUs = 0;
  /** The slices of the trial that ended last, as the trials.csv `traces` cell. */
  lastSlice = '';

  /** With `resume`, traces of an interrupted run are continued, line numbers and all. */
  constructor(
    readonly dir: string,
    private readonly mode: TraceMode,
    private readonly resume = false,
  ) {}

  /** Called by the rig factory once its clock exists; decides whether this run is traced. */
  start(clock: Clock): void {
    this.active = this.mode === 'on' || (this.mode === 'auto' && clock.kind === 'real');
    this.baseUs = Math.round(clock.wallMs() * 1000 - Number(clock.nowNs()) / 1000);
    if (this.active) mkdirSync(path.join(this.dir, 'traces'), { recursive: true });
  }

  private open(device: string, file: string, format: TraceFile['format']): DeviceTrace {
    // A device reconnected during the run goes on in the same trace.
    const existing = this.traces.get(device);
    if (existing !== undefined) return existing;
    const rel = path.join('traces', file);
    const t = new DeviceTrace({ device, file: rel, format, records: 0 }, path.join(this.dir, rel), this.resume);
    this.traces.set(device, t);
    return t;
  }

  can(device: string, iface: string): CanTrace | undefined {
    if (!this.active) return undefined;
    const t = this.open(device, `${device}.log`, 'candump -L');
    return (frame: CanFrame, atNs: bigint) => t.add(candumpLineUs(frame, this.epochUs(atNs), iface));
  }

  lines(device: string): LineTrace | undefined {
    if (!this.active) return undefined;
    const t = this.open(device, `${device}.serial.txt`, 'serial lines');
    return (dir, text, atNs) => t.add(serialTraceLine(this.epochUs(atNs), device, dir, text));
  }

  private epochUs(clockNs: bigint): number {
    return this.baseUs + Math.floor(Number(clockNs) / 1000);
  }

  /** The trace files so far, with their record counts (for the manifest). */
  files(): TraceFile[] {
    return [...this.traces.values()].map((t) => ({ ...t.info, records: t.records }));
  }

  readonly listener = (e: HarnessEvent): void => {
    if (!this.active) return;
    if (e.type === 'trial-start') {
      for (const t of this.traces.values()) t.trialStart = t.records + 1;
    } else if (e.type === 'trial-end') {
      this.flush();
      this.lastSlice = [...this.traces.values()]
        .filter((t) => t.records >= t.trialStart)
        .map((t) => `${path.basename(t.info.file)}:${t.trialStart}-${t.records}`)
        .join(';');
    }
  };

  /** Writes out what is buffered. */
  flush(): void {
    for (const t of this.traces.values()) t.flush();
  }

  /** Writes out and closes every trace. Safe to call twice. */
  close(): void {
    for (const t of this.traces.values()) t.close();
  }
}
