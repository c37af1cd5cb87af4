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
import { crc16Hex } from './crc16.ts';

export type Sigil = '$' | '#' | '=' | '!';
const SIGILS = new Set<string>(['$', '#', '=', '!']);

export interface Line {
  sigil: Sigil;
  seq: number;
  fields: string[];
}

export type DecodeResult = { ok: true; line: Line } | { ok: false; error: 'crc' | 'malformed'; detail: string };

export function encodeLine(sigil: Sigil, seq: number, fields: readonly (string | number)[]): string {
  // A loop of concatenations: every stream sample goes through here (String(x) as join would).
  let body = sigil + (seq & 0xffff);
  for (let i = 0; i < fields.length; i++) body += ',' + fields[i];
  return body + '*' + crc16Hex(body) + '\n';
}

/** Decodes one line without its terminator (a trailing `\r` is tolerated). Never throws. */
export function decodeLine(raw: string): DecodeResult {
  // Indexes into the line rather than slicing it up: this runs on every line both ends receive.
  const end = raw.endsWith('\r') ? raw.length - 1 : raw.length;
  const star = raw.lastIndexOf('*', end - 1);
  if (end < 4 || star < 0 || star !== end - 5) {
    return { ok: false, error: 'malformed', detail: `no '*CRC' trailer in ${JSON.stringify(raw.slice(0, Math.min(end, 80)))}` };
  }
  const crc = raw.slice(star + 1, end);
  const expected = crc16Hex(raw, star);
  if (crc !== expected) return { ok: false, error: 'crc', detail: `CRC ${crc} != ${expected}` };
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
  return { ok: true, line: { sigil: sigil as Sigil, seq, fields: seqEnd === star ? [] : raw.slice(seqEnd + 1, star).split(',') } };
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
