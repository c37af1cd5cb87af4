/**
 * What a rig config will be, answered before any device is opened: how each device is reached once
 * `auto` is resolved, and which scenarios the rig can run. The rig factory (harness/rig.ts) builds
 * on it, and a run uses it to plan (harness/run.ts, harness/run-blocks.ts).
 */
import { existsSync } from 'node:fs';
import type { TransportKind } from '../drivers/types.ts';
import type { DeviceConfig, LoadedRig } from './config.ts';

export type DeviceNeed = 'arm' | 'hand' | 'wrist_ft' | 'table_ft';

/** How one configured device will be reached, once `auto` is resolved. */
export interface Resolved {
  transport: TransportKind;
  /** Why an `auto` device runs simulated. */
  fallback?: string;
}

function resolveTransport(name: string, dev: DeviceConfig): Resolved {
  if (dev.transport !== 'auto') return { transport: dev.transport };
  if (dev.kind === 'arm') {
    if (dev.iface !== undefined && existsSync(`/sys/class/net/${dev.iface}`)) return { transport: 'socketcan' };
    if (dev.port !== undefined && existsSync(dev.port)) return { transport: 'slcan' };
    const looked = [dev.iface === undefined ? undefined : `interface ${dev.iface}`, dev.port === undefined ? undefined : `port ${dev.port}`].filter((x) => x !== undefined).join(' or ');
    return { transport: 'sim', fallback: `devices.${name}: transport auto: no ${looked}, using the simulated ${name}` };
  }
  if (dev.port !== undefined && existsSync(dev.port)) return { transport: 'serial' };
  return { transport: 'sim', fallback: `devices.${name}: transport auto: no port ${dev.port ?? '(none)'}, using the simulated ${name}` };
}

/**
 * Whether a rig built from `config` has what a scenario needs; the reason when it does not. Every
 * configured device is in a built rig (a device that cannot start stops the build), so the config
 * answers this before any device is opened.
 */
export function lacksIn(config: LoadedRig['config'], needs: readonly DeviceNeed[]): string | undefined {
  const devices = Object.values(config.devices);
  const arm = devices.find((d) => d.kind === 'arm');
  const ft = (mount: 'wrist' | 'table'): boolean => devices.some((d) => d.kind === 'ft' && d.mount === mount);
  const missing = needs.filter((n) => (n === 'arm' ? !arm : n === 'hand' ? !devices.some((d) => d.kind === 'hand') : n === 'wrist_ft' ? !ft('wrist') : !ft('table')));
  if (missing.length > 0) return `rig ${config.rig.id} has no ${missing.join(', ')}`;
  if (needs.includes('arm') && arm?.kind === 'arm' && arm.joints < 6) return `needs an arm with at least 6 joints, ${config.rig.id} has ${arm.joints}`;
  return undefined;
}

/** A plan's scenarios split into those a rig built from `config` can run and those it cannot (with why). */
export function scenariosFor<S extends { name: string; needs: readonly DeviceNeed[] }>(config: LoadedRig['config'], scenarios: readonly S[]): { runnable: S[]; skipped: { name: string; reason: string }[] } {
  const runnable: S[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const s of scenarios) {
    const reason = lacksIn(config, s.needs) ?? (s.needs.length === 0 && Object.keys(config.devices).length === 0 ? 'the rig has no devices' : undefined);
    if (reason === undefined) runnable.push(s);
    else skipped.push({ name: s.name, reason });
  }
  return { runnable, skipped };
}

/**
 * What every device of a config will run as once `auto` is resolved (a missing port means the
 * simulated device), and the notices that resolution gives. A rig of simulated devices only runs
 * on the virtual clock.
 */
export function resolveRig(loaded: LoadedRig): { transports: Record<string, Resolved>; simulatedOnly: boolean; notices: string[] } {
  const transports = Object.fromEntries(Object.entries(loaded.config.devices).map(([name, dev]) => [name, resolveTransport(name, dev)]));
  const resolved = Object.values(transports);
  return { transports, simulatedOnly: resolved.every((r) => r.transport === 'sim'), notices: resolved.flatMap((r) => (r.fallback === undefined ? [] : [r.fallback])) };
}
