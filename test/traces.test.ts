/**
 * Raw traces in the run folder: candump -L for the arm's CAN traffic, timestamped lines for the
 * serial devices, each trial's slice in its trials.csv row. (The same checks run over ptys in
 * pty.test.ts, where a real clock turns traces on by default.)
 */
import test from 'ava';
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_RIG, runPlan } from '../harness/run.ts';
import { escapeTraceText, parseSerialTraceLine, serialTraceLine } from '../reports/traces.ts';
import { findScenario } from '../scenarios/index.ts';
import { checkTraces, readCsv, tempDir } from './helpers.ts';

test('a traced simulated run: every frame and line the harness counted is in its trace, trial slices in trials.csv', async (t) => {
  const out = tempDir('traces-on');
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [findScenario('zipper')!], trials: 3, seed: 5, outDir: out, epochMs: 1_700_000_000_000, trace: 'on' });
  checkTraces(t, out);
  // Virtual time 0 is the epoch given: the first frame is the arm's first info request.
  t.regex(readFileSync(path.join(out, 'traces/arm.log'), 'utf8').split('\n')[0]!, /^\(1700000000\.\d{6}\) arm 7E0#01$/);
  t.regex(readFileSync(path.join(out, 'traces/hand.serial.txt'), 'utf8').split('\n')[0]!, /^\(1700000000\.\d{6}\) hand tx \$0,VER\*[0-9A-F]{4}$/);
});

test('the simulated rig is not traced by default (auto): no traces folder, empty traces column', async (t) => {
  const out = tempDir('traces-auto');
  await runPlan({ rigFile: DEFAULT_RIG, scenarios: [findScenario('smoke')!], trials: 1, seed: 5, outDir: out, epochMs: 0 });
  t.false(existsSync(path.join(out, 'traces')));
  t.is(readCsv(path.join(out, 'trials.csv'))[0]!['traces'], '');
});

test('serial trace lines: control bytes and backslashes are escaped, one line each, and read back exactly', (t) => {
  t.is(escapeTraceText('=1,2*AB\r'), '=1,2*AB\\x0d');
  t.is(escapeTraceText('a\\b\x00\xff'), 'a\\\\b\\x00\\xff');
  t.is(serialTraceLine(1_700_000_000_123_456, 'hand', 'rx', '#0,1*ABCD'), '(1700000000.123456) hand rx #0,1*ABCD');
  t.throws(() => parseSerialTraceLine('(1700000000.123456) hand up #0'), { message: /not a serial trace line/ });
  fc.assert(
    fc.property(fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), fc.constantFrom('rx', 'tx' as const), (text, dir) => {
      const line = serialTraceLine(1_700_000_000_000_000, 'wrist_ft', dir, text);
      if (line.includes('\n') || line.includes('\r')) return false;
      const r = parseSerialTraceLine(line);
      return r.text === text && r.dir === dir && r.device === 'wrist_ft' && r.epochUs === 1_700_000_000_000_000n;
    }),
  );
  t.pass();
});
