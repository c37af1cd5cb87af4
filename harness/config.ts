/**
 * Rig config, sim profile and work-cell files: YAML, validated with zod. A bad value is reported
 * with the file, the line and the field path, and what is expected there.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_KCD, readArmBus, type ArmBus } from '../drivers/arm/codec.ts';
import { DexhilError } from './errors.ts';

const name = z.string().regex(/^[a-z][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -, starting with a letter');

const armDevice = z
  .strictObject({
  kind: z.literal('arm'),
  /** sim: simulated motors; slcan: a USB-CAN adapter at `port`; socketcan: kernel interface `iface`; auto: hardware when present, else sim. */
  transport: z.enum(['sim', 'slcan', 'socketcan', 'auto']).default('sim'),
  port: z.string().min(1).optional(),
  iface: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a network interface name like can0').optional(),
  slcanDialect: z.enum(['lawicel', 'canable']).default('lawicel'),
  /** Baud rate of the adapter's serial port (USB CDC adapters ignore it). */
  portBaud: z.number().int().positive().default(115_200),
  joints: z.number().int().min(1).max(8).default(7),
  bitrate: z.number().int().positive().default(1_000_000),
  controlHz: z.number().positive().max(2000).default(10),
  holdHz: z.number().positive().max(2000).default(2),
  maxVelocityRadS: z.number().positive().max(10).default(1.0),
  kp: z.number().min(0).max(500).default(40),
  kd: z.number().min(0).max(5).default(1),
  kcd: z.string().optional(),
  home: z.array(z.number()).optional(),
  requestTimeoutMs: z.number().positive().default(200),
  })
  .refine((a) => a.holdHz <= a.controlHz, { message: 'holdHz must not exceed controlHz', path: ['holdHz'] })
  .refine((a) => a.transport !== 'slcan' || a.port !== undefined, { message: 'transport slcan needs the adapter\'s serial port, e.g. port: /dev/ttyACM0', path: ['port'] })
  .refine((a) => a.transport !== 'socketcan' || a.iface !== undefined, { message: 'transport socketcan needs the interface, e.g. iface: can0', path: ['iface'] })
  .refine((a) => a.transport !== 'auto' || a.port !== undefined || a.iface !== undefined, { message: 'transport auto needs a port (slcan) or an iface (socketcan) to look for', path: ['transport'] });

const serialDevice = {
  /** sim: simulated peer; serial: the device at `port`; auto: `port` when it exists, else sim. */
  transport: z.enum(['sim', 'serial', 'auto']).default('sim'),
  port: z.string().min(1).optional(),
  baud: z.number().int().positive().default(921_600),
  requestTimeoutMs: z.number().positive().default(200),
};

const hasPort = (d: { transport: string; port?: string | undefined }): boolean => d.transport === 'sim' || d.port !== undefined;
const portMissing = { message: 'transport serial or auto needs the serial port, e.g. port: /dev/ttyUSB0', path: ['port'] };
const handDevice = z.strictObject({ kind: z.literal('hand'), ...serialDevice, streamHz: z.number().positive().max(1000).default(20) }).refine(hasPort, portMissing);
const ftDevice = z
  .strictObject({
    kind: z.literal('ft'),
    ...serialDevice,
    mount: z.enum(['wrist', 'table']),
    streamHz: z.number().positive().max(7000).default(50),
  })
  .refine(hasPort, portMissing);

const axisLimits = z.strictObject({
  /** Limit on the force magnitude, N. */
  forceN: z.number().positive().optional(),
  /** Limit on the torque magnitude, N·m. */
  torqueNm: z.number().positive().optional(),
  fx: z.number().positive().optional(),
  fy: z.number().positive().optional(),
  fz: z.number().positive().optional(),
  tx: z.number().positive().optional(),
  ty: z.number().positive().optional(),
  tz: z.number().positive().optional(),
  /** Sensor temperature, °C. */
  tempC: z.number().positive().optional(),
});

/**
 * The safety supervisor's limits (harness/safety.ts). Defaults suit the simulated rig; a real rig
 * sets its own. The supervisor always runs: there is no switch to turn it off.
 */
const safetySchema = z
  .strictObject({
    /** Every F/T sensor: force and torque magnitude, sensor temperature. */
    forceN: z.number().positive().default(60),
    torqueNm: z.number().positive().default(6),
    ftTempC: z.number().positive().default(70),
    /** Per sensor (by device name): magnitude or per-axis limits that replace the defaults. */
    sensors: z.record(name, axisLimits).default({}),
    /** Arm joints: position range (one [min, max] for all joints, rad), speed, motor temperature. */
    jointRangeRad: z.tuple([z.number(), z.number()]).default([-3.1, 3.1]),
    jointVelocityRadS: z.number().positive().default(4),
    motorTempC: z.number().positive().default(80),
    /** Hand motor current, A. */
    handCurrentA: z.number().positive().default(1.5),
    /** A device is lost when nothing arrives for this many of its expected periods... */
    watchdogPeriods: z.number().min(2).default(5),
    /** ...and for at least this long, ms. */
    watchdogMinMs: z.number().min(10).default(100),
    /** How long to keep trying to reopen a lost device (backoff 0.25 s doubling to 5 s) before ending the run. */
    reconnectTimeoutS: z.number().positive().default(60),
    /** After a safe stop: go on with the next trial, or end the run. */
    onBreach: z.enum(['continue', 'abort']).default('continue'),
  })
  .refine((s) => s.jointRangeRad[0] < s.jointRangeRad[1], { message: 'jointRangeRad: min must be below max', path: ['jointRangeRad'] });

export type SafetyConfig = z.infer<typeof safetySchema>;

export const rigConfigSchema = z.strictObject({
  safety: safetySchema.default(() => safetySchema.parse({})),
  rig: z.strictObject({
    id: name,
    profile: z.string().default('../profiles/default.yaml'),
    cell: z.string().default('../cell.yaml'),
    reset: z.enum(['auto', 'operator']).default('auto'),
  }),
  devices: z
    .record(name, z.discriminatedUnion('kind', [armDevice, handDevice, ftDevice]))
    .refine((d) => Object.values(d).filter((x) => x.kind === 'arm').length <= 1, 'at most one arm')
    .refine((d) => Object.values(d).filter((x) => x.kind === 'hand').length <= 1, 'at most one hand'),
});

export type RigConfig = z.infer<typeof rigConfigSchema>;
export type ArmConfig = z.infer<typeof armDevice>;
export type HandConfig = z.infer<typeof handDevice>;
export type FtConfig = z.infer<typeof ftDevice>;
export type DeviceConfig = ArmConfig | HandConfig | FtConfig;

const probability = z.number().min(0).max(1);
const faults = z.strictObject({ drop: probability.default(0), corrupt: probability.default(0), latencyMs: z.number().min(0).default(0), stalled: z.boolean().default(false) });
const identity = { model: z.string().min(1), firmware: z.string().regex(/^\d+\.\d+\.\d+$/, 'a version like 1.2.3'), serialPrefix: z.string().default('SIM') };

export const profileSchema = z.strictObject({
  name,
  description: z.string().default(''),
  arm: z.strictObject({ modelCode: z.number().int().min(0).max(255), firmware: identity.firmware, protocol: z.tuple([z.number().int(), z.number().int()]), tauMs: z.number().positive(), faults: faults.prefault({}) }),
  hand: z.strictObject({ ...identity, protocol: z.string(), speedRadS: z.number().positive(), faults: faults.prefault({}) }),
  ft: z.strictObject({ ...identity, protocol: z.string(), noiseN: z.number().min(0), faults: faults.prefault({}) }),
  link: z.strictObject({ serialLatencyMs: z.number().min(0).default(0.2) }).prefault({}),
  world: z.strictObject({
    resetFailure: probability,
    tasks: z.record(z.string(), z.record(z.string(), z.number())),
  }),
});
export type Profile = z.infer<typeof profileSchema>;

export const cellSchema = z.strictObject({
  description: z.string().default(''),
  home: z.array(z.number()).min(1),
  sites: z.record(z.string(), z.array(z.number()).min(6)),
});
export type Cell = z.infer<typeof cellSchema>;

/** Reads and validates a YAML file against a schema; errors name file, line and field. */
export function loadYaml<T extends z.ZodType>(file: string, schema: T, what: string): z.infer<T> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new DexhilError('CONFIG_NOT_FOUND', `cannot read ${what} ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, {
      hint: `check the path${what === 'rig config' ? ', or run without --rig to use fixtures/rigs/sim.yaml' : ''}`,
      cause,
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lineCounter.linePos(e.pos[0]);
    throw new DexhilError('CONFIG_INVALID', `${file}:${pos.line}:${pos.col}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const fieldPath = issue.path.map(String);
  const field = fieldPath.join('.') || '(top level)';
  let where = file;
  const node = fieldPath.length > 0 ? (doc.getIn(fieldPath, true) as { range?: [number, number, number] } | undefined) : undefined;
  const parentNode = fieldPath.length > 1 ? doc.getIn(fieldPath.slice(0, -1), true) : doc.contents;
  const anchor = node?.range?.[0] ?? (isMap(parentNode) ? parentNode.range?.[0] : undefined);
  if (anchor !== undefined) where = `${file}:${lineCounter.linePos(anchor).line}`;
  const extra = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more problem${result.error.issues.length > 2 ? 's' : ''})` : '';
  throw new DexhilError('CONFIG_INVALID', `${where}: ${what} field '${field}': ${describeIssue(issue)}${extra}`, {
    hint: `fix '${field}' in ${file}; the README's '${what === 'suite file' ? 'Several rigs, one suite' : 'Rig config'}' section describes the fields`,
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.input === undefined) return `missing (expected ${issue.expected})`;
  return issue.message;
}

export interface LoadedRig {
  file: string;
  config: RigConfig;
  profile: Profile;
  profileFile: string;
  cell: Cell;
  /** Each arm's CAN database (its KCD file's arm bus), by device name. */
  armBuses: Record<string, ArmBus>;
}

/** The CAN database file of an arm (relative paths are relative to the rig config). */
function kcdOf(rigFile: string, dev: ArmConfig): string {
  return dev.kcd === undefined ? DEFAULT_KCD : path.resolve(path.dirname(rigFile), dev.kcd);
}

/** Loads a rig config and the profile, cell and KCD files it names (paths relative to the config). */
export function loadRig(file: string, options: { profile?: string } = {}): LoadedRig {
  const config = loadYaml(file, rigConfigSchema, 'rig config');
  const dir = path.dirname(file);
  // A profile given on the command line replaces the config's (paths relative to the caller).
  const profileFile = options.profile === undefined ? path.resolve(dir, config.rig.profile) : path.resolve(options.profile);
  const armBuses: Record<string, ArmBus> = {};
  for (const [name, dev] of Object.entries(config.devices)) {
    if (dev.kind !== 'arm') continue;
    const kcd = kcdOf(file, dev);
    try {
      armBuses[name] = readArmBus(kcd);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message.split('\n')[0]! : String(cause);
      throw new DexhilError('CONFIG_INVALID', `${file}: rig config field 'devices.${name}.kcd': cannot read the CAN database ${kcd}: ${why}`, {
        hint: `point devices.${name}.kcd at a KCD file with a <Bus name="arm"> (relative to ${file}), or leave it out for fixtures/can/arm.kcd`,
        cause,
      });
    }
  }
  return { file, config, profile: loadProfile(profileFile), profileFile, cell: loadYaml(path.resolve(dir, config.rig.cell), cellSchema, 'work cell'), armBuses };
}

export function loadProfile(file: string): Profile {
  return loadYaml(file, profileSchema, 'sim profile');
}
