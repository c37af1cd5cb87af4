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
  const body = `${sigil}${seq & 0xffff}${fields.length > 0 ? ',' + fields.join(',') : ''}`;
  return `${body}*${crc16Hex(body)}\n`;
}

/** Decodes one line without its terminator (a trailing `\r` is tolerated). Never throws. */
export function decodeLine(raw: string): DecodeResult {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const star = text.lastIndexOf('*');
  if (text.length < 4 || star < 0 || star !== text.length - 5) {
    return { ok: false, error: 'malformed', detail: `no '*CRC' trailer in ${JSON.stringify(text.slice(0, 80))}` };
  }
  const body = text.slice(0, star);
  const crc = text.slice(star + 1);
  if (crc !== crc16Hex(body)) return { ok: false, error: 'crc', detail: `CRC ${crc} != ${crc16Hex(body)}` };
  const sigil = body[0] ?? '';
  if (!SIGILS.has(sigil)) return { ok: false, error: 'malformed', detail: `unknown sigil ${JSON.stringify(sigil)}` };
  const parts = body.slice(1).split(',');
  const seqText = parts[0] ?? '';
  const seq = Number(seqText);
  if (!/^\d{1,5}$/.test(seqText) || seq > 0xffff) {
    return { ok: false, error: 'malformed', detail: `bad sequence number ${JSON.stringify(seqText)}` };
  }
  return { ok: true, line: { sigil: sigil as Sigil, seq, fields: parts.slice(1) } };
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
