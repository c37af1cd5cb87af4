import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';
import { decodeLine } from '../drivers/line-codec.ts';
import { main } from '../harness/cli.ts';
import { loadRig } from '../harness/config.ts';
import { DEFAULT_RIG } from '../harness/run.ts';
import { parseCandumpLine } from '../reports/candump.ts';
import { parseSerialTraceLine } from '../reports/traces.ts';

export function tempDir(label: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `dexhil-${label}-`));
}

export function readCsv(file: string): Record<string, string>[] {
  return parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
}

/**
 * A copy of fixtures/rigs/sim-pty.yaml whose ports live in a fresh temporary folder (so test
 * files running in parallel never share a pty), with profile and cell paths made absolute.
 * `edit` may change the parsed config before it is written.
 */
export function ptyRigFile(label: string, edit?: (config: { rig: Record<string, unknown>; devices: Record<string, Record<string, unknown>> }) => void): { file: string; dir: string } {
  const dir = tempDir(label);
  const src = path.resolve('fixtures/rigs/sim-pty.yaml');
  const config = YAML.parse(readFileSync(src, 'utf8')) as { rig: Record<string, unknown>; devices: Record<string, Record<string, unknown>> };
  config.rig['profile'] = path.resolve(path.dirname(src), String(config.rig['profile']));
  config.rig['cell'] = path.resolve(path.dirname(src), String(config.rig['cell']));
  for (const [name, dev] of Object.entries(config.devices)) dev['port'] = path.join(dir, name);
  edit?.(config);
  const file = path.join(dir, 'rig.yaml');
  writeFileSync(file, YAML.stringify(config));
  return { file, dir };
}

/**
 * fixtures/rigs/sim.yaml written to `dir` as `<name>.yaml` with profile and cell paths made
 * absolute and `rig` fields replaced (e.g. another id, `reset: operator`).
 */
export function simRigFile(dir: string, name: string, rig: Record<string, unknown> = {}): string {
  const loaded = loadRig(DEFAULT_RIG);
  const base = path.dirname(DEFAULT_RIG);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, YAML.stringify({ rig: { ...loaded.config.rig, profile: path.resolve(base, loaded.config.rig.profile), cell: path.resolve(base, loaded.config.rig.cell), ...rig }, devices: loaded.config.devices }));
  return file;
}

/** Debian's python3 with python-can (python3-can, installed by .ci/run), when this machine has it. */
export const PYTHON = '/usr/bin/python3';
export const pythonCan = spawnSync(PYTHON, ['-c', 'import can'], { stdio: 'ignore' }).status === 0;
export const NO_PYTHON_CAN = ' (skipped: /usr/bin/python3 cannot import can; apt-get install python3-can)';

/** Frames of a candump -L log as python-can's CanutilsLogReader reads them: [timestamp, id, ext, rtr, dlc, hex]. */
export function readWithPythonCan(file: string): { frames: [number, number, boolean, boolean, number, string][]; stderr: string; status: number | null } {
  const script = 'import can, json, sys\nprint(json.dumps([[m.timestamp, m.arbitration_id, m.is_extended_id, m.is_remote_frame, m.dlc, m.data.hex()] for m in can.CanutilsLogReader(sys.argv[1])]))';
  const r = spawnSync(PYTHON, ['-c', script, file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { frames: r.status === 0 ? (JSON.parse(r.stdout) as [number, number, boolean, boolean, number, string][]) : [], stderr: r.stderr, status: r.status };
}

/**
 * Checks a run folder's raw traces against what the harness counted: every trace line parses,
 * each device's trace holds exactly its devices.csv rx + tx + crc_errors + malformed records
 * (python-can reads the CAN one with the same count), a serial trace's CRC failures are the
 * device's crc_errors, and each trial's `traces` slices lie inside the files, in order.
 */
export function checkTraces(t: ExecutionContext, out: string): void {
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { traces: { device: string; file: string; format: string; records: number }[] };
  const devices = readCsv(path.join(out, 'devices.csv'));
  t.deepEqual(manifest.traces.map((x) => x.device), devices.map((d) => d['device']));
  const lengths = new Map<string, number>();
  for (const tr of manifest.traces) {
    const d = devices.find((x) => x['device'] === tr.device)!;
    const counted = ['rx', 'tx', 'crc_errors', 'malformed'].reduce((s, k) => s + Number(d[k]), 0);
    const lines = readFileSync(path.join(out, tr.file), 'latin1').split('\n');
    t.is(lines.pop(), '', `${tr.file} ends with a newline`);
    t.is(lines.length, tr.records, `${tr.file}: manifest records`);
    t.is(lines.length, counted, `${tr.file}: lines vs rx+tx+crc_errors+malformed in devices.csv`);
    if (tr.format === 'candump -L') {
      for (const l of lines) t.truthy(parseCandumpLine(l), l);
      if (pythonCan) {
        const r = readWithPythonCan(path.join(out, tr.file));
        t.is(r.status, 0, r.stderr);
        t.is(r.frames.length, counted, `python-can frames in ${tr.file}`);
      }
    } else {
      const records = lines.map(parseSerialTraceLine);
      t.true(records.every((r) => r.device === tr.device));
      const crcFailures = records.filter((r) => {
        const decoded = r.dir === 'rx' ? decodeLine(r.text) : undefined;
        return decoded?.ok === false && decoded.error === 'crc';
      }).length;
      t.is(crcFailures, Number(d['crc_errors']), `${tr.file}: CRC failures vs crc_errors`);
    }
    lengths.set(path.basename(tr.file), lines.length);
  }
  const last = new Map<string, number>();
  for (const row of readCsv(path.join(out, 'trials.csv'))) {
    t.not(row['traces'], '', `trial ${row['trial']} names its trace slices`);
    for (const part of row['traces']!.split(';')) {
      const m = /^(.+):(\d+)-(\d+)$/.exec(part);
      t.truthy(m, part);
      const [, file, a, b] = m!;
      t.true(lengths.has(file!), `${file} is a trace of the run`);
      t.true(Number(a) > (last.get(file!) ?? 0) && Number(a) <= Number(b) && Number(b) <= lengths.get(file!)!, part);
      last.set(file!, Number(b));
    }
  }
}

/** Runs the CLI in this process; returns its exit code, what it printed, and what went to stderr. */
export async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    const code = await main(args, (s) => (out += s));
    return { code, out, err };
  } finally {
    process.stderr.write = orig;
  }
}
