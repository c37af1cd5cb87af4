/**
 * Progress of a run while it goes, a listener on the event stream like the other writers:
 *
 * - on a terminal: a bar per scenario (cli-progress) with trials done, pass rate so far and ETA,
 *   on stderr, so stdout keeps only the summary;
 * - otherwise (a pipe, a CI log, `CI=true`): plain lines on stdout, one each tenth of a scenario's
 *   trials or each minute, whichever comes first, and one for every trial that ended in error.
 */
import cliProgress from 'cli-progress';
import { monotonicMs } from '../harness/clock.ts';
import type { HarnessEvent } from '../harness/events.ts';

export interface ProgressOptions {
  /** Plain lines go here (stdout). */
  out: (s: string) => void;
  /** Draw bars (a terminal, and not CI). */
  bars: boolean;
  /** Where bars are drawn (default stderr). */
  stream?: NodeJS.WriteStream;
}

interface Tally {
  total: number;
  done: number;
  pass: number;
  judged: number;
  startedMs: number;
  lastLineMs: number;
  lastLineDone: number;
}

const pct = (t: Tally): string => (t.judged > 0 ? `${((100 * t.pass) / t.judged).toFixed(1)}%` : '-');

function eta(t: Tally): string {
  if (t.done === 0) return '?';
  const perTrialS = (monotonicMs() - t.startedMs) / 1000 / t.done;
  const s = Math.round(perTrialS * (t.total - t.done));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export class ProgressWriter {
  private readonly tallies = new Map<string, Tally>();
  private readonly multibar: cliProgress.MultiBar | undefined;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(private readonly options: ProgressOptions) {
    if (options.bars) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: options.stream ?? process.stderr,
          format: '{scenario} |{bar}| {value}/{total} trials | pass {rate} | eta {eta}',
          hideCursor: true,
          clearOnComplete: false,
          autopadding: true,
          barsize: 20,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  private line(text: string): void {
    if (this.multibar) this.multibar.log(`${text}\n`);
    else this.options.out(`${text}\n`);
  }

  readonly listener = (e: HarnessEvent): void => {
    switch (e.type) {
      case 'scenario-start': {
        const now = monotonicMs();
        const t: Tally = { total: e.trials, done: 0, pass: 0, judged: 0, startedMs: now, lastLineMs: now, lastLineDone: 0 };
        this.tallies.set(e.scenario, t);
        if (this.multibar) this.bars.set(e.scenario, this.multibar.create(e.trials, 0, { scenario: e.scenario.padEnd(12), rate: '-', eta: '?' }));
        else this.line(`${e.scenario} v${e.version}: ${e.trials} trials`);
        break;
      }
      case 'scenario-skip':
        this.line(`${e.scenario}: skipped (${e.reason})`);
        break;
      case 'trial-end': {
        const r = e.record;
        const t = this.tallies.get(r.scenario);
        if (t === undefined) break;
        t.done++;
        if (r.outcome === 'pass' || r.outcome === 'fail') t.judged++;
        if (r.outcome === 'pass') t.pass++;
        if (r.outcome === 'error') this.line(`  ${r.scenario} trial ${r.trial}: error (${r.failureLabel}${r.faultDomain ? `, ${r.faultDomain}` : ''})`);
        const bar = this.bars.get(r.scenario);
        if (bar !== undefined) {
          bar.update(t.done, { rate: pct(t), eta: eta(t) });
          break;
        }
        const now = monotonicMs();
        const step = Math.max(1, Math.ceil(t.total / 10));
        if (t.done === t.total || t.done - t.lastLineDone >= step || now - t.lastLineMs >= 60_000) {
          t.lastLineMs = now;
          t.lastLineDone = t.done;
          this.line(`  ${r.scenario}: ${t.done}/${t.total} trials, ${t.pass} pass (${pct(t)} of judged), eta ${t.done === t.total ? '0:00' : eta(t)}`);
        }
        break;
      }
      case 'run-end':
        this.stop();
        break;
      default:
        break;
    }
  };

  /** Takes the bars off the terminal's live area (the run ended). Safe to call twice. */
  stop(): void {
    this.multibar?.stop();
  }
}
