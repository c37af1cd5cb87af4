/**
 * Pseudo-terminal pairs made by `socat`, for device emulators: bytes written to one end come out
 * of the other, and both ends open like a USB serial device. Each end is reached through a
 * symlink whose path we choose, so a rig config can name it before it exists.
 *
 * Give it a real clock: it polls for the links socat creates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../../harness/clock.ts';
import { DexhilError } from '../../harness/errors.ts';

export interface PtyPair {
  /** Link to the end the harness opens (the "USB device" path). */
  readonly hostPath: string;
  /** Link to the end the emulator drives. */
  readonly devicePath: string;
  /** Stops socat and removes the links. Safe to call twice. */
  close(): Promise<void>;
}

function removeStaleLink(p: string): void {
  try {
    if (lstatSync(p).isSymbolicLink()) unlinkSync(p);
    else throw new DexhilError('USAGE', `${p} exists and is not a link made by a previous emulator`, { hint: 'choose another port path in the rig config' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Starts `socat` with a raw, echo-free pty pair linked at `hostPath` and `devicePath`.
 * @throws DexhilError EMULATOR when socat is missing or the links do not appear within 5 s.
 */
export async function createPtyPair(hostPath: string, devicePath: string, clock: Clock): Promise<PtyPair> {
  for (const p of [hostPath, devicePath]) {
    mkdirSync(path.dirname(p), { recursive: true });
    removeStaleLink(p);
  }
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${devicePath}`, `pty,raw,echo=0,link=${hostPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited = false;
  let failure: Error | undefined;
  child.once('error', (err: NodeJS.ErrnoException) => {
    failure = new DexhilError('EMULATOR', err.code === 'ENOENT' ? 'socat is not installed; the emulators need it for pseudo-terminals' : `cannot start socat: ${err.message}`, {
      hint: 'install it (Debian: apt-get install socat)',
    });
  });
  child.once('exit', (code) => {
    exited = true;
    failure ??= new DexhilError('EMULATOR', `socat exited (code ${code}) before the pty links appeared: ${stderr.trim().split('\n').pop() ?? ''}`);
  });
  const deadline = clock.nowMs() + 5000;
  while (!(existsSync(hostPath) && existsSync(devicePath))) {
    if (failure !== undefined) throw failure;
    if (clock.nowMs() > deadline) {
      child.kill();
      throw new DexhilError('EMULATOR', `socat did not create ${hostPath} and ${devicePath} within 5 s`);
    }
    await clock.sleep(10);
  }
  let closing: Promise<void> | undefined;
  return {
    hostPath,
    devicePath,
    close() {
      closing ??= (async () => {
        if (!exited) {
          const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          await gone;
        }
        for (const p of [hostPath, devicePath]) {
          try {
            removeStaleLink(p);
          } catch {
            // already gone or replaced: nothing of ours to remove
          }
        }
      })();
      return closing;
    },
  };
}
