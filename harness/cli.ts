/**
 * The `dexhil` command line: `run`, `doctor`, `emulate` and `list`. Exit codes: 0 done, 1 doctor found a
 * problem or an unexpected internal error, 2 usage or config error, 130 interrupted (Ctrl-C),
 * 143 terminated.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { compareRuns, loadRun } from '../analysis/compare.ts';
import { DEFAULT_SPRT } from '../analysis/sequential.ts';
import { formatCompareText, writeCompareFiles, writeCompareReport } from '../analysis/compare-report.ts';
import { findScenario, SCENARIOS } from '../scenarios/index.ts';
import { ProgressWriter } from '../reports/progress.ts';
import { writeRunReport } from '../reports/html.ts';
import { writeJunit } from '../reports/junit.ts';
import type { TraceMode } from '../reports/traces.ts';
import { RealClock } from './clock.ts';
import { loadRig } from './config.ts';
import { doctor, formatDoctor } from './doctor.ts';
import { startEmulators, type EmulatedDevice } from './emulate.ts';
import { DexhilError } from './errors.ts';
import { prepareResume } from './resume.ts';
import { packageVersion } from './run-folder.ts';
import { DEFAULT_RIG, runPlan, type RunControl, type RunOptions } from './run.ts';
import type { HarnessEvent } from './events.ts';
import { fleetTopics, loadSuite, serveFleet, type FleetResult } from './fleet.ts';
import { FleetWorker } from './fleet-worker.ts';
import { publicUrl, type MqttSettings } from './mqtt.ts';

function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}, got '${value}'`);
    return Number(value);
  };
}
const positiveInt = (name: string) => wholeNumber(name, 1);
function fraction(name: string) {
  return (value: string): number => {
    const v = Number(value);
    if (!/^(0?\.\d+|0|1)$/.test(value) || !(v > 0 && v < 1)) throw new InvalidArgumentError(`${name} must be a number between 0 and 1, got '${value}'`);
    return v;
  };
}
const nonNegativeInt = (name: string) => wholeNumber(name, 0);

function seedArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw new InvalidArgumentError(`seed must be a whole number 0..4294967295, got '${value}'`);
  return Number(value);
}

/**
 * Writes to stdout until its reader goes away (`dexhil run | head`): from then on terminal output
 * is dropped and the run goes on, because the report folder, not the terminal, is the record.
 */
export function stdoutWriter(stream: NodeJS.WriteStream = process.stdout): (s: string) => void {
  let gone = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    gone = true;
  });
  return (s) => {
    if (!gone) stream.write(s);
  };
}

export function buildProgram(out: (s: string) => void, setExit: (code: number) => void): Command {
  const program = new Command('dexhil')
    .description('Hardware-in-the-loop test harness: scenarios on a robot arm (CAN), a dexterous hand and F/T sensors (serial)')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: (s) => process.stderr.write(s) });

  program
    .command('run')
    .description('run scenarios as repeated trials on a rig and write a report folder')
    .option('--rig <file>', 'rig config (YAML)', DEFAULT_RIG)
    .option('--profile <file>', "sim profile (simulated firmware build) instead of the rig config's, e.g. fixtures/profiles/regression.yaml")
    .option('-s, --scenario <name...>', `scenarios to run (default: all): ${SCENARIOS.map((s) => s.name).join(', ')}`)
    .addOption(new Option('-n, --trials <n>', 'trials per scenario').argParser(positiveInt('--trials')).default(20))
    .addOption(new Option('--seed <n>', 'seed: the same seed gives the same initial conditions and, in simulation, the same run').argParser(seedArg).default(1))
    .option('-o, --out <dir>', 'run folder (default: reports/runs/<run-id>)')
    .addOption(new Option('-j, --jobs <n>', 'threads for a simulated run, which goes in blocks of 25 trials, each on a simulated rig of its own; the results do not depend on it (default: one per 150 trials, up to one per core)').argParser(positiveInt('--jobs')))
    .addOption(new Option('--trace <when>', 'raw traces of every device in <run>/traces (candump -L for CAN, timestamped lines for serial); auto: when a real device is in the rig').choices(['auto', 'on', 'off']).default('auto'))
    .addOption(new Option('--preflight <seconds>', 'watch every link this long before the first trial and stop if a device fails (default: 2 with a real device, 0 on a simulated rig)').argParser(nonNegativeInt('--preflight')))
    .option('--baseline <run-dir>', "build A's run folder: this run (build B) is paired with it trial by trial (same --seed)")
    .option('--stop-when-decided', 'with --baseline: stop each scenario once the sequential test (Wald SPRT on discordant pairs) decides; --trials is then the maximum')
    .addOption(new Option('--sprt-p0 <rate>', 'sequential design: the baseline pass rate').argParser(fraction('--sprt-p0')).default(DEFAULT_SPRT.p0))
    .addOption(new Option('--sprt-p1 <rate>', 'sequential design: the regressed pass rate to detect').argParser(fraction('--sprt-p1')).default(DEFAULT_SPRT.p1))
    .addOption(new Option('--sprt-alpha <p>', 'sequential design: false-alarm rate').argParser(fraction('--sprt-alpha')).default(DEFAULT_SPRT.alpha))
    .addOption(new Option('--sprt-power <p>', 'sequential design: power').argParser(fraction('--sprt-power')).default(DEFAULT_SPRT.power))
    .addOption(new Option('--judge <who>', "who gives each trial's verdict once its stages are done: operator (a person, on this terminal or with an MQTT verdict command); default: each scenario's own judge").choices(['operator']))
    .option('--resume <run-dir>', 'continue an interrupted run with its own settings: the trials on disk are kept, the rest are run')
    .option('--mqtt <url>', 'publish status, results and telemetry to this MQTT broker and take operator commands (mqtt://host:1883, mqtts://host:8883)')
    .option('--mqtt-user <user>', 'MQTT user name (operator commands are only taken on an authenticated connection)')
    .option('--mqtt-password-file <file>', 'file holding the MQTT password (first line)')
    .option('--mqtt-ca <file>', 'TLS: CA certificate (PEM) the broker is checked against')
    .option('--mqtt-cert <file>', 'TLS: client certificate (PEM)')
    .option('--mqtt-key <file>', 'TLS: client key (PEM)')
    .option('--mqtt-prefix <prefix>', 'MQTT topic prefix', 'dexhil')
    .addOption(new Option('--mqtt-telemetry-hz <hz>', 'telemetry messages per second of rig time (0: none)').argParser(nonNegativeInt('--mqtt-telemetry-hz')).default(1))
    .addOption(new Option('--mqtt-queue <n>', 'messages kept while the broker is away; older ones are dropped and counted').argParser(positiveInt('--mqtt-queue')).default(1000))
    .option('-q, --quiet', 'print only the summary')
    .option('--json', 'print only the summary, as JSON')
    .option('--debug', 'print stack traces of errors')
    .action(async function (this: Command, opts: { json?: boolean; resume?: string; rig: string; profile?: string; scenario?: string[]; trials: number; seed: number; out?: string; trace: TraceMode; preflight?: number; baseline?: string; stopWhenDecided?: boolean; sprtP0: number; sprtP1: number; sprtAlpha: number; sprtPower: number; quiet?: boolean; judge?: 'operator'; jobs?: number; mqtt?: string; mqttUser?: string; mqttPasswordFile?: string; mqttCa?: string; mqttCert?: string; mqttKey?: string; mqttPrefix: string; mqttTelemetryHz: number; mqttQueue: number }) {
      const mqttGiven = this.options.filter((o) => o.attributeName().startsWith('mqtt') && o.attributeName() !== 'mqtt' && this.getOptionValueSource(o.attributeName()) === 'cli');
      if (opts.mqtt === undefined && mqttGiven.length > 0) throw new DexhilError('USAGE', `${mqttGiven.map((o) => o.long).join(', ')} need --mqtt <url>`);
      const mqttSettings = opts.mqtt === undefined ? undefined : { url: opts.mqtt, user: opts.mqttUser, passwordFile: opts.mqttPasswordFile, ca: opts.mqttCa, cert: opts.mqttCert, key: opts.mqttKey, prefix: opts.mqttPrefix, telemetryHz: opts.mqttTelemetryHz, queueLimit: opts.mqttQueue };
      if (opts.resume !== undefined) {
        // The run's own settings rule; any other run setting given here is a mistake worth saying.
        const given = this.options.filter((o) => !['resume', 'quiet', 'json', 'debug', 'jobs'].includes(o.attributeName()) && !o.attributeName().startsWith('mqtt') && this.getOptionValueSource(o.attributeName()) === 'cli');
        if (given.length > 0) throw new DexhilError('USAGE', `--resume continues a run with its own settings; ${given.map((o) => o.long).join(', ')} cannot be given with it`, { hint: 'to run with other settings, start a new run' });
      }
      if (opts.stopWhenDecided === true && opts.baseline === undefined) throw new DexhilError('USAGE', '--stop-when-decided needs --baseline <run-dir> (the run to pair with)');
      if (opts.baseline !== undefined && !(opts.sprtP0 > opts.sprtP1)) throw new DexhilError('USAGE', `--sprt-p0 ${opts.sprtP0} must be above --sprt-p1 ${opts.sprtP1}: the design is a drop to detect`);
      const design = { p0: opts.sprtP0, p1: opts.sprtP1, alpha: opts.sprtAlpha, power: opts.sprtPower };
      const names = (opts.scenario ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '');
      const scenarios = names.length === 0 ? SCENARIOS : names.map((n) => {
        const s = findScenario(n);
        if (s === undefined) throw new DexhilError('SCENARIO_UNKNOWN', `no scenario named '${n}'`, { hint: `\`dexhil list\` shows them: ${SCENARIOS.map((x) => x.name).join(', ')}` });
        return s;
      });
      let runner: RunControl | undefined;
      let signalCode: number | undefined;
      const onSignal = (sig: NodeJS.Signals): void => {
        if (signalCode !== undefined) {
          process.stderr.write(`dexhil: ${sig} again, still stopping safely...\n`);
          return;
        }
        signalCode = sig === 'SIGINT' ? 130 : 143;
        process.stderr.write(`dexhil: ${sig}: stopping after holding the rig; trials done so far are kept\n`);
        runner?.abort(sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // Progress: bars on a terminal, plain lines in logs and CI, nothing with --quiet or --json.
        const silent = opts.quiet === true || opts.json === true;
        const progress = silent ? undefined : new ProgressWriter({ out, bars: process.stderr.isTTY === true && process.env['CI'] !== 'true' });
        const common = { listeners: progress === undefined ? [] : [progress.listener], notice: (t: string) => process.stderr.write(`dexhil: ${t}\n`), ...(mqttSettings === undefined ? {} : { mqtt: mqttSettings }), ...(opts.jobs === undefined ? {} : { jobs: opts.jobs }) };
        let plan: RunOptions;
        if (opts.resume !== undefined) {
          const resume = prepareResume(opts.resume);
          for (const r of resume.repairs) process.stderr.write(`dexhil: repaired ${r}\n`);
          const st = resume.settings;
          if (!silent) out(`resuming ${resume.runId}: ${resume.records.length} trials on disk\n`);
          plan = {
            rigFile: st.rig_file, ...(st.profile_file === undefined ? {} : { profileFile: st.profile_file }), scenarios: resume.scenarios, trials: st.trials, seed: st.seed, trace: st.trace,
            ...(st.preflight_seconds === undefined ? {} : { preflightSeconds: st.preflight_seconds }), ...(st.baseline === undefined ? {} : { baseline: st.baseline }), ...(st.judge === undefined ? {} : { judge: st.judge }), resume, ...common,
          };
        } else {
          plan = { rigFile: opts.rig, ...(opts.profile === undefined ? {} : { profileFile: opts.profile }), scenarios, trials: opts.trials, seed: opts.seed, trace: opts.trace, ...(opts.preflight === undefined ? {} : { preflightSeconds: opts.preflight }), ...(opts.baseline === undefined ? {} : { baseline: { dir: opts.baseline, design, stopWhenDecided: opts.stopWhenDecided === true } }), ...(opts.out === undefined ? {} : { outDir: opts.out }), ...(opts.judge === undefined ? {} : { judge: opts.judge }), ...common };
        }
        let result: Awaited<ReturnType<typeof runPlan>>;
        try {
          result = await runPlan(plan, { onRunner: (r) => (runner = r) });
        } finally {
          progress?.stop();
        }
        const exitCode = signalCode ?? (result.stoppedBecause !== undefined ? 4 : (result.sequential ?? []).some((q) => q.decision === 'regression') ? 1 : 0);
        if (opts.json === true) {
          out(`${JSON.stringify({ run_id: result.runId, dir: result.dir, clock: result.clockKind, sim_seconds: result.simSeconds, wall_seconds: result.wallSeconds, aborted: result.aborted, ...(result.stoppedBecause === undefined ? {} : { stopped_because: result.stoppedBecause }), scenarios: result.summary.summaries(), ...(result.sequential === undefined ? {} : { sequential: result.sequential }), exit_code: exitCode }, null, 2)}\n`);
          setExit(exitCode);
          return;
        }
        out(`\n${result.summary.format(result.simSeconds, result.wallSeconds, result.clockKind)}\n`);
        for (const q of result.sequential ?? []) {
          out(`${q.scenario}: sequential test ${q.decision === 'undecided' ? 'undecided' : `decided ${q.decision.toUpperCase()}`} after ${q.trials} trials (${q.stoppedBy}; ${q.pairs} pairs, ${q.bWorse} with only A passing, ${q.bBetter} with only B passing, log LR ${q.llr.toFixed(2)})\n`);
        }
        out(`report: ${path.relative(process.cwd(), result.dir) || '.'}\n`);
        if (result.stoppedBecause !== undefined && signalCode === undefined) process.stderr.write(`dexhil: the run stopped early: ${result.stoppedBecause}\n`);
        setExit(exitCode);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  const fleet = program.command('fleet').description('several rigs, one suite, over an MQTT 5 broker: `fleet serve` hands out the trials, `fleet work` runs them on each rig');
  const brokerOptions = (c: Command): Command =>
    c
      .requiredOption('--broker <url>', 'MQTT 5 broker (mqtt://host:1883, mqtts://host:8883)')
      .option('--group <name>', 'fleet name: the shared subscription group and topic level', 'dexhil')
      .option('--mqtt-user <user>', 'MQTT user name')
      .option('--mqtt-password-file <file>', 'file holding the MQTT password (first line)')
      .option('--mqtt-ca <file>', 'TLS: CA certificate (PEM) the broker is checked against')
      .option('--mqtt-cert <file>', 'TLS: client certificate (PEM)')
      .option('--mqtt-key <file>', 'TLS: client key (PEM)')
      .option('--mqtt-prefix <prefix>', 'MQTT topic prefix', 'dexhil');
  type BrokerOpts = { broker: string; group: string; mqttUser?: string; mqttPasswordFile?: string; mqttCa?: string; mqttCert?: string; mqttKey?: string; mqttPrefix: string };
  const brokerSettings = (o: BrokerOpts): MqttSettings => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(o.group)) throw new DexhilError('USAGE', `--group ${o.group}: letters, digits, _ and - only (it is an MQTT topic level and a shared subscription group)`);
    return { url: o.broker, user: o.mqttUser, passwordFile: o.mqttPasswordFile, ca: o.mqttCa, cert: o.mqttCert, key: o.mqttKey, prefix: o.mqttPrefix, telemetryHz: 1 };
  };
  /** Runs `body` with Ctrl-C / SIGTERM turned into `stop`; returns the exit code for a signal, if one came. */
  const withSignals = async (stop: (sig: NodeJS.Signals) => void, body: () => Promise<void>): Promise<number | undefined> => {
    let code: number | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (code !== undefined) return;
      code = sig === 'SIGINT' ? 130 : 143;
      stop(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await body();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return code;
  };

  brokerOptions(fleet.command('serve').description("coordinate: offer a suite's trials as jobs to the fleet's workers and write one merged run folder"))
    .requiredOption('--suite <file>', 'suite file (YAML): suite name, seed, trials, scenarios')
    .option('-o, --out <dir>', 'run folder (default: reports/runs/<fleet-run-id>)')
    .addOption(new Option('--job-timeout <seconds>', 'a taken trial whose result has not come in this long is handed to another worker').argParser(positiveInt('--job-timeout')).default(600))
    .action(async (opts: BrokerOpts & { suite: string; out?: string; jobTimeout: number }) => {
      const suite = loadSuite(opts.suite);
      const broker = brokerSettings(opts);
      const ac = new AbortController();
      let result: FleetResult | undefined;
      const code = await withSignals(
        (sig) => {
          process.stderr.write(`dexhil: ${sig}: the coordinator stops; the results in so far are written\n`);
          ac.abort();
        },
        async () => {
          result = await serveFleet({ broker, group: opts.group, suite, ...(opts.out === undefined ? {} : { outDir: opts.out }), jobTimeoutMs: opts.jobTimeout * 1000, out, notice: (t) => process.stderr.write(`dexhil: ${t}\n`), signal: ac.signal });
        },
      );
      const r = result!;
      out(`\n${r.summary.format(r.simSeconds, r.wallSeconds, r.clockKind)}\n`);
      out(`workers: ${Object.entries(r.workers).map(([w, n]) => `${w} ${n}`).join(', ') || 'none'}; offered again: ${r.reoffered}; duplicate results ignored: ${r.duplicates}${r.skipped.length > 0 ? `; skipped: ${r.skipped.length}` : ''}\n`);
      out(`report: ${path.relative(process.cwd(), r.dir) || '.'}\n`);
      setExit(code ?? (r.complete ? 0 : 4));
    });

  brokerOptions(fleet.command('work').description('serve as a fleet worker: run the trials the coordinator hands out on this rig, until Ctrl-C'))
    .option('--rig <file>', 'rig config (YAML)', DEFAULT_RIG)
    .option('--rig-id <id>', "this worker's rig id instead of the rig config's (each worker needs its own, e.g. several simulated workers from sim.yaml)")
    .addOption(new Option('--seed <n>', 'seed of the simulated devices (the trials take the suite seed)').argParser(seedArg).default(1))
    .option('-o, --out <dir>', "this worker's own run folder (default: reports/runs/<run-id>)")
    .addOption(new Option('--trace <when>', 'raw traces of every device (see `run --trace`)').choices(['auto', 'on', 'off']).default('auto'))
    .action(async (opts: BrokerOpts & { rig: string; rigId?: string; seed: number; out?: string; trace: TraceMode }) => {
      if (opts.rigId !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.rigId)) throw new DexhilError('USAGE', `--rig-id ${opts.rigId}: letters, digits, _ . - only (it is an MQTT topic level)`);
      const mqtt = brokerSettings(opts);
      const notice = (t: string): void => void process.stderr.write(`dexhil: ${t}\n`);
      const worker = new FleetWorker(opts.group, opts.mqttPrefix, notice);
      let runner: RunControl | undefined;
      let result: Awaited<ReturnType<typeof runPlan>> | undefined;
      const lines = (e: HarnessEvent): void => {
        if (e.type === 'trial-end') out(`${e.record.scenario} #${e.record.trial} ${e.record.outcome}${e.record.failureLabel ? ` (${e.record.failureLabel})` : ''}\n`);
      };
      out(`fleet worker: taking jobs from ${fleetTopics(opts.mqttPrefix, opts.group).shared} at ${publicUrl(opts.broker)}\n`);
      const code = await withSignals(
        (sig) => {
          process.stderr.write(`dexhil: ${sig}: the worker stops after holding the rig; a trial in progress goes back to the coordinator\n`);
          runner?.abort(sig);
        },
        async () => {
          result = await runPlan({ rigFile: opts.rig, ...(opts.rigId === undefined ? {} : { rigId: opts.rigId }), scenarios: SCENARIOS, trials: 0, seed: opts.seed, trace: opts.trace, ...(opts.out === undefined ? {} : { outDir: opts.out }), mqtt, feed: worker, listeners: [lines], notice }, { onRunner: (r) => (runner = r) });
        },
      );
      const r = result!;
      out(`\nfleet worker: ${worker.counts.taken} trials taken, ${worker.counts.declined} declined (busy), ${worker.counts.refused} refused\nreport: ${path.relative(process.cwd(), r.dir) || '.'}\n`);
      setExit(code ?? (r.stoppedBecause !== undefined ? 4 : 0));
    });

  program
    .command('doctor')
    .description('bring-up check: open every device of a rig, read its identity, watch its link; exit 1 if anything is missing or wrong')
    .option('--rig <file>', 'rig config (YAML)', DEFAULT_RIG)
    .addOption(new Option('--seconds <n>', 'how long to watch each link').argParser(positiveInt('--seconds')).default(3))
    .action(async (opts: { rig: string; seconds: number }) => {
      const rows = await doctor(loadRig(opts.rig), { seconds: opts.seconds, seed: 1 });
      out(`${formatDoctor(rows)}\n`);
      setExit(rows.every((r) => r.ok) ? 0 : 1);
    });

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

  program
    .command('compare')
    .description('is build B worse than build A? compare two run folders scenario by scenario; exit 1 on a regression')
    .argument('<run-a>', 'baseline run folder (build A)')
    .argument('<run-b>', 'candidate run folder (build B)')
    .addOption(new Option('--alpha <p>', 'one-sided level of the gate, Holm-adjusted over scenarios').argParser(fraction('--alpha')).default(0.05))
    .addOption(new Option('--margin <d>', 'non-inferiority margin on the success rate (0.05 = 5 points)').argParser(fraction('--margin')).default(0.05))
    .addOption(new Option('--power <p>', 'power for the trials-needed figure').argParser(fraction('--power')).default(0.8))
    .option('--paired', 'require paired trials (same initial conditions); an error when the runs cannot be paired')
    .option('--json', 'print the comparison as JSON')
    .option('-o, --out <dir>', 'also write compare.md, compare.csv and compare.json there')
    .option('--html <file>', 'also write the comparison as a self-contained HTML page (charts, verdicts, trials needed)')
    .action((runA: string, runB: string, opts: { alpha: number; margin: number; power: number; paired?: boolean; json?: boolean; out?: string; html?: string }) => {
      const c = compareRuns(loadRun(runA, 'run A'), loadRun(runB, 'run B'), { alpha: opts.alpha, margin: opts.margin, power: opts.power, paired: opts.paired === true });
      out(opts.json ? `${JSON.stringify(c, null, 2)}\n` : `${formatCompareText(c)}\n`);
      if (opts.out !== undefined) {
        const files = writeCompareFiles(c, opts.out);
        if (!opts.json) out(`written: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}\n`);
      }
      if (opts.html !== undefined) {
        const file = writeCompareReport(c, opts.html);
        if (!opts.json) out(`written: ${path.relative(process.cwd(), file)}\n`);
      }
      setExit(c.regression ? 1 : 0);
    });

  program
    .command('report')
    .description("re-render a run folder's report.html and junit.xml from its CSVs (old runs, or after a crash)")
    .argument('<run-dir>', 'a run folder (reports/runs/<run-id>)')
    .action((dir: string) => {
      const html = writeRunReport(dir);
      const xml = writeJunit(dir);
      out(`written: ${path.relative(process.cwd(), html)}, ${path.relative(process.cwd(), xml)}\n`);
    });

  program
    .command('list')
    .description('list the scenarios with their stages and success criteria')
    .action(() => {
      for (const s of SCENARIOS) {
        out(`${s.name} v${s.version} - ${s.description}\n`);
        out(`  needs: ${s.needs.length > 0 ? s.needs.join(', ') : 'any device'}; trial timeout ${s.trialTimeoutMs / 1000} s\n`);
        out(`  success: ${s.success}\n`);
        s.stages.forEach((st, i) => out(`  ${i + 1}. ${st.name} (timeout ${st.timeoutMs / 1000} s, ${st.maxAttempts} attempt${st.maxAttempts > 1 ? 's' : ''}): ${st.description}\n`));
        const kinds = Object.entries(s.maxCorrections);
        if (kinds.length > 0) out(`  corrections: ${kinds.map(([k, n]) => `${k} (max ${n})`).join(', ')}\n`);
        out('\n');
      }
    });
  return program;
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

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], out: (s: string) => void = stdoutWriter()): Promise<number> {
  let code = 0;
  const debug = argv.includes('--debug');
  const program = buildProgram(out, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof DexhilError) {
      process.stderr.write(`dexhil: ${err.describe()}\n`);
      if (debug) process.stderr.write(`${err.stack ?? ''}\n`);
      return err.code === 'INTERNAL' ? 1 : err.code === 'PREFLIGHT' ? 3 : 2;
    }
    process.stderr.write(`dexhil: internal error: ${err instanceof Error ? (debug ? err.stack : err.message) : String(err)}\n`);
    if (!debug) process.stderr.write('  run again with --debug for the stack trace, and please report it\n');
    return 1;
  }
}
