/**
 * The operator's desk: questions only a person at the rig can answer, asked wherever one may be
 * listening, the first answer taken.
 *
 * - `reset`: the scene has been put back for the next trial (`rig.reset: operator`). Answer: done,
 *   or skip (the trial is then an `error`, reset-failed: it could not be judged).
 * - `verdict`: the sensors say the task was done; is it? (scenarios judged by `operator`). Answer:
 *   pass, or fail with a label naming what is wrong.
 *
 * Places to answer: the terminal the harness runs in (when stdin is one) and MQTT (`reset-done`
 * and `verdict` commands on `<prefix>/<rig>/cmd`, see harness/mqtt.ts). Each place is told when
 * the question was answered elsewhere.
 */
import { createInterface, type Interface } from 'node:readline';
import { AbortedError, DexhilError } from './errors.ts';

export type Question =
  | { kind: 'reset'; scenario: string; trial: number; icId: string; text: string }
  | { kind: 'verdict'; scenario: string; trial: number; icId: string; text: string };

export type Answer = { kind: 'reset'; done: boolean; by: string } | { kind: 'verdict'; pass: boolean; label: string; by: string };

/** A place questions are shown and answers come from. */
export interface OperatorPlace {
  readonly name: string;
  /** Shows the question; answers come back through the desk's `answer`. */
  show(q: Question): void;
  /** The question was answered (here or elsewhere), or withdrawn. */
  clear(q: Question, answer: Answer | undefined): void;
  /** The run is over: stop listening. */
  leave(): void;
}

export class OperatorDesk {
  private readonly places: OperatorPlace[] = [];
  private pending: { q: Question; resolve: (a: Answer) => void } | undefined;

  add(place: OperatorPlace): void {
    this.places.push(place);
  }

  get placeNames(): string[] {
    return this.places.map((p) => p.name);
  }

  /** The question waiting for its answer, if one is. */
  get question(): Question | undefined {
    return this.pending?.q;
  }

  /**
   * Asks, and resolves with the first answer from any place.
   * @throws AbortedError when `signal` aborts first; DexhilError USAGE when there is no place to ask.
   */
  ask(q: Question, signal?: AbortSignal): Promise<Answer> {
    if (this.places.length === 0) {
      return Promise.reject(new DexhilError('USAGE', `an operator must answer "${q.text}" but there is no terminal and no MQTT command topic to answer on`, {
        hint: 'run on a terminal, or with --mqtt and --mqtt-user (commands are taken only on an authenticated connection)',
      }));
    }
    if (this.pending !== undefined) return Promise.reject(new DexhilError('INTERNAL', 'two operator questions at once'));
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new AbortedError('aborted'));
    return new Promise<Answer>((resolve, reject) => {
      const onAbort = (): void => {
        this.pending = undefined;
        for (const p of this.places) p.clear(q, undefined);
        reject(signal?.reason instanceof Error ? signal.reason : new AbortedError('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        q,
        resolve: (a) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(a);
        },
      };
      for (const p of this.places) p.show(q);
    });
  }

  /**
   * An answer from a place. Returns why it was not taken (no question of that kind is waiting,
   * or it names another trial), or undefined when it was.
   */
  answer(a: Answer, about?: { scenario?: string | undefined; trial?: number | undefined }): string | undefined {
    const p = this.pending;
    if (p === undefined) return `no question is waiting (nothing to ${a.kind === 'reset' ? 'confirm a reset for' : 'judge'})`;
    if (p.q.kind !== a.kind) return `the question waiting is a ${p.q.kind}, not a ${a.kind}`;
    if (about?.scenario !== undefined && about.scenario !== p.q.scenario) return `the question is about ${p.q.scenario}, not ${about.scenario}`;
    if (about?.trial !== undefined && about.trial !== p.q.trial) return `the question is about trial ${p.q.trial}, not ${about.trial}`;
    this.pending = undefined;
    for (const place of this.places) place.clear(p.q, a);
    p.resolve(a);
    return undefined;
  }

  close(): void {
    for (const p of this.places) p.leave();
  }
}

/**
 * Questions on the terminal: one line each, answered by a line. Lines typed while no question
 * waits are dropped (a reset is never confirmed ahead of being asked).
 */
export class TerminalPlace implements OperatorPlace {
  readonly name = 'terminal';
  private rl: Interface | undefined;

  constructor(
    private readonly desk: OperatorDesk,
    private readonly input: NodeJS.ReadableStream = process.stdin,
    private readonly output: NodeJS.WritableStream = process.stderr,
  ) {}

  private prompt(q: Question): string {
    return q.kind === 'reset' ? `${q.text} Press Enter when done (or type skip): ` : `${q.text} Verdict? pass, or fail <what is wrong>: `;
  }

  show(q: Question): void {
    if (this.rl === undefined) {
      this.rl = createInterface({ input: this.input, output: this.output, terminal: false });
      this.rl.on('line', (line) => this.onLine(line.trim()));
    }
    this.output.write(`\n${this.prompt(q)}`);
  }

  private onLine(line: string): void {
    const q = this.desk.question;
    if (q === undefined) return;
    const word = line.toLowerCase();
    if (q.kind === 'reset') {
      if (word === '' || word === 'done' || word === 'y' || word === 'yes') this.desk.answer({ kind: 'reset', done: true, by: 'terminal' });
      else if (word === 'skip') this.desk.answer({ kind: 'reset', done: false, by: 'terminal' });
      else this.output.write(`'${line}'? ${this.prompt(q)}`);
      return;
    }
    const m = /^(pass|p|fail|f)\b\s*(.*)$/i.exec(line);
    if (m === null) {
      this.output.write(`'${line}'? ${this.prompt(q)}`);
      return;
    }
    const pass = m[1]!.toLowerCase().startsWith('p');
    this.desk.answer({ kind: 'verdict', pass, label: pass ? '' : operatorLabel(m[2] ?? ''), by: 'terminal' });
  }

  clear(_q: Question, answer: Answer | undefined): void {
    if (answer !== undefined && answer.by !== 'terminal') this.output.write(`\n(answered by ${answer.by})\n`);
  }

  leave(): void {
    this.rl?.close();
    this.rl = undefined;
  }
}

/** A failure label from an operator's words: `operator:<words-joined-by-dashes>`, or `operator-fail`. */
export function operatorLabel(words: string): string {
  const slug = words.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return slug === '' ? 'operator-fail' : `operator:${slug}`;
}
