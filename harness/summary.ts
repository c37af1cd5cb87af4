/** The end-of-run summary: a listener that gathers trial records and formats a table. */
import type { HarnessEvent, TrialRecord } from './events.ts';
import { quantile, wilson } from './stats.ts';

export interface ScenarioSummary {
  scenario: string;
  trials: number;
  pass: number;
  fail: number;
  error: number;
  timeout: number;
  aborted: number;
  successRate: number;
  ci95: { lo: number; hi: number };
  correctionsPerTrial: number;
  medianDurationS: number;
  p95DurationS: number;
}

export class SummaryCollector {
  readonly records = new Map<string, TrialRecord[]>();
  readonly skipped: { scenario: string; reason: string }[] = [];

  readonly listener = (e: HarnessEvent): void => {
    if (e.type === 'trial-end') {
      const list = this.records.get(e.record.scenario) ?? [];
      list.push(e.record);
      this.records.set(e.record.scenario, list);
    } else if (e.type === 'scenario-skip') this.skipped.push({ scenario: e.scenario, reason: e.reason });
  };

  summaries(): ScenarioSummary[] {
    return [...this.records.entries()].map(([scenario, rs]) => {
      const count = (o: TrialRecord['outcome']): number => rs.filter((r) => r.outcome === o).length;
      const pass = count('pass');
      // Success rate over judged trials: error/timeout/aborted trials say nothing about the task.
      const judged = pass + count('fail');
      const durations = rs.map((r) => r.durationMs / 1000);
      return {
        scenario,
        trials: rs.length,
        pass,
        fail: count('fail'),
        error: count('error'),
        timeout: count('timeout'),
        aborted: count('aborted'),
        successRate: judged > 0 ? pass / judged : NaN,
        ci95: wilson(pass, judged),
        correctionsPerTrial: rs.reduce((s, r) => s + Object.values(r.corrections).reduce((a, b) => a + b, 0), 0) / Math.max(1, rs.length),
        medianDurationS: quantile(durations, 0.5),
        p95DurationS: quantile(durations, 0.95),
      };
    });
  }

  format(simSeconds: number, wallSeconds: number, clockKind: string): string {
    const rows = this.summaries();
    const header = ['scenario', 'trials', 'pass', 'fail', 'err/to/ab', 'success (95% CI)', 'corr/trial', 'median s', 'p95 s'];
    const body = rows.map((s) => [
      s.scenario,
      String(s.trials),
      String(s.pass),
      String(s.fail),
      `${s.error}/${s.timeout}/${s.aborted}`,
      Number.isNaN(s.successRate) ? 'n/a' : `${pct(s.successRate)} (${pct(s.ci95.lo)}-${pct(s.ci95.hi)})`,
      s.correctionsPerTrial.toFixed(2),
      s.medianDurationS.toFixed(1),
      s.p95DurationS.toFixed(1),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
    for (const s of this.skipped) out.push(`${s.scenario}: skipped (${s.reason})`);
    const speed = wallSeconds > 0 ? ` (${Math.round(simSeconds / wallSeconds)}x)` : '';
    out.push(`${clockKind === 'virtual' ? 'simulated' : 'rig'} time ${simSeconds.toFixed(1)} s, wall time ${wallSeconds.toFixed(2)} s${clockKind === 'virtual' ? speed : ''}`);
    return out.join('\n');
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
