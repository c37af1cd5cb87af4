/**
 * The `dexhil` command line: `run`, `fleet` (cli-fleet.ts), `doctor`, `emulate` (cli-emulate.ts),
 * `compare`, `report` and `list`. Exit codes: 0 done, 1 doctor found a problem or an unexpected
 * internal error, 2 usage or config error, 130 interrupted (Ctrl-C), 143 terminated.
 */
import { Command, CommanderError, Option } from 'commander';
import path from 'node:path';
import { compareRuns, loadRun } from '../analysis/compare.ts';
import { DEFAULT_SPRT } from '../analysis/sequential.ts';
import { formatCompareText, writeCompareFiles, writeCompareReport } from '../analysis/compare-report.ts';
import { findScenario, SCENARIOS } from '../scenarios/index.ts';
import { ProgressWriter } from '../reports/progress.ts';
import { writeRunReport } from '../reports/html.ts';
import { writeJunit } from '../reports/junit.ts';
import type { TraceMode } from '../reports/traces.ts';
import { fraction, nonNegativeInt, positiveInt, seedArg } from './cli-args.ts';
import { addEmulateCommand } from './cli-emulate.ts';
import { addFleetCommands } from './cli-fleet.ts';
import { loadRig } from './config.ts';
import { doctor, formatDoctor } from './doctor.ts';
import { DexhilError } from './errors.ts';
import { prepareResume } from './resume.ts';
import { packageVersion } from './run-folder.ts';
import { DEFAULT_RIG, runPlan, type RunControl, type RunOptions } from './run.ts';

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

  addFleetCommands(program, out, setExit);

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

  addEmulateCommand(program, out);

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
