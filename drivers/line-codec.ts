/**
 * The serial line protocol shared by the hand and the force/torque sensors (docs/protocols.md).
 *
 *   <sigil><seq>,<fields...>*<CRC>\n
 *
 * - sigil `$` host request, `#` device reply, `=` device stream sample, `!` device event;
 * - seq: 16-bit per-direction sequence number (decimal, wraps 65535 -> 0);
 * - device lines carry the device timestamp in microseconds (32-bit, wrapping) as the second field;
 * - CRC: CRC-16/CCITT-FALSE over everything before `*`, four upper-case hex digits.
 */
import { crc16, crc16Bytes, crc16Hex } from './crc16.ts';

export type Sigil = '$' | '#' | '=' | '!';
const SIGILS = new Set<string>(['$', '#', '=', '!']);

export interface Line {
  sigil: Sigil;
  seq: number;
  fields: string[];
}

export type DecodeResult = { ok: true; line: Line } | { ok: false; error: 'crc' | 'malformed'; detail: string };

/** Bytes of one line being encoded; grows for a longer line. */
let scratch = Buffer.allocUnsafe(1024);

/**
 * Encodes a line as the bytes that go on the wire. Integer fields are written digit by digit and
 * the CRC is taken over the bytes as they are: every stream sample of the simulated devices goes
 * through here (44 fields a hand sample). Text fields go as UTF-8 (our protocol's are ASCII).
 * `lead`, when given, is the first field, before `fields` (a device's timestamp, a request's verb):
 * the callers need not build a new array (`[lead, ...fields]`) for each line.
 */
export function encodeLineBytes(sigil: Sigil, seq: number, fields: readonly (string | number)[], lead?: string | number): Buffer {
  let n = 0;
  scratch[n++] = sigil.charCodeAt(0);
  n = writeInteger(n, seq & 0xffff);
  if (lead !== undefined) n = writeField(n, lead);
  for (let i = 0; i < fields.length; i++) n = writeField(n, fields[i]!);
  if (n + 6 > scratch.length) grow(n, 6);
  const crc = crc16Bytes(scratch, n);
  scratch[n++] = 0x2a; // '*'
  for (let shift = 12; shift >= 0; shift -= 4) scratch[n++] = HEX_DIGITS[(crc >>> shift) & 0xf]!;
  scratch[n++] = 0x0a;
  const line = Buffer.allocUnsafe(n);
  scratch.copy(line, 0, 0, n);
  return line;
}

/** Writes `,` and a field at `at`; returns the end. */
function writeField(at: number, f: string | number): number {
  let n = at;
  if (typeof f === 'number' && Number.isSafeInteger(f)) {
    if (n + 18 > scratch.length) grow(n, 18);
    scratch[n++] = 0x2c; // ','
    return writeInteger(n, f);
  }
  const text = String(f);
  const size = Buffer.byteLength(text);
  if (n + 1 + size > scratch.length) grow(n, 1 + size);
  scratch[n++] = 0x2c;
  return n + scratch.write(text, n, 'utf8');
}

/** The line as text (encodeLineBytes' bytes, read as UTF-8). */
export function encodeLine(sigil: Sigil, seq: number, fields: readonly (string | number)[]): string {
  return encodeLineBytes(sigil, seq, fields).toString('utf8');
}

const HEX_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');

function grow(used: number, more: number): void {
  const bigger = Buffer.allocUnsafe(Math.max(2 * scratch.length, used + more));
  scratch.copy(bigger, 0, 0, used);
  scratch = bigger;
}

/** Writes a safe integer's decimal digits at `at` (room for 17 bytes); returns the end. */
function writeInteger(at: number, value: number): number {
  let v = value;
  if (v < 0) {
    scratch[at++] = 0x2d; // '-'
    v = -v;
  }
  // Below 2^31 (every field but a device's microsecond clock), in 32-bit integer arithmetic:
  // `(x / 10) | 0` is an integer division, where Math.floor(x / 10) divides in floating point.
  if (v <= 0x7fffffff) {
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    for (let i = at + digits - 1; i >= at; i--) {
      const q = (v / 10) | 0;
      scratch[i] = 0x30 + (v - q * 10);
      v = q;
    }
    return at + digits;
  }
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    const q = Math.floor(v / 10);
    scratch[i] = 0x30 + (v - q * 10);
    v = q;
  }
  return at + digits;
}

/** The value of the four upper-case hex digits at `at`, or -1 if they are not that (as on the wire). */
function upperHex4(text: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = text.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** Where the parts of a line that passed its checks are (fields from `fieldsAt` to `star`; -1: none). */
export interface LineFrame {
  sigil: Sigil;
  seq: number;
  fieldsAt: number;
  star: number;
}

export type CheckResult = { ok: true; frame: LineFrame } | { ok: false; error: 'crc' | 'malformed'; detail: string };

/**
 * Checks one line without its terminator (a trailing `\r` is tolerated): the CRC, the sigil and
 * the sequence number. Never throws. Indexes into the line rather than slicing it up: this runs
 * on every line both ends receive.
 */
export function checkLine(raw: string): CheckResult {
  const end = raw.endsWith('\r') ? raw.length - 1 : raw.length;
  const star = raw.lastIndexOf('*', end - 1);
  if (end < 4 || star < 0 || star !== end - 5) {
    return { ok: false, error: 'malformed', detail: `no '*CRC' trailer in ${JSON.stringify(raw.slice(0, Math.min(end, 80)))}` };
  }
  // Compared as numbers: strings are made only for the message of a mismatch.
  const expected = crc16(raw, star);
  if (upperHex4(raw, star + 1) !== expected) return { ok: false, error: 'crc', detail: `CRC ${raw.slice(star + 1, end)} != ${crc16Hex(raw, star)}` };
  const sigil = star > 0 ? raw[0]! : '';
  if (!SIGILS.has(sigil)) return { ok: false, error: 'malformed', detail: `unknown sigil ${JSON.stringify(sigil)}` };
  const comma = raw.indexOf(',', 1);
  const seqEnd = comma < 0 || comma > star ? star : comma;
  // One to five decimal digits, at most 65535.
  let seq = seqEnd === 1 || seqEnd > 6 ? -1 : 0;
  for (let i = 1; i < seqEnd && seq >= 0; i++) {
    const d = raw.charCodeAt(i) - 48;
    seq = d < 0 || d > 9 ? -1 : seq * 10 + d;
  }
  if (seq < 0 || seq > 0xffff) {
    return { ok: false, error: 'malformed', detail: `bad sequence number ${JSON.stringify(raw.slice(1, seqEnd))}` };
  }
  return { ok: true, frame: { sigil: sigil as Sigil, seq, fieldsAt: seqEnd === star ? -1 : seqEnd + 1, star } };
}

/** A checked line's fields, as text. */
export function lineFields(raw: string, frame: LineFrame): string[] {
  return frame.fieldsAt < 0 ? [] : raw.slice(frame.fieldsAt, frame.star).split(',');
}

/** Decodes one line without its terminator (a trailing `\r` is tolerated). Never throws. */
export function decodeLine(raw: string): DecodeResult {
  const checked = checkLine(raw);
  if (!checked.ok) return checked;
  const { sigil, seq } = checked.frame;
  return { ok: true, line: { sigil, seq, fields: lineFields(raw, checked.frame) } };
}

/**
 * A stream sample's fields, read as decimal integers (`-?[0-9]+`, as the protocol sends every
 * sample field) straight from the line, without cutting it into strings: a hand sample has 44
 * fields and this runs for every sample. Returns the first field (the device timestamp), or
 * undefined when it is not an integer; `out` gets the other fields (cleared first), NaN for a
 * field that is not an integer.
 */
export function sampleFields(raw: string, frame: LineFrame, out: number[]): number | undefined {
  out.length = 0;
  if (frame.fieldsAt < 0) return undefined;
  let timestamp: number | undefined;
  let i = frame.fieldsAt;
  for (;;) {
    const negative = raw.charCodeAt(i) === 0x2d;
    if (negative) i++;
    const digitsAt = i;
    let v = 0;
    let d = raw.charCodeAt(i) - 48;
    while (d >= 0 && d <= 9) {
      v = v * 10 + d;
      d = raw.charCodeAt(++i) - 48;
    }
    // The field must end here, at a comma or at the '*' before the CRC.
    const whole = i > digitsAt && (i === frame.star || raw.charCodeAt(i) === 0x2c);
    while (i < frame.star && raw.charCodeAt(i) !== 0x2c) i++;
    const value = whole ? (negative ? -v : v) : Number.NaN;
    if (timestamp !== undefined) out.push(value);
    else if (whole) timestamp = value;
    else return undefined; // the first field, the timestamp, is not an integer
    if (i >= frame.star) return timestamp;
    i++;
  }
}

/** Number of lines lost between two consecutive sequence numbers (0 when `next` follows `prev`). */
export function seqGap(prev: number, next: number): number {
  return (next - prev - 1 + 0x10000) & 0xffff;
}

/** Parses a decimal integer field; returns undefined when it is not one. */
export function intField(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}
