/**
 * junit.xml: a testsuite per scenario, a testcase per trial, failures (the task) kept apart from
 * errors (rig, firmware, harness, timeouts), counts equal to trials.csv, valid against Ant's JUnit
 * schema (the one Jenkins and the JUnit-Schema project publish: test/fixtures/junit/JUnit.xsd,
 * checked with xmllint from Debian libxml2-utils, installed by .ci/run), and text from devices escaped.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runPlan } from '../harness/run.ts';
import { xmlText } from '../reports/junit.ts';
import { findScenario } from '../scenarios/index.ts';
import { ptyRigFile, readCsv, tempDir } from './helpers.ts';

const JUNIT_XSD = path.join(import.meta.dirname, 'fixtures', 'junit', 'JUnit.xsd');
const xmllint = spawnSync('xmllint', ['--version'], { stdio: 'ignore' }).status === 0;

test('junit.xml of a run with passes, failures and errors: counts as in trials.csv, errors apart from failures', async (t) => {
  // A force limit the zipper's pulls sometimes cross: some trials error (safety), others pass or fail.
  const { file } = ptyRigFile('junit', (c) => {
    for (const d of Object.values(c.devices)) d['transport'] = 'sim';
    (c as Record<string, unknown>)['safety'] = { forceN: 24 };
  });
  const out = tempDir('junit-out');
  await runPlan({ rigFile: file, scenarios: [findScenario('zipper')!, findScenario('smoke')!], trials: 8, seed: 4, outDir: out, epochMs: 1_700_000_000_000 });
  const rows = readCsv(path.join(out, 'trials.csv'));
  const xml = readFileSync(path.join(out, 'junit.xml'), 'utf8');
  for (const scenario of ['zipper', 'smoke']) {
    const mine = rows.filter((r) => r['scenario'] === scenario);
    const n = (o: string[]): number => mine.filter((r) => o.includes(r['outcome']!)).length;
    const suite = new RegExp(`<testsuite name="${scenario}" tests="(\\d+)" failures="(\\d+)" errors="(\\d+)" skipped="(\\d+)" time="[\\d.]+" timestamp="\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d" hostname="\\S+" id="\\d+" package="dexhil">`).exec(xml);
    t.truthy(suite, scenario);
    t.deepEqual(suite!.slice(1).map(Number), [mine.length, n(['fail']), n(['error', 'timeout']), n(['aborted'])]);
  }
  const zipper = rows.filter((r) => r['scenario'] === 'zipper');
  t.true(zipper.some((r) => r['outcome'] === 'error') && zipper.some((r) => r['outcome'] !== 'error'), `a mix of outcomes: ${zipper.map((r) => r['outcome']).join(',')}`);
  t.is((xml.match(/<testcase /g) ?? []).length, rows.length);
  for (const r of zipper.filter((x) => x['outcome'] === 'error')) {
    t.true(xml.includes(`<testcase name="trial ${r['trial']} (ic ${r['ic_id']})" classname="dexhil.zipper"`));
    t.regex(xml, new RegExp(`<error type="task" message="safety:wrist_ft\\.force at stage \\S+ \\(task fault\\)">`));
  }
  for (const r of zipper.filter((x) => x['outcome'] === 'fail')) t.regex(xml, new RegExp(`<failure type="${r['failure_label']}" message="${r['failure_label']} at stage `));
  if (xmllint) {
    const lint = spawnSync('xmllint', ['--noout', '--schema', JUNIT_XSD, path.join(out, 'junit.xml')], { encoding: 'utf8' });
    t.is(lint.status, 0, lint.stderr);
    t.regex(lint.stderr, /validates/);
  } else if (process.env['CI'] === 'true') t.fail('xmllint is missing on CI: .ci/run installs libxml2-utils');
  else t.log('xmllint not installed (apt-get install libxml2-utils): schema validity not checked');
});

test('text from devices and configs is escaped for XML, characters XML cannot carry are dropped', (t) => {
  t.is(xmlText(`<script>alert("x")</script> & 'q'`), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;q&apos;');
  t.is(xmlText('a\u0000b\u0007c\td\ne'), 'abc\td\ne');
});
