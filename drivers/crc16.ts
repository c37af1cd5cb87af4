/**
 * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
 * Check value: crc16("123456789") === 0x29B1.
 *
 * Every serial line is checked on both ends, so this runs over every byte the hand and the F/T
 * sensors send: the ASCII loop has no per-character branch beyond the range check.
 */
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** Upper-case hex of every byte value, for crc16Hex. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

function step(crc: number, byte: number): number {
  return ((crc << 8) & 0xff00) ^ TABLE[((crc >>> 8) ^ byte) & 0xff]!;
}

/** CRC of the UTF-8 bytes of `text` up to `end` (default: all of it); our lines are ASCII. */
export function crc16(text: string, end = text.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) crc = step(crc, code);
    else {
      // Rare (not in our protocol): hash the character's UTF-8 bytes, surrogate pairs whole.
      const wide = code >= 0xd800 && code <= 0xdbff && i + 1 < end ? 2 : 1;
      for (const byte of Buffer.from(text.slice(i, i + wide))) crc = step(crc, byte);
      i += wide - 1;
    }
  }
  return crc;
}

/** The CRC as four upper-case hex digits, as it travels on the line. */
export function crc16Hex(text: string, end = text.length): string {
  const crc = crc16(text, end);
  return HEX[crc >>> 8]! + HEX[crc & 0xff]!;
}

/** CRC of the first `end` bytes of `bytes`. */
export function crc16Bytes(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) crc = step(crc, bytes[i]!);
  return crc;
}
