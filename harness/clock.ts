/**
 * Time is injected: everything that waits or timestamps goes through a Clock.
 *
 * - RealClock: wall time, for rigs and pseudo-terminal tests.
 * - VirtualClock: discrete-event time for the in-process simulated rig. Time only moves when
 *   every in-process task is waiting on a clock timer, then it jumps to the next due timer, so a
 *   night of trials runs in seconds and the same seed always gives the same sequence of events.
 *
 * This module is the only place that may call `setTimeout`, `setImmediate` or read wall time.
 */
import { objects } from '../drivers/arrays.ts';
import { AbortedError } from './errors.ts';

/**
 * Wall-clock milliseconds (fractional, sub-microsecond resolution) for measuring how long
 * in-process work takes (e.g. the safety reaction time) whatever the run's clock: a virtual clock
 * does not move while code runs. A plain number: the drivers stamp every line and frame with it.
 */
export function monotonicMs(): number {
  return performance.now();
}

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  readonly kind: 'real' | 'virtual';
  /** Monotonic time since the clock started, in nanoseconds. */
  nowNs(): bigint;
  /** Monotonic time since the clock started, in milliseconds (fractional). */
  nowMs(): number;
  /** Wall-clock time (epoch ms) for report columns that say when something happened. */
  wallMs(): number;
  /** Runs `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  /** Runs `fn` every `periodMs`, first after one period, drift-free. */
  setInterval(periodMs: number, fn: () => void): TimerHandle;
  /** Resolves after `delayMs`; rejects with the signal's reason (or AbortedError) when aborted. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
  /**
   * Waits for something outside the rig's world (an operator, a fleet coordinator). A virtual
   * clock stands still meanwhile: the simulated world is suspended rather than running on
   * unobserved at full speed; a real clock just waits.
   */
  waitOutside<T>(p: Promise<T>): Promise<T>;
  /** Stops the clock: no timer fires after this. Safe to call twice. */
  close(): void;
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new AbortedError(String(reason));
}

/**
 * The sleeps waiting on each abort signal. One 'abort' listener per signal wakes them all: adding
 * and removing an EventTarget listener costs microseconds, and a moving arm, a scenario's checks
 * and every stage sleep on their signal many times a simulated second (2% of a run went there).
 */
const sleepersOf = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `wake` when `signal` aborts (after the sleeps registered before it); returns the unregister function. */
function onAbortWake(signal: AbortSignal, wake: () => void): () => void {
  let sleepers = sleepersOf.get(signal);
  if (sleepers === undefined) {
    const all = new Set<() => void>();
    sleepers = all;
    sleepersOf.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        for (const w of all) w();
        all.clear();
      },
      { once: true },
    );
  }
  const set = sleepers;
  set.add(wake);
  return () => {
    set.delete(wake);
  };
}

function sleepWith(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    let unregister: (() => void) | undefined;
    const timer = clock.setTimer(delayMs, () => {
      unregister?.();
      resolve();
    });
    if (signal !== undefined) {
      unregister = onAbortWake(signal, () => {
        timer.cancel();
        reject(abortReason(signal));
      });
    }
  });
}

export class RealClock implements Clock {
  readonly kind = 'real' as const;
  private readonly startNs = process.hrtime.bigint();
  private readonly live = new Set<NodeJS.Timeout>();
  private closed = false;

  nowNs(): bigint {
    return process.hrtime.bigint() - this.startNs;
  }
  nowMs(): number {
    return Number(this.nowNs()) / 1e6;
  }
  wallMs(): number {
    return Date.now();
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (this.closed) return { cancel: () => undefined };
    const t = setTimeout(() => {
      this.live.delete(t);
      fn();
    }, Math.max(0, delayMs));
    this.live.add(t);
    return {
      cancel: () => {
        clearTimeout(t);
        this.live.delete(t);
      },
    };
  }
  setInterval(periodMs: number, fn: () => void): TimerHandle {
    let next = this.nowMs() + periodMs;
    let handle: TimerHandle;
    let cancelled = false;
    const tick = (): void => {
      if (cancelled) return;
      next += periodMs;
      handle = this.setTimer(next - this.nowMs(), tick);
      fn();
    };
    handle = this.setTimer(periodMs, tick);
    return {
      cancel: () => {
        cancelled = true;
        handle.cancel();
      },
    };
  }
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, delayMs, signal);
  }
  waitOutside<T>(p: Promise<T>): Promise<T> {
    return p;
  }
  close(): void {
    this.closed = true;
    for (const t of this.live) clearTimeout(t);
    this.live.clear();
  }
}

/** One pending virtual timer; it is also the handle given to the caller. */
class VirtualTimer implements TimerHandle {
  cancelled = false;
  constructor(
    /** Due time in integer nanoseconds (a double holds them exactly for 104 days). */
    readonly dueNs: number,
    readonly order: number,
    readonly fn: () => void,
  ) {}
  cancel(): void {
    this.cancelled = true;
  }
}

/** A binary min-heap ordered by due time, then by scheduling order (deterministic ties). */
class TimerHeap {
  private readonly items = objects<VirtualTimer>();
  peek(): VirtualTimer | undefined {
    return this.items[0];
  }
  push(t: VirtualTimer): void {
    const a = this.items;
    let i = a.length;
    a.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!before(t, parent)) break;
      a[i] = parent;
      i = p;
    }
    a[i] = t;
  }
  pop(): VirtualTimer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const m = r < a.length && before(a[r]!, a[l]!) ? r : l;
        if (!before(a[m]!, last)) break;
        a[i] = a[m]!;
        i = m;
      }
      a[i] = last;
    }
    return top;
  }
}

function before(x: VirtualTimer, y: VirtualTimer): boolean {
  return x.dueNs < y.dueNs || (x.dueNs === y.dueNs && x.order < y.order);
}

/** Wall milliseconds the virtual pump runs before it lets the event loop (I/O) have a turn. */
const PUMP_SLICE_MS = 5;

/**
 * Runs every queued nextTick and promise job now, as Node does after each callback of its own.
 * Node exposes that step as `process._tickCallback` (DEP0134, a documentation-only deprecation:
 * it warns only under --pending-deprecation); where it is missing (undefined here) the pump falls
 * back to a turn of the event loop per instant (slower, same order of events).
 */
const drainInPlace: (() => void) | undefined = (() => {
  const tick = (process as unknown as { _tickCallback?: unknown })._tickCallback;
  return typeof tick === 'function' ? (tick as () => void).bind(process) : undefined;
})();

const CANCELLED: TimerHandle = { cancel: () => undefined };

export interface VirtualClockOptions {
  /** Wall-clock epoch (ms) that virtual time 0 maps to, for report timestamps. */
  epochMs?: number;
}

export class VirtualClock implements Clock {
  readonly kind = 'virtual' as const;
  /** Current virtual time, integer nanoseconds. */
  private now = 0;
  private order = 0;
  private readonly heap = new TimerHeap();
  private pumping = false;
  private closed = false;
  /** Outside waits in progress: time stands still while any is. */
  private held = 0;
  private readonly epochMs: number;

  constructor(options: VirtualClockOptions = {}) {
    this.epochMs = options.epochMs ?? Date.now();
    // `closed` first changes when the rig closes. V8 compiles a field that has not changed since
    // its object was set up as a constant, and that first change would throw away every optimised
    // function that read it (and the functions they were inlined into) at the end of the first
    // trial block, to be compiled again: written twice here, it is an ordinary field from the start
    // (README, "Speed").
    this.closed = true;
    this.closed = false;
    // Likewise `now`: V8 holds whole nanoseconds as a small integer until they outgrow that range
    // (about 2 s of virtual time), then as a double, and replaces the clock's hidden class then,
    // in the middle of the first block.
    this.now = 0.5;
    this.now = 0;
  }

  nowNs(): bigint {
    return BigInt(this.now);
  }
  nowMs(): number {
    return this.now / 1e6;
  }
  wallMs(): number {
    return this.epochMs + Math.floor(this.now / 1e6);
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (this.closed) return CANCELLED;
    const timer = new VirtualTimer(this.now + Math.max(0, Math.round(delayMs * 1e6)), this.order++, fn);
    this.heap.push(timer);
    this.pump();
    return timer;
  }
  setInterval(periodMs: number, fn: () => void): TimerHandle {
    const periodNs = Math.max(1, Math.round(periodMs * 1e6));
    let due = this.now + periodNs;
    let current: VirtualTimer | undefined;
    let cancelled = false;
    const schedule = (): void => {
      if (this.closed || cancelled) return;
      current = new VirtualTimer(due, this.order++, tick);
      this.heap.push(current);
      this.pump();
    };
    const tick = (): void => {
      due += periodNs;
      schedule();
      fn();
    };
    schedule();
    return {
      cancel: () => {
        cancelled = true;
        if (current) current.cancelled = true;
      },
    };
  }
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, delayMs, signal);
  }
  async waitOutside<T>(p: Promise<T>): Promise<T> {
    this.held++;
    try {
      return await p;
    } finally {
      this.held--;
      this.pump();
    }
  }
  close(): void {
    this.closed = true;
  }

  /**
   * The pump: while timers are pending, let in-process work settle, then jump to the earliest
   * due time and fire every timer due at that instant. It stops when no timer is pending and
   * restarts when one is scheduled.
   *
   * Settling means running every nextTick and promise job the last instant queued (stream
   * events, awaiting scenario code). Going round the event loop for that costs a system call a
   * turn, so the pump drains those queues in place (`drainInPlace`) and goes round the event
   * loop only every few milliseconds of wall time, to let I/O (reports, MQTT, signals) through.
   */
  private pump(): void {
    if (this.pumping || this.closed || this.held > 0) return;
    this.pumping = true;
    setImmediate(this.slice);
  }

  private readonly slice = (): void => {
    const until = performance.now() + PUMP_SLICE_MS;
    let yielded = false;
    let instants = 0;
    try {
      for (;;) {
        drainInPlace?.();
        if (this.closed || this.held > 0) return;
        let next = this.heap.peek();
        while (next?.cancelled) {
          this.heap.pop();
          next = this.heap.peek();
        }
        if (next === undefined) return;
        this.fireInstant(next);
        // The wall clock is read every 16 instants: reading it costs as much as a light instant.
        if (drainInPlace === undefined || ((++instants & 15) === 0 && performance.now() > until)) {
          yielded = true;
          setImmediate(this.slice);
          return;
        }
      }
    } finally {
      // Stopped (nothing due, held, closed) or a callback threw out of the drain: that is an
      // uncaught error, as with a real timer, and the pump goes on in the next turn so virtual
      // time does not stop for everyone else.
      if (!yielded) {
        this.pumping = false;
        if (!this.closed && this.held === 0 && this.heap.peek() !== undefined) this.pump();
      }
    }
  };

  private fireInstant(first: VirtualTimer): void {
    this.now = first.dueNs;
    let next: VirtualTimer | undefined = first;
    while (next !== undefined && next.dueNs === this.now) {
      this.heap.pop();
      if (!next.cancelled) {
        try {
          next.fn();
        } catch (err) {
          // Same contract as a real timer: an exception in a callback is an uncaught error,
          // but it must not stop virtual time for everyone else.
          process.nextTick(() => {
            throw err;
          });
        }
      }
      next = this.heap.peek();
    }
  }
}
