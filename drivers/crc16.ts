/**
 * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
 * Check value: crc16("123456789") === 0x29B1.
 *
 * Every serial line is checked on both ends, so this runs over every byte the hand and the F/T
 * sensors send: four bytes a step (below), ASCII text four characters a step.
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

/**
 * Four bytes at a time ("slicing by 4"): the CRC is linear, so after the two bytes that meet the
 * 16-bit register, each byte's effect is looked up with the zero bytes after it already applied
 * (T1: one zero byte after, T2: two, T3: three) and the four looked-up values are XORed. The four
 * lookups do not wait on each other, where byte by byte each waits on the last (about 3.5 ns a
 * byte here, bound by that chain).
 */
const [T1, T2, T3] = (() => {
  const next = (prev: Uint16Array): Uint16Array => prev.map((c) => ((c << 8) & 0xff00) ^ TABLE[c >>> 8]!);
  const t1 = next(TABLE);
  const t2 = next(t1);
  return [t1, t2, next(t2)] as const;
})();

/** The register after four more bytes. */
function step4(crc: number, b0: number, b1: number, b2: number, b3: number): number {
  return T3[((crc >>> 8) ^ b0) & 0xff]! ^ T2[(crc ^ b1) & 0xff]! ^ T1[b2]! ^ TABLE[b3]!;
}

/** Upper-case hex of every byte value, for crc16Hex. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

function step(crc: number, byte: number): number {
  return ((crc << 8) & 0xff00) ^ TABLE[((crc >>> 8) ^ byte) & 0xff]!;
}

/** CRC of the UTF-8 bytes of `text` up to `end` (default: all of it); our lines are ASCII. */
export function crc16(text: string, end = text.length): number {
  let crc = 0xffff;
  let i = 0;
  for (;;) {
    // Four ASCII characters at a time while there are four left.
    for (; i + 3 < end; i += 4) {
      const c0 = text.charCodeAt(i);
      const c1 = text.charCodeAt(i + 1);
      const c2 = text.charCodeAt(i + 2);
      const c3 = text.charCodeAt(i + 3);
      if ((c0 | c1 | c2 | c3) >= 0x80) break;
      crc = step4(crc, c0, c1, c2, c3);
    }
    if (i >= end) return crc;
    // The rest, or a character that is not ASCII, one at a time.
    const code = text.charCodeAt(i);
    if (code < 0x80) crc = step(crc, code);
    else {
      // Rare (not in our protocol): hash the character's UTF-8 bytes, surrogate pairs whole.
      const wide = code >= 0xd800 && code <= 0xdbff && i + 1 < end ? 2 : 1;
      for (const byte of Buffer.from(text.slice(i, i + wide))) crc = step(crc, byte);
      i += wide - 1;
    }
    i++;
  }
}

/** The CRC as four upper-case hex digits, as it travels on the line. */
export function crc16Hex(text: string, end = text.length): string {
  const crc = crc16(text, end);
  return HEX[crc >>> 8]! + HEX[crc & 0xff]!;
}

/** CRC of the first `end` bytes of `bytes`. */
export function crc16Bytes(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  let i = 0;
  for (; i + 3 < end; i += 4) crc = step4(crc, bytes[i]!, bytes[i + 1]!, bytes[i + 2]!, bytes[i + 3]!);
  for (; i < end; i++) crc = step(crc, bytes[i]!);
  return crc;
}
