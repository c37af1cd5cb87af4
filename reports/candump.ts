/**
 * CAN traces in the `candump -L` log format, which can-utils (canplayer, log2asc), python-can
 * (CanutilsLogReader) and SavvyCAN read:
 *
 *   (1700000000.123456) can0 123#DEADBEEF      standard data frame
 *   (1700000000.123456) can0 1ABCDEF0#0102     extended: 8 hex digits
 *   (1700000000.123456) can0 7E0#R2            remote frame with its DLC (`#R` alone for DLC 0)
 *
 * Timestamps are seconds.microseconds since the epoch, from nanoseconds (bigint) so no precision
 * is lost. can-utils skips lines that do not start with `(`, but python-can 4.1 (Debian bookworm)
 * reads every non-empty line as a frame and fails on anything else, so the traces we write carry
 * no annotation lines (run metadata goes into manifest.json); the parser still skips them in logs
 * written by other tools.
 */
import type { CanFrame } from '../drivers/types.ts';

/** One `candump -L` line (no newline) for a frame seen at `epochNs` on `iface`. */
export function candumpLine(frame: CanFrame, epochNs: bigint, iface: string): string {
  return candumpLineUs(frame, Number(epochNs / 1000n), iface);
}

/** The same from integer microseconds since the epoch (exact in a double until the year 2255). */
export function candumpLineUs(frame: CanFrame, epochUs: number, iface: string): string {
  const id = frame.id.toString(16).toUpperCase().padStart(frame.ext ? 8 : 3, '0');
  const body = frame.rtr ? `R${frame.data.length > 0 ? frame.data.length : ''}` : frame.data.toString('hex').toUpperCase();
  return `${logStampUs(epochUs)} ${iface} ${id}#${body}`;
}

/** `(seconds.microseconds)` since the epoch, from integer microseconds, as candump writes it. */
export function logStampUs(epochUs: number): string {
  const sec = Math.floor(epochUs / 1e6);
  return `(${String(sec).padStart(10, '0')}.${String(epochUs - sec * 1e6).padStart(6, '0')})`;
}

export interface CandumpRecord {
  epochUs: bigint;
  iface: string;
  frame: CanFrame;
}

const LINE = /^\((\d+)\.(\d{6})\) (\S+) ([0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})#(R\d?|(?:[0-9A-Fa-f]{2}){0,8})$/;

/**
 * Reads one log line back. Returns undefined for annotations (lines not starting with `(`).
 * @throws Error naming the problem when a frame line is malformed.
 */
export function parseCandumpLine(line: string): CandumpRecord | undefined {
  if (!line.startsWith('(')) return undefined;
  const m = LINE.exec(line);
  if (m === null) throw new Error(`not a candump -L frame line: ${JSON.stringify(line.slice(0, 80))}`);
  const [, sec, frac, iface, idText, body] = m as unknown as [string, string, string, string, string, string];
  const ext = idText.length === 8;
  const id = parseInt(idText, 16);
  if (id > (ext ? 0x1fffffff : 0x7ff)) throw new Error(`CAN id ${idText} out of range in ${JSON.stringify(line)}`);
  const rtr = body.startsWith('R');
  const data = rtr ? Buffer.alloc(body.length > 1 ? Number(body.slice(1)) : 0) : Buffer.from(body, 'hex');
  if (data.length > 8) throw new Error(`DLC ${data.length} > 8 in ${JSON.stringify(line)}`);
  return { epochUs: BigInt(sec) * 1_000_000n + BigInt(frac), iface, frame: { id, ext, rtr, data } };
}
