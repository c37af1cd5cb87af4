/**
 * Progress while a run goes: plain lines in logs and CI, bars on a terminal (checked through
 * `script`, which gives the run a pseudo-terminal), nothing with --quiet, only JSON with --json.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runCli, tempDir } from './helpers.ts';

test('not a terminal: a plain line each tenth of a scenario, with pass rate and ETA', async (t) => {
  const r = await runCli(['run', '-s', 'smoke', '-n', '20', '--out', path.join(tempDir('progress'), 'run')]);
  t.is(r.code, 0);
  const lines = r.out.split('\n').filter((l) => /^ {2}smoke: \d+\/20 trials, \d+ pass \([\d.]+% of judged\), eta \d+:\d\d$/.test(l));
  t.deepEqual(lines.map((l) => Number(/(\d+)\/20/.exec(l)![1])), [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  t.regex(r.out, /^smoke v1\.0\.0: 20 trials$/m);
});

test('--quiet prints only the summary; --json prints only JSON', async (t) => {
  const q = await runCli(['run', '-q', '-s', 'smoke', '-n', '4', '--out', path.join(tempDir('progress-q'), 'run')]);
  t.false(/trials, \d+ pass/.test(q.out));
  t.regex(q.out, /^smoke\s+4\s+4\s/m);
  const j = await runCli(['run', '--json', '-s', 'smoke', '-n', '4', '--out', path.join(tempDir('progress-j'), 'run')]);
  const parsed = JSON.parse(j.out) as { scenarios: { scenario: string; trials: number; pass: number }[]; exit_code: number };
  t.deepEqual(parsed.scenarios.map((s) => [s.scenario, s.trials]), [['smoke', 4]]);
  t.is(parsed.exit_code, 0);
});

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
(hasScript ? test : test.skip)(`on a terminal: a bar per scenario with trials, pass rate and ETA${hasScript ? '' : ' (skipped: no `script` command to make a terminal; Debian bsdutils)'}`, (t) => {
  const out = path.join(tempDir('progress-tty'), 'run');
  const cmd = `${process.execPath} ${path.resolve('bin/dexhil.js')} run -s smoke -n 6 --out ${out}`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, CI: '', COLUMNS: '120' } });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /smoke\s*\|[█░]+\| 6\/6 trials \| pass 100\.0% \| eta /);
  t.false(/smoke: \d+\/6 trials, /.test(r.stdout), 'no plain lines on a terminal');
});
