/**
 * Bad input, as users type it: each case gives exactly one line on stderr, saying what is wrong
 * and where (file, line, field or option), exit code 2, and no stack trace.
 */
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { runCli, tempDir } from './helpers.ts';

const dir = tempDir('bad-input');
const SIM = path.resolve('fixtures/rigs/sim.yaml');
const base = YAML.parse(readFileSync(SIM, 'utf8')) as { rig: Record<string, unknown>; devices: Record<string, Record<string, unknown>>; safety?: Record<string, unknown> };
base.rig['profile'] = path.resolve('fixtures/profiles/default.yaml');
base.rig['cell'] = path.resolve('fixtures/cell.yaml');

/** A rig file: sim.yaml changed by `edit`, or raw text. */
function rig(name: string, edit: ((c: typeof base) => void) | string): string {
  const file = path.join(dir, `${name}.yaml`);
  if (typeof edit === 'string') writeFileSync(file, edit);
  else {
    const c = structuredClone(base);
    edit(c);
    writeFileSync(file, YAML.stringify(c));
  }
  return file;
}

function profile(name: string, edit: (p: Record<string, Record<string, unknown>>) => void): string {
  const p = YAML.parse(readFileSync('fixtures/profiles/default.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
  edit(p);
  const file = path.join(dir, `${name}.profile.yaml`);
  writeFileSync(file, YAML.stringify(p));
  return file;
}

const notARun = path.join(dir, 'not-a-run');
mkdirSync(notARun);

const CASES: [string, string[], RegExp][] = [
  ['trials zero', ['run', '--trials', '0'], /--trials must be a whole number >= 1, got '0'/],
  ['trials not a number', ['run', '-n', 'many'], /--trials must be a whole number >= 1, got 'many'/],
  ['negative seed', ['run', '--seed', '-1'], /seed must be a whole number 0\.\.4294967295/],
  ['seed too large', ['run', '--seed', '99999999999'], /seed must be a whole number 0\.\.4294967295, got '99999999999'/],
  ['unknown scenario', ['run', '-s', 'origami'], /no scenario named 'origami'.*dexhil list/],
  ['missing rig file', ['run', '--rig', path.join(dir, 'nope.yaml')], /cannot read rig config .*nope\.yaml: ENOENT/],
  ['trace mode', ['run', '--trace', 'sometimes'], /--trace <when>' argument 'sometimes' is invalid/],
  ['preflight negative', ['run', '--preflight', '-3'], /--preflight must be a whole number >= 0/],
  ['missing profile', ['run', '--profile', path.join(dir, 'nope.profile.yaml')], /cannot read sim profile .*nope\.profile\.yaml/],
  ['stop-when-decided alone', ['run', '--stop-when-decided'], /--stop-when-decided needs --baseline/],
  ['baseline missing', ['run', '--baseline', path.join(dir, 'no-run')], /--baseline: no run folder .*no-run/],
  ['sprt rate out of range', ['run', '--sprt-p0', '1.5'], /--sprt-p0 must be a number between 0 and 1, got '1\.5'/],
  ['resume a folder that is not a run', ['run', '--resume', notARun], /has no manifest\.json; it is not a run folder/],
  ['resume with other settings', ['run', '--resume', notARun, '--seed', '3'], /--resume continues a run with its own settings; --seed cannot be given with it/],
  ['unknown option', ['run', '--frobnicate'], /unknown option '--frobnicate'/],
  ['unknown command', ['fly'], /unknown command 'fly'/],
  ['compare: missing run', ['compare', path.join(dir, 'a'), path.join(dir, 'b')], /run A: no run folder .*\/a/],
  ['compare: margin out of range', ['compare', 'x', 'y', '--margin', '5'], /--margin must be a number between 0 and 1, got '5'/],
  ['compare: alpha zero', ['compare', 'x', 'y', '--alpha', '0'], /--alpha must be a number between 0 and 1, got '0'/],
  ['compare: one run only', ['compare', 'x'], /missing required argument 'run-b'/],
  ['emulate: probability above 1', ['emulate', '--rig', 'fixtures/rigs/sim-pty.yaml', '--fault', 'hand.drop=2'], /--fault 'hand\.drop=2': drop must be a number in 0\.\.1/],
  ['emulate: unknown device', ['emulate', '--rig', 'fixtures/rigs/sim-pty.yaml', '--fault', 'gripper.drop=0.1'], /no emulated device 'gripper'.*emulated: arm, hand, wrist_ft, table_ft/],
  ['emulate: unknown action', ['emulate', '--rig', 'fixtures/rigs/sim-pty.yaml', '--at', '5:hand.explode'], /--at '5:hand\.explode' is not <seconds>:<device>\.reboot/],
  ['doctor: zero seconds', ['doctor', '--seconds', '0'], /--seconds must be a whole number >= 1, got '0'/],
  ['config: YAML syntax', ['run', '--rig', rig('syntax', 'rig:\n  id: [unclosed\n')], /syntax\.yaml:\d+:?.*/],
  ['config: too many joints', ['run', '--rig', rig('joints', (c) => (c.devices['arm']!['joints'] = 9))], /joints\.yaml:\d+: rig config field 'devices\.arm\.joints'/],
  ['config: unknown field', ['run', '--rig', rig('field', (c) => (c.devices['hand']!['speed'] = 3))], /field\.yaml.*devices\.hand.*speed/],
  ['config: unknown kind', ['run', '--rig', rig('kind', (c) => (c.devices['hand']!['kind'] = 'gripper'))], /kind\.yaml.*devices\.hand\.kind/],
  ['config: serial without port', ['run', '--rig', rig('port', (c) => (c.devices['hand']!['transport'] = 'serial'))], /port\.yaml.*devices\.hand.*port/],
  ['config: holdHz above controlHz', ['run', '--rig', rig('hold', (c) => (c.devices['arm']!['holdHz'] = 50))], /hold\.yaml.*devices\.arm.*holdHz/],
  ['config: onBreach', ['run', '--rig', rig('breach', (c) => (c.safety = { onBreach: 'shrug' }))], /breach\.yaml.*safety\.onBreach/],
  ['config: joint range reversed', ['run', '--rig', rig('range', (c) => (c.safety = { jointRangeRad: [1, -1] }))], /range\.yaml.*safety\.jointRangeRad/],
  ['config: device name', ['run', '--rig', rig('name', (c) => (c.devices['Wrist FT'] = c.devices['wrist_ft']!))], /name\.yaml.*devices.*Wrist FT/],
  ['config: rig id missing', ['run', '--rig', rig('id', (c) => delete c.rig['id'])], /id\.yaml.*rig\.id/],
  ['config: negative baud', ['run', '--rig', rig('baud', (c) => (c.devices['table_ft']!['baud'] = -9600))], /baud\.yaml.*devices\.table_ft\.baud/],
  ['config: two arms', ['run', '--rig', rig('arms', (c) => (c.devices['arm2'] = c.devices['arm']!))], /arms\.yaml.*at most one arm/],
  ['config: missing cell file', ['run', '--rig', rig('cell', (c) => (c.rig['cell'] = path.join(dir, 'nowhere.yaml')))], /cannot read work cell .*nowhere\.yaml/],
  ['profile: firmware version', ['run', '--profile', profile('fw', (p) => (p['hand']!['firmware'] = 'v2'))], /fw\.profile\.yaml.*hand\.firmware.*a version like 1\.2\.3/],
];

test(`${CASES.length} bad inputs: one line on stderr naming what is wrong, exit 2, no stack trace`, async (t) => {
  t.true(CASES.length >= 30);
  for (const [label, args, expected] of CASES) {
    const { code, err } = await runCli(args);
    t.is(code, 2, `${label}: exit ${code}; ${err}`);
    t.regex(err, expected, label);
    t.is(err.trimEnd().split('\n').length, 1, `${label}: one line, got: ${err}`);
    t.false(/\n\s+at /.test(err), `${label}: no stack trace`);
  }
});
