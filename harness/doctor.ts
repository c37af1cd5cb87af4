/**
 * `dexhil doctor`: bring-up check of a rig. Every device is opened on its own (so one missing
 * device does not hide the others), its identity read, and its link watched for a few seconds:
 * messages received, the measured rate against the configured one, CRC errors, sequence gaps,
 * malformed messages. A device that cannot be opened, or sends under 80% of what its rate gives
 * in the window (less one burst), or shows link errors, fails the check. `dexhil run` makes the
 * same link check (watchLinks) on the whole rig before its first trial when a device is real.
 */
import type { SimWorld } from '../drivers/sim/world/index.ts';
import type { DeviceConfig, LoadedRig } from './config.ts';
import { DexhilError } from './errors.ts';
import { emptyStats } from '../drivers/types.ts';
import { createRig, type Rig } from './rig.ts';

/** A doctor table line: the device's identity and where it is, and its link check. */
export interface DoctorRow extends Omit<LinkCheck, 'problems'> {
  kind: string;
  transport: string;
  mode: string;
  /** Port, interface or `in-process`. */
  where: string;
  model: string;
  firmware: string;
  protocol: string;
  serial: string;
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

/** One device's link over a watch window: what arrived, at what rate, and what is wrong with it. */
export interface LinkCheck {
  device: string;
  rx: number;
  rateHz: number;
  expectedHz: number;
  crcErrors: number;
  seqGaps: number;
  malformed: number;
  problems: string[];
}

/**
 * Watches the links of a started rig for `seconds` while it stands still and judges each
 * device: nothing received, under 80% of its rate (less one burst), or any CRC error, lost line
 * or malformed message since it was opened is a problem.
 */
export async function watchLinks(rig: Rig, devices: Readonly<Record<string, DeviceConfig>>, seconds: number): Promise<LinkCheck[]> {
  const before = rig.linkStats();
  const t0 = rig.clock.nowMs();
  await rig.clock.sleep(seconds * 1000);
  const after = rig.linkStats();
  const spanS = (rig.clock.nowMs() - t0) / 1000;
  return Object.entries(devices).map(([name, dev]) => {
    const a = after[name] ?? emptyStats();
    const rx = a.rx - (before[name]?.rx ?? 0);
    const expectedHz = expectedRate(dev);
    const problems: string[] = [];
    if (rx === 0) problems.push(`no messages in ${seconds} s`);
    // The arm answers in bursts (one frame a joint per refresh): allow a window to miss one burst.
    else if (rx < 0.8 * expectedHz * spanS - burstOf(dev)) problems.push(`rate ${(rx / spanS).toFixed(1)} Hz, expected ${expectedHz} Hz`);
    if (a.crcErrors > 0) problems.push(`${a.crcErrors} CRC errors`);
    if (a.seqGaps > 0) problems.push(`${a.seqGaps} lines lost`);
    if (a.malformed > 0) problems.push(`${a.malformed} malformed messages`);
    if (a.reboots > 0) problems.push(`rebooted ${a.reboots} time${a.reboots > 1 ? 's' : ''}`);
    return { device: name, rx, rateHz: rx / spanS, expectedHz, crcErrors: a.crcErrors, seqGaps: a.seqGaps, malformed: a.malformed, problems };
  });
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
        row.problem = err instanceof DexhilError ? err.describe() : String(err);
        return row;
      }
      try {
        const info = rig.devices[0]!;
        Object.assign(row, { transport: info.transport, mode: info.mode, model: info.model, firmware: info.firmware, protocol: info.protocol, serial: info.serial });
        const [{ problems, ...link }] = (await watchLinks(rig, { [name]: dev }, options.seconds)) as [LinkCheck];
        Object.assign(row, link, { problem: problems.join('; '), ok: problems.length === 0 });
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
