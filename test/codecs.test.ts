import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ArmCodec, DEFAULT_KCD, readArmBus } from '../drivers/arm/codec.ts';
import { readSignalsRaw, SIGNAL_TYPE, writeSignalsRaw, type PlacedBits, type SignalBits } from '../drivers/arm/signal-bits.ts';
import { crc16, crc16Bytes, crc16Hex } from '../drivers/crc16.ts';
import { checkLine, decodeLine, encodeLine, encodeLineBytes, sampleFields, seqGap, type LineFrame } from '../drivers/line-codec.ts';

/** socketcan's native signal codec, which ours is held to bit for bit. */
const signalCodec = createRequire(import.meta.url)('socketcan/build/Release/can_signals.node') as {
  encodeSignal(data: Buffer, bitOffset: number, bitLength: number, littleEndian: boolean, type: number, lo: number, hi?: number): void;
  decodeSignal(data: Buffer, bitOffset: number, bitLength: number, littleEndian: boolean, type: number): [number, number];
};
/** Our raw read of one signal. */
function readSignalRaw(data: Uint8Array, sig: SignalBits): number {
  const out: number[] = [];
  readSignalsRaw(data, [sig], out);
  return out[0]!;
}
/** Our placing of one raw value. */
function writeSignalRaw(data: Uint8Array, sig: PlacedBits, raw: number): void {
  writeSignalsRaw(data, [sig], [raw]);
}

test('CRC-16/CCITT-FALSE check value of "123456789" is 0x29B1', (t) => {
  t.is(crc16('123456789'), 0x29b1);
  t.is(crc16(''), 0xffff);
  t.is(crc16Hex('A'), 'B915');
});

test('CRC-16 of a prefix, and of non-ASCII text, is the CRC of those UTF-8 bytes, from text or from bytes', (t) => {
  // A byte-wise reference straight from the definition (poly 0x1021, init 0xFFFF).
  const reference = (bytes: Uint8Array): number => {
    let crc = 0xffff;
    for (const b of bytes) {
      crc ^= b << 8;
      for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
  };
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(40), (text, cut) => {
      const end = Math.min(cut, text.length);
      const bytes = Buffer.from(text, 'utf8');
      t.is(crc16(text), reference(bytes));
      t.is(crc16Bytes(bytes), reference(bytes));
      t.is(crc16Bytes(bytes, Math.min(cut, bytes.length)), reference(bytes.subarray(0, Math.min(cut, bytes.length))));
      t.is(crc16(text, end), reference(Buffer.from(text.slice(0, end), 'utf8')));
      t.is(crc16Hex(text, end), reference(Buffer.from(text.slice(0, end), 'utf8')).toString(16).toUpperCase().padStart(4, '0'));
    }),
  );
});

test('line encode: golden line and round trip', (t) => {
  const line = encodeLine('=', 7, [1000, -12, 345]);
  t.is(line, `=7,1000,-12,345*${crc16Hex('=7,1000,-12,345')}\n`);
  const d = decodeLine(line.slice(0, -1));
  t.true(d.ok);
  if (d.ok) t.deepEqual(d.line, { sigil: '=', seq: 7, fields: ['1000', '-12', '345'] });
});

test('line decode: a flipped byte is a CRC error, garbage is malformed', (t) => {
  const line = encodeLine('#', 1, [5, 0, 'OK']).slice(0, -1);
  const bad = line.replace('OK', 'OL');
  t.deepEqual(decodeLine(bad).ok ? 'ok' : (decodeLine(bad) as { error: string }).error, 'crc');
  const g = decodeLine('hello');
  t.false(g.ok);
  if (!g.ok) t.is(g.error, 'malformed');
  // The CRC travels as upper-case hex: the right value in lower case is not accepted.
  const body = '=3,0,255';
  const upper = crc16Hex(body);
  const lower = decodeLine(`${body}*${upper.toLowerCase()}`);
  t.is(upper, 'DDA3');
  t.deepEqual(lower.ok ? 'ok' : [lower.error, lower.detail], ['crc', 'CRC dda3 != DDA3']);
  t.deepEqual(decodeLine(`${body}*${upper}`).ok, true);
  t.deepEqual(decodeLine(`${body}*G${upper.slice(1)}`).ok ? 'ok' : (decodeLine(`${body}*G${upper.slice(1)}`) as { error: string }).error, 'crc');
});

test('line decode: the sequence number is 1 to 5 digits up to 65535, anything else is malformed', (t) => {
  const withCrc = (body: string): string => `${body}*${crc16Hex(body)}`;
  for (const [seq, want] of [['0', 0], ['65535', 65535], ['00012', 12]] as const) {
    const d = decodeLine(withCrc(`=${seq},1`));
    t.deepEqual(d.ok ? d.line.seq : d.detail, want, seq);
  }
  const bare = decodeLine(withCrc('#7'));
  t.deepEqual(bare.ok ? bare.line : bare.detail, { sigil: '#', seq: 7, fields: [] });
  for (const seq of ['', '65536', '123456', '000001', '12a', '-1', ' 1', '1.0']) {
    const d = decodeLine(withCrc(`=${seq},1`));
    t.deepEqual(d.ok ? 'ok' : [d.error, d.detail], ['malformed', `bad sequence number ${JSON.stringify(seq)}`], seq);
  }
});

test('line encode: the bytes are the text as UTF-8, integers digit by digit, long lines too', (t) => {
  const cases: [Parameters<typeof encodeLine>[0], number, (string | number)[]][] = [
    ['=', 65535, [4294967295, 0, -1, 9, 10, -10, 123456789, -(2 ** 53) + 1, 2 ** 53 - 1]],
    // Either side of 2^31, where digits stop being written in 32-bit integer arithmetic.
    ['=', 3, [2147483647, 2147483648, -2147483647, -2147483648, -2147483649, 999999999, 1000000000]],
    ['$', 70000, ['POS', 300, ...Array.from({ length: 15 }, (_, i) => i * 101 - 700)]],
    ['#', 3, [1.5, -0.25, 1e21, Number.NaN, 'NAK', 2, 'Grüße, 温度']],
    ['!', 0, ['x'.repeat(3000), -7]],
  ];
  for (const [sigil, seq, fields] of cases) {
    const body = `${sigil}${seq & 0xffff}${fields.map((f) => `,${f}`).join('')}`;
    const text = `${body}*${crc16Hex(body)}\n`;
    t.is(encodeLine(sigil, seq, fields), text);
    t.deepEqual(encodeLineBytes(sigil, seq, fields), Buffer.from(text, 'utf8'));
  }
});

test('sample fields: integers read straight from the line, NaN for a field that is not one', (t) => {
  const frameOf = (line: string): LineFrame => {
    const c = checkLine(line.replace(/\n$/, ''));
    if (!c.ok) throw new Error(c.detail);
    return c.frame;
  };
  const out: number[] = [99];
  const good = encodeLine('=', 4, [4294967295, -12, 0, 345, -0, 1000000]);
  t.is(sampleFields(good, frameOf(good), out), 4294967295);
  t.deepEqual(out, [-12, 0, 345, 0, 1000000]);
  const odd = encodeLine('=', 5, [77, '1.5', '', '-', '12a', '+3', ' 4', '0x10', '5', '-6']);
  t.is(sampleFields(odd, frameOf(odd), out), 77);
  t.deepEqual(out, [Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, 5, -6]);
  for (const bad of [encodeLine('=', 6, ['t1', 5]), encodeLine('=', 6, ['', 5]), encodeLine('=', 6, [])]) {
    t.is(sampleFields(bad, frameOf(bad), out), undefined, bad);
  }
  const trailing = `=7,10,20,*${crc16Hex('=7,10,20,')}`;
  t.is(sampleFields(trailing, frameOf(trailing), out), 10);
  t.deepEqual(out, [20, Number.NaN]);
});

test('property: sample fields agree with decodeLine for any integers', (t) => {
  const out: number[] = [];
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), { minLength: 1, maxLength: 60 }), (values) => {
      const line = encodeLine('=', values.length, values).slice(0, -1);
      const c = checkLine(line);
      const d = decodeLine(line);
      if (!c.ok || !d.ok) return false;
      return sampleFields(line, c.frame, out) === Number(d.line.fields[0]) && out.join() === d.line.fields.slice(1).map(Number).join();
    }),
  );
  t.pass();
});

test('sequence gaps count lost lines across the 16-bit wrap', (t) => {
  t.is(seqGap(10, 11), 0);
  t.is(seqGap(10, 13), 2);
  t.is(seqGap(65535, 0), 0);
  t.is(seqGap(65534, 1), 2);
});

test('property: decodeLine never throws and accepts only what encodeLine made', (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 120 }), (s) => {
      const d = decodeLine(s);
      return d.ok ? encodeLine(d.line.sigil, d.line.seq, d.line.fields) === `${s.replace(/\r$/, '')}\n` : true;
    }),
  );
  fc.assert(
    fc.property(fc.constantFrom('$', '#', '=', '!'), fc.integer({ min: 0, max: 65535 }), fc.array(fc.stringMatching(/^[A-Za-z0-9.-]{0,8}$/), { maxLength: 40 }), (sigil, seq, fields) => {
      const d = decodeLine(encodeLine(sigil as '$', seq, fields).slice(0, -1));
      return d.ok && d.line.seq === seq && d.line.fields.join(',') === fields.join(',');
    }),
  );
  t.pass();
});

const codec = new ArmCodec();

test('arm codec: golden MIT command frame through the KCD', (t) => {
  const f = codec.command(3, { positionRad: 1.0, velocityRadS: 0, kp: 50, kd: 1, torqueFfNm: 0 });
  t.is(f.id, 0x003);
  t.is(f.data.toString('hex'), '8a3d80019a3337ff');
  const d = codec.decode(f);
  t.is(d.kind, 'command');
  if (d.kind === 'command') {
    t.true(Math.abs(d.command.positionRad - 1.0) < 0.0004);
    t.true(Math.abs(d.command.kp - 50) < 0.13);
  }
});

test('arm codec: feedback and info frames round trip; specials are recognised', (t) => {
  const fb = codec.feedback({ joint: 3, error: 0, positionRad: -0.5, velocityRadS: 0.1, torqueNm: 2, tempMosC: 35, tempRotorC: 40 });
  t.is(fb.id, 0x103);
  t.is(fb.data.toString('hex'), '037ae18048e34b50');
  const info = codec.decode(codec.info({ joint: 2, model: 2, firmware: '1.4.2', protocolMajor: 1, protocolMinor: 0, serial: 4242 }));
  t.deepEqual(info, { kind: 'info', info: { joint: 2, model: 2, firmware: '1.4.2', protocolMajor: 1, protocolMinor: 0, serial: 4242 } });
  t.deepEqual(codec.decode(codec.special(5, 'enable')), { kind: 'special', joint: 5, command: 'enable' });
  t.is(codec.special(5, 'disable').data.toString('hex'), 'fffffffffffffffd');
  t.is(codec.decode({ id: 0x555, ext: false, rtr: false, data: Buffer.alloc(8) }).kind, 'unknown');
});

test('arm codec: out-of-range values saturate like MIT packing', (t) => {
  const d = codec.decode(codec.command(1, { positionRad: 99, velocityRadS: -99, kp: 0, kd: 0, torqueFfNm: 0 }));
  t.is(d.kind, 'command');
  if (d.kind === 'command') {
    t.true(Math.abs(d.command.positionRad - 12.5) < 1e-6);
    t.true(Math.abs(d.command.velocityRadS + 45) < 1e-6);
  }
});

test('arm codec: joint frames follow the KCD whatever order it lists their signals in; a joint message with a signal we do not fill is refused by name', (t) => {
  const kcd = readFileSync(DEFAULT_KCD, 'utf8');
  const msg = (name: string): string => {
    const m = new RegExp(`<Message id="[^"]+" name="${name}"[\\s\\S]*?</Message>`).exec(kcd);
    if (m === null) throw new Error(`${name} not in the KCD`);
    return m[0];
  };
  const sigs = (m: string): string[] => m.match(/<Signal[\s\S]*?<\/Signal>/g) ?? [];
  // Cmd_J3 with its signals listed backwards; Fb_J2 with one more signal in its spare bits.
  const cmd3 = msg('Cmd_J3');
  const reversed = cmd3.replace(sigs(cmd3).join('\n      '), [...sigs(cmd3)].reverse().join('\n      '));
  const fb2 = msg('Fb_J2');
  const extra = fb2.replace('</Message>', '  <Signal name="spare" offset="63" length="1" endianess="big"><Value slope="1" intercept="0"/></Signal>\n    </Message>');
  t.not(reversed, cmd3);
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'dexhil-kcd-')), 'arm.kcd');
  writeFileSync(file, kcd.replace(cmd3, reversed).replace(fb2, extra));
  const custom = new ArmCodec(file);
  const c = { positionRad: 1.0, velocityRadS: 0, kp: 50, kd: 1, torqueFfNm: 0 };
  t.is(custom.command(3, c).data.toString('hex'), '8a3d80019a3337ff');
  t.deepEqual(custom.decode(custom.command(3, c)), codec.decode(codec.command(3, c)));
  const fb = { joint: 2, error: 0, positionRad: -0.5, velocityRadS: 0.1, torqueNm: 2, tempMosC: 35, tempRotorC: 40 };
  t.throws(() => custom.feedback(fb), { instanceOf: RangeError, message: 'Fb_J2.spare: no value given' });
  t.deepEqual(custom.decode(codec.feedback(fb)), codec.decode(codec.feedback(fb)));
  t.throws(() => codec.command(3, { ...c, kp: Number.NaN }), { instanceOf: RangeError, message: /not a finite number/ });
});

test('a codec made from an arm bus read once (plain data, as a worker thread gets it) codes as one made from the file; another KCD, another bus', (t) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'dexhil-kcd-')), 'arm.kcd');
  const kcd = readFileSync(DEFAULT_KCD, 'utf8');
  // Joint 8's messages gone.
  writeFileSync(file, kcd.replace(/<Message id="[^"]+" name="(Cmd|Fb)_J8"[\s\S]*?<\/Message>/g, ''));
  const bus = readArmBus(file);
  t.is(bus.file, file);
  const fromBus = new ArmCodec(structuredClone(bus));
  const fromFile = new ArmCodec(file);
  t.is(fromBus.maxJoints, 7);
  t.is(codec.maxJoints, 8);
  const c = { positionRad: 0.25, velocityRadS: -0.5, kp: 30, kd: 1.5, torqueFfNm: -2 };
  const fb = { joint: 3, error: 0, positionRad: -0.5, velocityRadS: 0.1, torqueNm: 2, tempMosC: 35, tempRotorC: 40 };
  for (let j = 1; j <= 7; j++) t.deepEqual(fromBus.command(j, c), fromFile.command(j, c));
  t.deepEqual(fromBus.feedback(fb), fromFile.feedback(fb));
  t.deepEqual(fromBus.decode(fromFile.feedback(fb)), fromFile.decode(fromFile.feedback(fb)));
  t.throws(() => fromBus.command(8, c), { instanceOf: RangeError });
  t.throws(() => readArmBus(path.join(path.dirname(file), 'none.kcd')));
});

test("the signal type codes the bit code uses are socketcan's", (t) => {
  const socketcan = createRequire(import.meta.url)('socketcan') as typeof import('socketcan');
  t.is(SIGNAL_TYPE.SIGNED, socketcan.SignalType.SIGNED);
  t.is(SIGNAL_TYPE.UNSIGNED, socketcan.SignalType.UNSIGNED);
});

test('property: arm decode never throws on random frames', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0x7ff }), fc.uint8Array({ maxLength: 8 }), (id, bytes) => {
      codec.decode({ id, ext: false, rtr: false, data: Buffer.from(bytes) });
      return true;
    }),
  );
  t.pass();
});

test('property: our signal reader gives the bits socketcan\'s native codec gives, for any layout and payload', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 8 }),
      fc.integer({ min: 1, max: 32 }).chain((bitLength) => fc.record({ bitLength: fc.constant(bitLength), bitOffset: fc.integer({ min: 0, max: 64 - bitLength }), littleEndian: fc.boolean(), type: fc.constantFrom(0, 1) })),
      (bytes, sig) => {
        const data = Buffer.from(bytes);
        const [native] = signalCodec.decodeSignal(data, sig.bitOffset, sig.bitLength, sig.littleEndian, sig.type);
        return readSignalRaw(data, sig) === native;
      },
    ),
    { numRuns: 20_000 },
  );
  t.pass();
});

test('property: our signal writer changes exactly the bytes socketcan\'s native codec changes, for any layout, value and payload', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 8, maxLength: 8 }),
      fc.integer({ min: 1, max: 32 }).chain((bitLength) => fc.record({ bitLength: fc.constant(bitLength), bitOffset: fc.integer({ min: 0, max: 64 - bitLength }), littleEndian: fc.boolean(), type: fc.constantFrom(0, 1) })),
      fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
      (bytes, sig, raw) => {
        const native = Buffer.from(bytes);
        signalCodec.encodeSignal(native, sig.bitOffset, sig.bitLength, sig.littleEndian, sig.type, raw >>> 0, 0);
        const ours = Buffer.from(bytes);
        writeSignalRaw(ours, sig, raw);
        return ours.equals(native);
      },
    ),
    { numRuns: 20_000 },
  );
  t.pass();
});

const anySignal = fc.integer({ min: 1, max: 32 }).chain((bitLength) => fc.record({ bitLength: fc.constant(bitLength), bitOffset: fc.integer({ min: 0, max: 64 - bitLength }), littleEndian: fc.boolean(), type: fc.constantFrom(0, 1) }));

test('property: several signals read and written at once give what socketcan\'s native codec gives one by one, overlapping or not', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 8 }), fc.array(fc.tuple(anySignal, fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 })), { minLength: 1, maxLength: 8 }), (bytes, placed) => {
      const sigs = placed.map(([sig]) => sig);
      const read: number[] = [];
      readSignalsRaw(Buffer.from(bytes), sigs, read);
      const readOk = sigs.every((sig, i) => read[i] === signalCodec.decodeSignal(Buffer.from(bytes), sig.bitOffset, sig.bitLength, sig.littleEndian, sig.type)[0]);
      // The native codec writes a full 8-byte payload; ours keeps a shorter payload's length.
      const padded = Buffer.alloc(8);
      Buffer.from(bytes).copy(padded);
      const native = Buffer.from(padded);
      for (const [sig, raw] of placed) signalCodec.encodeSignal(native, sig.bitOffset, sig.bitLength, sig.littleEndian, sig.type, raw >>> 0, 0);
      const ours = Buffer.from(padded);
      writeSignalsRaw(ours, sigs, placed.map(([, raw]) => raw));
      const short = Buffer.from(bytes);
      writeSignalsRaw(short, sigs, placed.map(([, raw]) => raw));
      return readOk && ours.equals(native) && short.equals(native.subarray(0, bytes.length));
    }),
    { numRuns: 10_000 },
  );
  t.pass();
});
