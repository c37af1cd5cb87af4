/**
 * `dexhil doctor`: bring-up check of a rig. Every device is opened on its own (so one missing
 * device does not hide the others), its identity read, and its link watched for a few seconds:
 * messages received, the measured rate against the configured one, CRC errors, sequence gaps,
 * malformed messages. A device that cannot be opened, or sends under 80% of what its rate gives
 * in the window (less one burst), or
 * shows link errors, fails the check.
 */
import type { SimWorld } from '../drivers/sim/world/index.ts';
import type { DeviceConfig, LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';
import { createRig } from './rig.ts';

export interface DoctorRow {
  device: string;
  kind: string;
  transport: string;
  mode: string;
  /** Port, interface or `in-process`. */
  where: string;
  model: string;
  firmware: string;
  protocol: string;
  serial: string;
  rx: number;
  rateHz: number;
  expectedHz: number;
  crcErrors: number;
  seqGaps: number;
  malformed: number;
  ok: boolean;
  problem: string;
}

/** Messages per second a healthy device sends while the rig stands still. */
function expectedRate(dev: DeviceConfig): number {
  return dev.kind === 'arm' ? dev.holdHz * dev.joints : dev.streamHz;
}

/** Messages a device sends at once (its rate is measured in windows that may cut a burst). */
function burstOf(dev: DeviceConfig): number {
  return dev.kind === 'arm' ? dev.joints : 1;
}

function whereOf(dev: DeviceConfig): string {
  if (dev.transport === 'sim') return 'in-process';
  if (dev.kind === 'arm') return dev.port ?? dev.iface ?? '?';
  return dev.port ?? '?';
}

export async function doctor(loaded: LoadedRig, options: { seconds: number; seed: number; world?: SimWorld }): Promise<DoctorRow[]> {
  const entries = Object.entries(loaded.config.devices);
  return Promise.all(
    entries.map(async ([name, dev]): Promise<DoctorRow> => {
      const row: DoctorRow = { device: name, kind: dev.kind, transport: dev.transport, mode: '', where: whereOf(dev), model: '', firmware: '', protocol: '', serial: '', rx: 0, rateHz: 0, expectedHz: expectedRate(dev), crcErrors: 0, seqGaps: 0, malformed: 0, ok: false, problem: '' };
      const single: LoadedRig = { ...loaded, config: { ...loaded.config, devices: { [name]: dev } } };
      let rig;
      try {
        rig = await createRig(single, { seed: options.seed, ...(options.world === undefined ? {} : { world: options.world }) });
      } catch (err) {
        row.problem = err instanceof DexhilError ? err.describe().replace(/\n\s*/g, ' ') : String(err);
        return row;
      }
      try {
        const info = rig.devices[0]!;
        Object.assign(row, { transport: info.transport, mode: info.mode, model: info.model, firmware: info.firmware, protocol: info.protocol, serial: info.serial });
        const before = rig.linkStats()[name]!;
        const t0 = rig.clock.nowMs();
        await rig.clock.sleep(options.seconds * 1000);
        const after = rig.linkStats()[name]!;
        const spanS = (rig.clock.nowMs() - t0) / 1000;
        row.rx = after.rx - before.rx;
        row.rateHz = row.rx / spanS;
        row.crcErrors = after.crcErrors;
        row.seqGaps = after.seqGaps;
        row.malformed = after.malformed;
        const problems: string[] = [];
        if (row.rx === 0) problems.push(`no messages in ${options.seconds} s`);
        // The arm answers in bursts (one frame a joint per refresh): allow a window to miss one burst.
        else if (row.rx < 0.8 * row.expectedHz * spanS - burstOf(dev)) problems.push(`rate ${row.rateHz.toFixed(1)} Hz, expected ${row.expectedHz} Hz`);
        if (row.crcErrors > 0) problems.push(`${row.crcErrors} CRC errors`);
        if (row.seqGaps > 0) problems.push(`${row.seqGaps} lines lost`);
        if (row.malformed > 0) problems.push(`${row.malformed} malformed messages`);
        row.problem = problems.join('; ');
        row.ok = problems.length === 0;
      } finally {
        await rig.close();
      }
      return row;
    }),
  );
}

/** The doctor table as text: one line a device, then the problems of failing ones. */
export function formatDoctor(rows: readonly DoctorRow[]): string {
  const head = ['device', 'transport', 'mode', 'where', 'model', 'firmware', 'proto', 'serial', 'rate Hz', 'crc', 'gaps', 'status'];
  const body = rows.map((r) => [r.device, r.transport, r.mode || '-', r.where, r.model || '-', r.firmware || '-', r.protocol || '-', r.serial || '-', r.mode ? `${r.rateHz.toFixed(1)}/${r.expectedHz}` : '-', String(r.crcErrors), String(r.seqGaps), r.ok ? 'ok' : 'FAIL']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const problems = rows.filter((r) => !r.ok).map((r) => `${r.device}: ${r.problem}`);
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), ...(problems.length > 0 ? ['', ...problems] : [])].join('\n');
}
