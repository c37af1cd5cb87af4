/** `dexhil fleet serve` and `dexhil fleet work`: several rigs, one suite, over an MQTT 5 broker. */
import { Option, type Command } from 'commander';
import path from 'node:path';
import type { TraceMode } from '../reports/traces.ts';
import { SCENARIOS } from '../scenarios/index.ts';
import { seedArg, positiveInt } from './cli-args.ts';
import { DexhilError } from './errors.ts';
import type { HarnessEvent } from './events.ts';
import { fleetTopics, loadSuite, serveFleet, type FleetResult } from './fleet.ts';
import { FleetWorker } from './fleet-worker.ts';
import { publicUrl, type MqttSettings } from './mqtt-connection.ts';
import { DEFAULT_RIG, runPlan, type RunControl } from './run.ts';

/** Adds the `fleet` command and its two subcommands to `program`. */
export function addFleetCommands(program: Command, out: (s: string) => void, setExit: (code: number) => void): void {
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
}
