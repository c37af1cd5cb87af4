/**
 * Random and mutated input to the parsers a user or a device can reach: driver line handling,
 * the slcan channel, the CSV repair of a killed run, rig configs and run folders. Nothing may
 * throw anything but our own DexhilError, and what arrives is counted.
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadRun } from '../analysis/compare.ts';
import { FtDriver } from '../drivers/ft/driver.ts';
import { encodeLine } from '../drivers/line-codec.ts';
import { LineChannel } from '../drivers/transport/byte-stream.ts';
import { MemoryStream } from '../drivers/transport/memory-stream.ts';
import { SlcanChannel } from '../drivers/transport/slcan.ts';
import { VirtualClock } from '../harness/clock.ts';
import { loadRig } from '../harness/config.ts';
import { DexhilError } from '../harness/errors.ts';
import { runPlan, DEFAULT_RIG } from '../harness/run.ts';
import { repairCsv } from '../reports/csv-repair.ts';
import { findScenario } from '../scenarios/index.ts';
import { tempDir } from './helpers.ts';

const goodLines = Array.from({ length: 20 }, (_, i) => encodeLine('=', i, [i * 1000, 12, -340, 9810, 5, -6, 7, 312]));

test('the line channel gives each line once, whatever the chunks; drops a runaway line and goes on; stops at close', (t) => {
  const stream = new MemoryStream();
  const got: string[] = [];
  const ch = new LineChannel(stream, (l) => got.push(l));
  stream.push(Buffer.from('=1,a*0000\n=2,b*0000\r\n=3,'));
  stream.push(Buffer.from('c*0000\n'));
  stream.push(Buffer.from('x'.repeat(700)));
  stream.push(Buffer.from('y'.repeat(700)));
  stream.push(Buffer.from('tail\n=4,d*0000\n\xe9\n', 'latin1'));
  // The 700 x's and 700 y's make a line over 1 KiB: what the parser held (the x's) is dropped.
  t.deepEqual(got, ['=1,a*0000', '=2,b*0000\r', '=3,c*0000', `${'y'.repeat(700)}tail`, '=4,d*0000', '\xe9']);
  t.is(ch.overflows, 1);
  ch.close();
  stream.push(Buffer.from('=5,e*0000\n'));
  t.is(got.length, 6);
});

test('property: the line channel gives the same lines however the bytes are cut into chunks', (t) => {
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[ -~]{0,60}$/), { maxLength: 30 }), fc.integer({ min: 1, max: 97 }), (lines, size) => {
      const stream = new MemoryStream();
      const got: string[] = [];
      new LineChannel(stream, (l) => got.push(l));
      stream.push(Buffer.from(lines.map((l) => `${l}\n`).join(''), 'latin1'), size);
      return got.join('\n') === lines.join('\n') && got.length === lines.length;
    }),
  );
  t.pass();
});

test('a sensor sample with a field that is not an integer is counted malformed and not used', (t) => {
  const clock = new VirtualClock({ epochMs: 0 });
  const stream = new MemoryStream();
  const ft = new FtDriver({ name: 'wrist_ft', stream, clock, transport: 'serial', mode: 'real', streamHz: 50, requestTimeoutMs: 100 });
  stream.push(Buffer.from(encodeLine('=', 1, [1000, 12, -340, 9810, 5, -6, 7, 312])));
  for (const bad of ['1.5', '', '12a', 'nan']) stream.push(Buffer.from(encodeLine('=', 2, [2000, 12, -340, bad, 5, -6, 7, 312])));
  stream.push(Buffer.from(encodeLine('=', 3, ['x', 12, -340, 9810, 5, -6, 7, 312])));
  clock.close();
  t.like(ft.stats, { rx: 5, malformed: 5, crcErrors: 0 });
  t.like(ft.latest, { fx: 0.012, fy: -0.34, fz: 9.81, tx: 0.005, ty: -0.006, tz: 0.007, tempC: 31.2, deviceTimeUs: 1000 });
});

test('property: a sensor driver fed random and mutated bytes never throws, and counts every line once', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)), fc.constantFrom(...goodLines).map((l) => Buffer.from(l)), fc.tuple(fc.constantFrom(...goodLines), fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([l, i, v]) => {
        const b = Buffer.from(l);
        b[i % b.length] = v;
        return b;
      })), { maxLength: 40 }),
      (chunks) => {
        const clock = new VirtualClock({ epochMs: 0 });
        const stream = new MemoryStream();
        const ft = new FtDriver({ name: 'wrist_ft', stream, clock, transport: 'serial', mode: 'real', streamHz: 50, requestTimeoutMs: 100 });
        let lines = 0;
        const all = Buffer.concat(chunks);
        for (let i = 0; i < all.length; i++) if (all[i] === 0x0a) lines++;
        for (const c of chunks) stream.push(c);
        clock.close();
        const s = ft.stats;
        // Every newline-terminated line is rx, a CRC error or malformed (a line over 1 KiB is dropped whole).
        return s.rx + s.crcErrors + s.malformed <= lines && s.rx + s.crcErrors + s.malformed >= lines - Math.floor(all.length / 1024) - 1;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: an open slcan channel fed random bytes never throws; frames, acks, errors and junk are counted', async (t) => {
  const clock = new VirtualClock({ epochMs: 0 });
  const stream = new MemoryStream('mem:adapter', (w) => (w.startsWith('V') ? 'V1011\r' : '\r'));
  const ch = new SlcanChannel(stream, { bitrate: 1_000_000, clock });
  await ch.open();
  let delivered = 0;
  ch.addListener('onMessage', () => delivered++);
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)), fc.constantFrom('t1238DEADBEEFCAFEF00D\r', 'T1ABCDEF02FFFF\r', 'z\r', '\x07', 't12\r', 'r7E00\r').map((x) => Buffer.from(x, 'latin1'))), { maxLength: 30 }), (chunks) => {
      for (const c of chunks) stream.push(c); // must not throw
    }),
    { numRuns: 300 },
  );
  clock.close();
  // Over all runs: valid frames were delivered (and only counted when delivered), junk was counted.
  t.true(delivered > 0);
  t.is(ch.counters.rxFrames, delivered);
  t.true(ch.counters.malformed > 0 && ch.counters.txAcks > 0 && ch.counters.errors > 0, JSON.stringify(ch.counters));
});

test('property: the repair of a killed run cuts any truncation back to whole rows, a prefix of what was written', async (t) => {
  const out = tempDir('fuzz-repair');
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [findScenario('smoke')!], trials: 6, seed: 3, outDir: out, epochMs: 0 });
  const original = readFileSync(path.join(out, 'trials.csv'));
  const file = path.join(out, 'cut.csv');
  fc.assert(
    fc.property(fc.nat(original.length), (cut) => {
      writeFileSync(file, original.subarray(0, cut));
      const r = repairCsv(file);
      const after = readFileSync(file);
      const whole = original.subarray(0, original.subarray(0, cut).lastIndexOf(0x0a) + 1);
      return after.equals(whole) && r.rows.length === Math.max(0, whole.toString().split('\n').length - 2);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: mutated rig configs and run folders give DexhilError or load, never anything else', async (t) => {
  const dir = tempDir('fuzz-config');
  const yaml = readFileSync(DEFAULT_RIG, 'utf8').replace('../profiles/default.yaml', path.resolve('fixtures/profiles/default.yaml')).replace('../cell.yaml', path.resolve('fixtures/cell.yaml'));
  const run = tempDir('fuzz-run');
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [findScenario('smoke')!], trials: 3, seed: 3, outDir: run, epochMs: 0 });
  const trials = readFileSync(path.join(run, 'trials.csv'), 'utf8');
  const mutate = (text: string, edits: [number, string][]): string => edits.reduce((s, [i, c]) => s.slice(0, i % (s.length + 1)) + c + s.slice((i % (s.length + 1)) + 1), text);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.constantFrom(':', ' ', '\n', '-', '[', '{', '"', '9', 'x', '', '#', ',')), { minLength: 1, maxLength: 6 }), (edits) => {
      writeFileSync(path.join(dir, 'rig.yaml'), mutate(yaml, edits));
      writeFileSync(path.join(run, 'trials.csv'), mutate(trials, edits));
      for (const f of [() => loadRig(path.join(dir, 'rig.yaml')), () => loadRun(run, 'run A')]) {
        try {
          f();
        } catch (err) {
          if (!(err instanceof DexhilError)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
