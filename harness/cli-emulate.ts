/** `dexhil emulate`: device emulators on pseudo-terminals, with fault knobs and scheduled faults. */
import { Option, type Command } from 'commander';
import { seedArg } from './cli-args.ts';
import { RealClock } from './clock.ts';
import { loadRig } from './config.ts';
import { startEmulators, type EmulatedDevice } from './emulate.ts';
import { DexhilError } from './errors.ts';

/** Adds the `emulate` command to `program`. */
export function addEmulateCommand(program: Command, out: (s: string) => void): void {
  program
    .command('emulate')
    .description('start device emulators on pseudo-terminals at the port paths of a rig config, and keep them running until Ctrl-C')
    .option('--rig <file>', 'rig config naming the ports (YAML)', 'fixtures/rigs/sim-pty.yaml')
    .addOption(new Option('--seed <n>', 'seed of the simulated devices and scene').argParser(seedArg).default(1))
    .option('--fault <device.knob=value...>', 'fault knobs, e.g. hand.drop=0.01 wrist_ft.corrupt=0.02 arm.latencyMs=5 hand.stalled=true')
    .option('--at <seconds:device.action...>', 'scheduled faults: <s>:<device>.reboot[=<boot ms>] (default 500), <s>:<device>.disconnect[=<ms until plugged back in>] (default: stays out), e.g. 10:hand.reboot 30:wrist_ft.disconnect=5000')
    .action(async (opts: { rig: string; seed: number; fault?: string[]; at?: string[] }) => {
      const loaded = loadRig(opts.rig);
      // Every option is checked before a single pty is made.
      const names = Object.entries(loaded.config.devices).filter(([, d]) => d.port !== undefined).map(([n]) => n);
      const faults = (opts.fault ?? []).map((f) => parseFault(f, names));
      const events = (opts.at ?? []).map((spec) => scheduledFault(spec, names));
      const clock = new RealClock();
      const emu = await startEmulators(loaded, { seed: opts.seed, clock });
      try {
        for (const apply of faults) apply(emu.devices);
        for (const d of emu.devices) out(`${d.name.padEnd(10)} ${d.hostPath}  ${d.protocol}\n`);
        for (const s of emu.skipped) out(`${s.name.padEnd(10)} not emulated: ${s.reason}\n`);
        for (const e of events) {
          clock.setTimer(e.atS * 1000, () => {
            out(`${e.atS} s: ${e.describe}\n`);
            e.fire(emu.devices);
          });
        }
        out('emulators ready; Ctrl-C stops them\n');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
      } finally {
        await emu.stop();
        clock.close();
      }
    });
}

/** Parses one `--fault device.knob=value` against the devices the rig config gives a port. */
function parseFault(spec: string, names: readonly string[]): (devices: readonly EmulatedDevice[]) => void {
  const m = /^([a-z][a-z0-9_-]*)\.(drop|corrupt|latencyMs|stalled)=(.+)$/.exec(spec);
  if (m === null) throw new DexhilError('USAGE', `--fault '${spec}' is not device.knob=value`, { hint: 'knobs: drop, corrupt (probabilities 0..1), latencyMs (>= 0), stalled (true/false)' });
  const [, name, knob, value] = m as unknown as [string, string, 'drop' | 'corrupt' | 'latencyMs' | 'stalled', string];
  if (!names.includes(name)) throw new DexhilError('USAGE', `--fault '${spec}': no emulated device '${name}'`, { hint: `emulated: ${names.join(', ')}` });
  const device = (devices: readonly EmulatedDevice[]): EmulatedDevice => devices.find((d) => d.name === name)!;
  if (knob === 'stalled') {
    if (value !== 'true' && value !== 'false') throw new DexhilError('USAGE', `--fault '${spec}': stalled is true or false`);
    return (devices) => (device(devices).faults.stalled = value === 'true');
  }
  const v = Number(value);
  const max = knob === 'latencyMs' ? Infinity : 1;
  if (!Number.isFinite(v) || v < 0 || v > max) throw new DexhilError('USAGE', `--fault '${spec}': ${knob} must be a number in 0..${max === 1 ? 1 : 'inf'}`);
  return (devices) => (device(devices).faults[knob] = v);
}

/** Parses one `--at <s>:<device>.<action>[=<ms>]` against the devices the rig config gives a port. */
function scheduledFault(spec: string, names: readonly string[]): { atS: number; describe: string; fire: (devices: readonly EmulatedDevice[]) => void } {
  const m = /^(\d+(?:\.\d+)?):([a-z][a-z0-9_-]*)\.(reboot|disconnect)(?:=(\d+))?$/.exec(spec);
  if (m === null) throw new DexhilError('USAGE', `--at '${spec}' is not <seconds>:<device>.reboot[=<ms>] or <seconds>:<device>.disconnect[=<ms>]`, { hint: 'e.g. --at 10:hand.reboot --at 30:wrist_ft.disconnect=5000' });
  const [, at, name, action, ms] = m as unknown as [string, string, string, 'reboot' | 'disconnect', string | undefined];
  if (!names.includes(name)) throw new DexhilError('USAGE', `--at '${spec}': no emulated device '${name}'`, { hint: `emulated: ${names.join(', ')}` });
  const device = (devices: readonly EmulatedDevice[]): EmulatedDevice => devices.find((d) => d.name === name)!;
  const n = ms === undefined ? undefined : Number(ms);
  if (action === 'reboot') return { atS: Number(at), describe: `${name} reboots (${n ?? 500} ms)`, fire: (devices) => device(devices).reboot(n) };
  return {
    atS: Number(at),
    describe: `${name} cable pulled${n === undefined ? '' : ` for ${n} ms`}`,
    fire: (devices) => void device(devices).disconnect(n).catch((err: unknown) => process.stderr.write(`dexhil: ${name}: ${err instanceof Error ? err.message : String(err)}\n`)),
  };
}
