/**
 * junit.xml for CI systems (Jenkins, GitLab, GitHub), built from a run folder's trials.csv,
 * steps.csv and manifest.json, so it also covers resumed runs and can be rebuilt later:
 *
 * - one <testsuite> per scenario, one <testcase> per trial (name `trial N (ic <id>)`), with its
 *   time in seconds;
 * - `fail` is a <failure> (the task was not done): type = failure label, message naming the stage;
 * - `error` and `timeout` are <error>s (the trial could not be judged; rig and firmware faults
 *   land here, not among failures): type = fault domain or `timeout`;
 * - `aborted` is <skipped>.
 *
 * The layout follows Ant's JUnit XML (the one CI tools read) and validates against its schema
 * (test/fixtures/junit/JUnit.xsd): a bare <testsuites> root; testsuite attributes name, tests,
 * failures, errors, skipped, time, timestamp (no zone), hostname, id, package; properties; then
 * testcases; then system-out and system-err.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCsvRows } from './csv-recorder.ts';

/** Text for XML: the five special characters escaped, characters XML cannot carry dropped. */
export function xmlText(s: string): string {
  return s
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const attrs = (a: Record<string, string | number>): string =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlText(String(v))}"`)
    .join('');

const seconds = (ms: string | undefined): string => (Number(ms ?? 0) / 1000).toFixed(3);

/** The junit.xml text of a run folder. */
export function junitXml(runDir: string): string {
  const trials = readCsvRows(path.join(runDir, 'trials.csv'));
  const steps = readCsvRows(path.join(runDir, 'steps.csv'));
  let manifest: { run_id?: string; rig_id?: string; seed?: number } = {};
  try {
    manifest = JSON.parse(readFileSync(path.join(runDir, 'manifest.json'), 'utf8')) as typeof manifest;
  } catch {
    // trials.csv is the record; the manifest only adds properties
  }
  // The stage a trial ended in: its last step row.
  const lastStage = new Map<string, string>();
  for (const s of steps) lastStage.set(`${s['scenario']}#${s['trial']}`, s['stage'] ?? '');
  const scenarios = [...new Set(trials.map((t) => t['scenario']!))];
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const count = (rows: Record<string, string>[], ...outcomes: string[]): number => rows.filter((r) => outcomes.includes(r['outcome']!)).length;
  const total = (rows: Record<string, string>[]): number => rows.reduce((s, r) => s + Number(r['duration_ms'] ?? 0), 0) / 1000;
  // The root carries no attributes: Ant's schema has none there, and CI tools sum the suites.
  out.push('<testsuites>');
  scenarios.forEach((name, id) => {
    const rows = trials.filter((t) => t['scenario'] === name);
    const first = rows[0]!;
    out.push(
      `  <testsuite${attrs({
        name,
        tests: rows.length,
        failures: count(rows, 'fail'),
        errors: count(rows, 'error', 'timeout'),
        skipped: count(rows, 'aborted'),
        time: total(rows).toFixed(3),
        timestamp: (first['started_at'] ?? new Date(0).toISOString()).slice(0, 19),
        hostname: manifest.rig_id ?? first['rig_id'] ?? 'localhost',
        id,
        package: 'dexhil',
      })}>`,
    );
    out.push('    <properties>');
    for (const [k, v] of Object.entries({ run_id: first['run_id'] ?? '', scenario_version: first['scenario_version'] ?? '', seed: first['seed'] ?? '', rig_mode: first['rig_mode'] ?? '', firmware: first['firmware'] ?? '' })) {
      out.push(`      <property${attrs({ name: k, value: v })}/>`);
    }
    out.push('    </properties>');
    for (const r of rows) {
      const open = `    <testcase${attrs({ name: `trial ${r['trial']} (ic ${r['ic_id']})`, classname: `dexhil.${name}`, time: seconds(r['duration_ms']) })}`;
      const stage = lastStage.get(`${name}#${r['trial']}`) ?? '';
      const detail = `stages reached ${r['stages_reached']}/${r['stages_total']}; corrections ${r['corrections_by_kind'] || 'none'}; peak force ${r['peak_force_n']} N; traces ${r['traces'] || '-'}`;
      switch (r['outcome']) {
        case 'fail':
          out.push(`${open}>`, `      <failure${attrs({ type: r['failure_label'] ?? '', message: `${r['failure_label']}${stage ? ` at stage ${stage}` : ''}` })}>${xmlText(detail)}</failure>`, '    </testcase>');
          break;
        case 'error':
        case 'timeout':
          out.push(`${open}>`, `      <error${attrs({ type: r['outcome'] === 'timeout' ? 'timeout' : r['fault_domain'] || 'harness', message: `${r['failure_label']}${stage ? ` at stage ${stage}` : ''}${r['fault_domain'] ? ` (${r['fault_domain']} fault)` : ''}` })}>${xmlText(detail)}</error>`, '    </testcase>');
          break;
        case 'aborted':
          out.push(`${open}>`, `      <skipped${attrs({ message: 'the run was stopped during this trial' })}/>`, '    </testcase>');
          break;
        default:
          out.push(`${open}/>`);
      }
    }
    out.push('    <system-out/>', '    <system-err/>', '  </testsuite>');
  });
  out.push('</testsuites>', '');
  return out.join('\n');
}

/** Writes junit.xml into the run folder; returns its path. */
export function writeJunit(runDir: string): string {
  const file = path.join(runDir, 'junit.xml');
  writeFileSync(file, junitXml(runDir));
  return file;
}
