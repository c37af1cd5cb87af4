import test from 'ava';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { candumpLine, parseCandumpLine } from '../reports/candump.ts';
import { NO_PYTHON_CAN, pythonCan, readWithPythonCan, tempDir } from './helpers.ts';

test('candump -L: golden lines for standard, extended, remote and empty frames', (t) => {
  const at = 1_700_000_000_123_456_789n;
  t.is(candumpLine({ id: 0x123, ext: false, rtr: false, data: Buffer.from('DEADBEEF', 'hex') }, at, 'can0'), '(1700000000.123456) can0 123#DEADBEEF');
  t.is(candumpLine({ id: 0x1abcdef0, ext: true, rtr: false, data: Buffer.from([1, 2]) }, at, 'can0'), '(1700000000.123456) can0 1ABCDEF0#0102');
  t.is(candumpLine({ id: 0x7e0, ext: false, rtr: true, data: Buffer.alloc(2) }, at, 'slcan0'), '(1700000000.123456) slcan0 7E0#R2');
  t.is(candumpLine({ id: 0x7e0, ext: false, rtr: true, data: Buffer.alloc(0) }, at, 'vcan0'), '(1700000000.123456) vcan0 7E0#R');
  t.is(candumpLine({ id: 0x5, ext: false, rtr: false, data: Buffer.alloc(0) }, 1_000n, 'can0'), '(0000000000.000001) can0 005#');
});

test('candump -L: annotations are skipped, malformed frame lines are errors naming the line', (t) => {
  t.is(parseCandumpLine('# run 20261121 rig sim-bench'), undefined);
  t.throws(() => parseCandumpLine('(1700000000.1234) can0 123#00'), { message: /not a candump -L frame line/ });
  t.throws(() => parseCandumpLine('(1700000000.123456) can0 123#001'), { message: /not a candump -L frame line/ });
  t.throws(() => parseCandumpLine('(1700000000.123456) can0 FFF#00'), { message: /out of range/ });
});

test('property: candump lines round-trip', (t) => {
  const frame = fc.record({ ext: fc.boolean(), rtr: fc.boolean(), idBits: fc.nat(), data: fc.uint8Array({ maxLength: 8 }) }).map(({ ext, rtr, idBits, data }) => ({
    id: idBits % (ext ? 0x20000000 : 0x800),
    ext,
    rtr,
    data: rtr ? Buffer.alloc(data.length) : Buffer.from(data),
  }));
  fc.assert(
    fc.property(frame, fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }), (f, ns) => {
      const r = parseCandumpLine(candumpLine(f, ns, 'can0'));
      t.deepEqual(r, { epochUs: ns / 1000n, iface: 'can0', frame: f });
    }),
  );
});

// A third-party reader: python-can's CanutilsLogReader (Debian python3-can, installed by .ci/run).
(pythonCan ? test : test.skip)(`python-can reads our candump -L lines back frame for frame${pythonCan ? '' : NO_PYTHON_CAN}`, (t) => {
  const frames = Array.from({ length: 50 }, (_, i) => ({ id: i % 2 === 0 ? 0x100 + (i % 8) : 0x18ff0000 + i, ext: i % 2 === 1, rtr: i % 10 === 3, data: Buffer.from(Array.from({ length: i % 9 }, (_, k) => (i * 7 + k) & 0xff)) }));
  const lines = frames.map((f, i) => candumpLine(f.rtr ? { ...f, data: Buffer.alloc(f.data.length) } : f, 1_700_000_000_000_000_000n + BigInt(i) * 1_250_000n, 'can0'));
  const file = path.join(tempDir('candump'), 'trace.log');
  writeFileSync(file, lines.join('\n') + '\n');
  const r = readWithPythonCan(file);
  t.is(r.status, 0, r.stderr);
  const read = r.frames;
  t.is(read.length, frames.length);
  read.forEach(([ts, id, ext, rtr, dlc, hex], i) => {
    const f = frames[i]!;
    t.is(id, f.id);
    t.is(ext, f.ext);
    t.is(rtr, f.rtr);
    t.is(dlc, f.data.length);
    if (!f.rtr) t.is(hex, f.data.toString('hex'));
    t.true(Math.abs(ts - (1_700_000_000 + i * 0.00125)) < 1e-6);
  });
});
