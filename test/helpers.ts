import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';

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
