/**
 * The bits of CAN signals, placed and read exactly as the `socketcan` package's native signal
 * codec does (tests hold them to it bit for bit), in JavaScript: a call into the addon per signal
 * cost more than the rest of CAN ingest together. A payload, zero-padded to 8 bytes, is one 64-bit
 * word (little-endian for Intel signals, big-endian for Motorola); a signal is `bitLength` bits
 * from bit `bitOffset` (Intel) or ending `bitOffset` bits from the top (Motorola).
 */

/**
 * socketcan's codes for the integer signal types (its `SignalType`, which mirrors the native
 * addon's enum; a test holds these to the package's), written here so that reading signals does
 * not load the package's JavaScript and its KCD parser.
 */
export const SIGNAL_TYPE = { UNSIGNED: 0, SIGNED: 1 } as const;
const SIGNED = SIGNAL_TYPE.SIGNED;

/** Where a signal's bits are. */
export interface PlacedBits {
  bitOffset: number;
  bitLength: number;
  littleEndian: boolean;
}

/** Where a signal's bits are, and how to read them. */
export interface SignalBits extends PlacedBits {
  /** socketcan's SignalType code: 0 unsigned, 1 signed (the KCD may also say float, we do not use it). */
  type: number;
}

// Words of bits are kept as signed 32-bit integers (the same bits): V8 holds those as small
// integers, where an unsigned word above 2^31 would be a heap-allocated double in a field.

/** Bytes `at`..`at + 3` of a payload as a little-endian 32-bit word, bytes past its end as 0. */
function le32(data: Uint8Array, at: number): number {
  return (data[at] ?? 0) | ((data[at + 1] ?? 0) << 8) | ((data[at + 2] ?? 0) << 16) | ((data[at + 3] ?? 0) << 24);
}

function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** A signal's bits in its own 64-bit word (high and low halves), sign-extended when signed. */
function extract(hi: number, lo: number, sig: SignalBits): number {
  const len = sig.bitLength;
  const shift = sig.littleEndian ? sig.bitOffset : 64 - sig.bitOffset - len;
  let v: number;
  if (shift >= 32) v = hi >>> (shift - 32);
  else if (shift === 0) v = lo >>> 0;
  else v = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
  if (len < 32) v = (v & ((1 << len) - 1)) >>> 0;
  if (sig.type === SIGNED && v >= 2 ** (len - 1)) v -= 2 ** len;
  return v;
}

/** Raw integers of several signals of one payload, sign-extended where signed, the payload read once. */
export function readSignalsRaw(data: Uint8Array, sigs: readonly SignalBits[], out: number[]): void {
  const lo = le32(data, 0);
  const hi = le32(data, 4);
  // The big-endian word is the little-endian one with its bytes reversed.
  const beHi = bswap32(lo);
  const beLo = bswap32(hi);
  for (let i = 0; i < sigs.length; i++) {
    const sig = sigs[i]!;
    out[i] = sig.littleEndian ? extract(hi, lo, sig) : extract(beHi, beLo, sig);
  }
}

/**
 * The payload as a 64-bit little-endian word being written: signals are placed into it one by one
 * (each replacing its bits, as socketcan's codec does), then it goes back into the bytes once.
 */
class PayloadWord {
  lo = 0;
  hi = 0;

  load(data: Uint8Array): void {
    this.lo = le32(data, 0);
    this.hi = le32(data, 4);
  }

  place(sig: PlacedBits, raw: number): void {
    const len = sig.bitLength;
    const shift = sig.littleEndian ? sig.bitOffset : 64 - sig.bitOffset - len;
    const mask = len < 32 ? ((1 << len) - 1) | 0 : -1;
    const value = raw & mask;
    // Value and mask moved to their place in the signal's own 64-bit word, as high and low halves.
    let vHi = 0;
    let vLo = 0;
    let mHi = 0;
    let mLo = 0;
    if (shift >= 32) {
      vHi = value << (shift - 32);
      mHi = mask << (shift - 32);
    } else if (shift === 0) {
      vLo = value;
      mLo = mask;
    } else {
      vLo = value << shift;
      mLo = mask << shift;
      vHi = value >>> (32 - shift);
      mHi = mask >>> (32 - shift);
    }
    if (!sig.littleEndian) {
      // From the big-endian word to the little-endian one: bytes reversed, halves swapped. (Plain
      // locals: a destructuring swap built an array per signal, 118 MB in a 3 x 100 run.)
      const hi = bswap32(vLo);
      const lo = bswap32(vHi);
      const maskHi = bswap32(mLo);
      const maskLo = bswap32(mHi);
      vHi = hi;
      vLo = lo;
      mHi = maskHi;
      mLo = maskLo;
    }
    this.lo = (this.lo & ~mLo) | vLo;
    this.hi = (this.hi & ~mHi) | vHi;
  }

  /** Writes the word back into the payload's bytes (its first 8 at most). */
  store(data: Uint8Array): void {
    const n = Math.min(8, data.length);
    for (let i = 0; i < n; i++) data[i] = ((i < 4 ? this.lo : this.hi) >>> ((i & 3) * 8)) & 0xff;
  }
}

const word = new PayloadWord();

/**
 * Places raw values (two's complement for signed signals) into a payload, in order: each
 * signal's bits are replaced, the others kept; the bytes are written once.
 */
export function writeSignalsRaw(data: Uint8Array, sigs: readonly PlacedBits[], raws: readonly number[]): void {
  word.load(data);
  for (let i = 0; i < sigs.length; i++) word.place(sigs[i]!, raws[i]!);
  word.store(data);
}
