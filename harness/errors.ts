/**
 * One error hierarchy for the whole harness. Every error carries a stable `code`
 * (for tests and exit-code mapping), a human message saying what happened and where,
 * and, where we know it, a `hint` saying what to do about it.
 */
import type { FaultDomain } from './events.ts';

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'USAGE'
  | 'SCENARIO_UNKNOWN'
  | 'DEVICE_TIMEOUT'
  | 'DEVICE_REFUSED'
  | 'DEVICE_STATE'
  | 'PROTOCOL'
  | 'PROTOCOL_VERSION'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'RESET_FAILED'
  | 'PORT_NOT_FOUND'
  | 'PORT_OPEN'
  | 'EMULATOR'
  | 'PREFLIGHT'
  | 'SAFETY'
  | 'RIG_LOST'
  | 'INTERNAL';

export class DexhilError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DexhilError';
    this.code = code;
    this.hint = options.hint;
  }

  /** The message with its hint, on one line, as printed to a user. */
  describe(): string {
    return this.hint === undefined ? this.message : `${this.message} (hint: ${this.hint})`;
  }
}

/** Thrown inside a stage when its AbortSignal fired (stage/trial timeout, Ctrl-C). */
export class AbortedError extends DexhilError {
  constructor(reason: string) {
    super('ABORTED', `aborted: ${reason}`);
    this.name = 'AbortedError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    throw reason instanceof Error ? reason : new AbortedError(String(reason));
  }
}

/** The failure label of an error: its own label (a safety stop's), else its code in kebab case. */
export function errorLabel(err: unknown): string {
  const own = (err as { label?: unknown } | undefined)?.label;
  if (typeof own === 'string') return own;
  if (err instanceof DexhilError) return err.code.toLowerCase().replaceAll('_', '-');
  return 'harness-error';
}

/** Whose fault an error is (see FaultDomain). */
export function domainOf(err: unknown): FaultDomain {
  const trip = (err as { trip?: { domain?: FaultDomain } } | undefined)?.trip;
  if (trip?.domain !== undefined) return trip.domain;
  if (!(err instanceof DexhilError)) return 'harness';
  switch (err.code) {
    case 'DEVICE_REFUSED':
    case 'PROTOCOL':
    case 'PROTOCOL_VERSION':
      return 'firmware';
    case 'DEVICE_TIMEOUT':
    case 'DEVICE_STATE':
    case 'PORT_NOT_FOUND':
    case 'PORT_OPEN':
    case 'RESET_FAILED':
    case 'SAFETY':
      return 'rig';
    default:
      return 'harness';
  }
}
