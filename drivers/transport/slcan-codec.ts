/**
 * The slcan (Lawicel ASCII) protocol spoken by CANable-class USB-CAN adapters, as a pure codec:
 * what the host writes (setup commands, frames to send) and what the adapter answers (received
 * frames, acknowledgements, versions, errors). Used by the slcan transport and the emulated adapter.
 *
 *   tIIILDD..[TTTT]\r   standard data frame: 3 hex id, DLC 0-8, 2 hex digits a byte
 *   TIIIIIIIILDD..\r    extended data frame: 8 hex id (29 bits)
 *   rIIIL\r  RIIIIIIIIL\r  remote (RTR) frames: DLC, no data
 *   Sn\r     bitrate n = 0..8;  O\r open;  C\r close;  Zn\r timestamps off/on;  V\r N\r F\r queries
 *   \r       "ok";  \x07 (BEL) "error";  z\r / Z\r transmit acknowledgement (dialect)
 *
 * Dialects differ; these are options, not guesses: whether received frames carry a 16-bit
 * millisecond timestamp, whether a sent frame is acknowledged with z/Z or with a bare CR, and which
 * bitrate `S7` selects (800 kbit/s on Lawicel and CANable, 750 kbit/s on some clones).
 */
import type { CanFrame } from '../types.ts';

export interface SlcanDialect {
  /** Received frames end with 4 hex digits of milliseconds (0..59999), as after `Z1`. */
  timestamps: boolean;
  /** Acknowledgement of a transmitted frame: `z`/`Z` lines (Lawicel) or a bare CR (CANable). */
  transmitAck: 'z' | 'cr';
  /** Bitrate selected by `S7`, bit/s. */
  s7Bitrate: 800_000 | 750_000;
}

export const LAWICEL: SlcanDialect = { timestamps: false, transmitAck: 'z', s7Bitrate: 800_000 };
export const CANABLE: SlcanDialect = { timestamps: false, transmitAck: 'cr', s7Bitrate: 800_000 };

const BITRATES = [10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000] as const;

/** The `Sn` setup command for a bitrate; throws RangeError for a rate slcan cannot select. */
export function bitrateCommand(bitrate: number, dialect: SlcanDialect = LAWICEL): string {
  const rates = BITRATES.map((b, i) => (i === 7 ? dialect.s7Bitrate : b));
  const n = rates.indexOf(bitrate as never);
  if (n < 0) throw new RangeError(`slcan cannot select ${bitrate} bit/s (it offers ${rates.join(', ')})`);
  return `S${n}\r`;
}

/** Bitrate of an `Sn` command (without CR), or undefined when it is not one. */
export function bitrateOf(command: string, dialect: SlcanDialect = LAWICEL): number | undefined {
  const m = /^S([0-8])$/.exec(command);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n === 7 ? dialect.s7Bitrate : BITRATES[n];
}

const hex = (v: number, digits: number): string => v.toString(16).toUpperCase().padStart(digits, '0');

/**
 * The line (with its CR) that sends `frame`, or that an adapter uses to report it received.
 * `timestampMs` is appended (mod 60000) when given. Throws RangeError for an invalid frame.
 */
export function encodeFrame(frame: CanFrame, timestampMs?: number): string {
  const { id, ext, rtr, data } = frame;
  if (!Number.isInteger(id) || id < 0 || id > (ext ? 0x1fffffff : 0x7ff)) throw new RangeError(`CAN id 0x${id.toString(16)} does not fit a${ext ? 'n extended' : ' standard'} frame`);
  if (data.length > 8) throw new RangeError(`classic CAN carries at most 8 data bytes, got ${data.length}`);
  const head = (rtr ? (ext ? 'R' : 'r') : ext ? 'T' : 't') + hex(id, ext ? 8 : 3) + String(data.length);
  const body = rtr ? '' : data.toString('hex').toUpperCase();
  const ts = timestampMs === undefined ? '' : hex(Math.floor(timestampMs) % 60_000, 4);
  return `${head}${body}${ts}\r`;
}

export type SlcanMessage =
  | { kind: 'frame'; frame: CanFrame; timestampMs?: number }
  | { kind: 'ok' }
  | { kind: 'error' }
  | { kind: 'tx-ack'; ext: boolean }
  | { kind: 'version'; hardware: string; software: string }
  | { kind: 'serial'; serial: string }
  | { kind: 'status'; flags: number }
  | { kind: 'malformed'; text: string; reason: string };

const HEX = /^[0-9A-Fa-f]*$/;

/**
 * Decodes one adapter message: `text` is a line without its CR, or `\x07` for BEL. Never throws;
 * anything it cannot read comes back as `malformed` with the reason.
 */
export function decodeMessage(text: string, dialect: SlcanDialect = LAWICEL): SlcanMessage {
  if (text === '') return { kind: 'ok' };
  if (text === '\x07') return { kind: 'error' };
  const c = text[0]!;
  if (c === 'z' || c === 'Z') return text.length === 1 ? { kind: 'tx-ack', ext: c === 'Z' } : { kind: 'malformed', text, reason: 'junk after transmit ack' };
  if (c === 'V' && text.length === 5 && HEX.test(text.slice(1))) return { kind: 'version', hardware: text.slice(1, 3), software: text.slice(3, 5) };
  if (c === 'N' && text.length === 5) return { kind: 'serial', serial: text.slice(1) };
  if (c === 'F' && text.length === 3 && HEX.test(text.slice(1))) return { kind: 'status', flags: parseInt(text.slice(1), 16) };
  if (c !== 't' && c !== 'T' && c !== 'r' && c !== 'R') return { kind: 'malformed', text, reason: `unknown message type '${c}'` };
  const ext = c === 'T' || c === 'R';
  const rtr = c === 'r' || c === 'R';
  const idLen = ext ? 8 : 3;
  if (!HEX.test(text.slice(1))) return { kind: 'malformed', text, reason: 'non-hex digit' };
  if (text.length < 2 + idLen) return { kind: 'malformed', text, reason: 'too short for id and DLC' };
  const id = parseInt(text.slice(1, 1 + idLen), 16);
  if (id > (ext ? 0x1fffffff : 0x7ff)) return { kind: 'malformed', text, reason: `id 0x${id.toString(16)} out of range` };
  const dlc = parseInt(text[1 + idLen]!, 16);
  if (dlc > 8) return { kind: 'malformed', text, reason: `DLC ${dlc} > 8` };
  const dataLen = rtr ? 0 : 2 * dlc;
  const rest = text.length - (2 + idLen + dataLen);
  const stamped = rest === 4;
  if (rest !== 0 && !stamped) return { kind: 'malformed', text, reason: `length ${text.length} does not match DLC ${dlc}` };
  if (stamped !== dialect.timestamps) return { kind: 'malformed', text, reason: dialect.timestamps ? 'timestamp missing' : 'unexpected trailing digits' };
  const start = 2 + idLen;
  const data = rtr ? Buffer.alloc(dlc) : Buffer.from(text.slice(start, start + dataLen), 'hex');
  const frame: CanFrame = { id, ext, rtr, data };
  if (!stamped) return { kind: 'frame', frame };
  const timestampMs = parseInt(text.slice(start + dataLen), 16);
  if (timestampMs >= 60_000) return { kind: 'malformed', text, reason: `timestamp ${timestampMs} >= 60000 ms` };
  return { kind: 'frame', frame, timestampMs };
}

/**
 * Splits adapter output into messages: each ends at CR, and BEL is a message of its own.
 * Keeps the incomplete tail between calls; a tail longer than `maxLen` is dropped as garbage.
 */
export class SlcanSplitter {
  private tail = '';
  overflows = 0;
  constructor(private readonly maxLen = 64) {}

  push(chunk: Buffer | string): string[] {
    const text = this.tail + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 0x0d) {
        const message = text.slice(start, i);
        out.push(message.includes('\n') ? message.replace(/\n/g, '') : message);
        start = i + 1;
      } else if (ch === 0x07) {
        if (i > start) out.push(text.slice(start, i));
        out.push('\x07');
        start = i + 1;
      }
    }
    this.tail = text.slice(start);
    if (this.tail.length > this.maxLen) {
      this.overflows++;
      this.tail = '';
    }
    return out;
  }
}
