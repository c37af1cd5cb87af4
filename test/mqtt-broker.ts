/**
 * A real mosquitto broker for the tests, on a free loopback port, and mosquitto's own command-line
 * clients (a client that is not ours) to watch and to send commands.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './helpers.ts';

export const haveMosquitto = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined && spawnSync('mosquitto_sub', ['--help'], { stdio: 'ignore' }).error === undefined;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Broker {
  port: number;
  url: string;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
  /** Users (with `auth`): name -> password file path. */
  passwordFile(user: string): string;
}

const PASSWORDS: Record<string, string> = { rig: 'rig-secret', operator: 'op-secret' };

/** Starts mosquitto; with `auth`, anonymous clients are refused and an ACL limits who may send commands. */
export async function startBroker(auth = false, port?: number, dir = tempDir('mosquitto')): Promise<Broker> {
  const p = port ?? (await freePort());
  const conf = [`listener ${p} 127.0.0.1`, 'persistence false', 'log_dest stderr', `allow_anonymous ${auth ? 'false' : 'true'}`];
  // mosquitto started as root runs as the user mosquitto, which must read the files made here.
  chmodSync(dir, 0o755);
  if (auth) {
    const pw = path.join(dir, 'passwd');
    writeFileSync(pw, '');
    for (const [u, secret] of Object.entries(PASSWORDS)) {
      const r = spawnSync('mosquitto_passwd', ['-b', pw, u, secret], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`);
      chmodSync(pw, 0o644);
      writeFileSync(path.join(dir, `${u}.password`), `${secret}\n`);
    }
    // The rig's user writes its own tree; the operator reads everything and writes only commands.
    writeFileSync(path.join(dir, 'acl'), ['user rig', 'topic readwrite dexhil/#', '', 'user operator', 'topic read dexhil/#', 'topic write dexhil/+/cmd', ''].join('\n'));
    conf.push(`password_file ${pw}`, `acl_file ${path.join(dir, 'acl')}`);
  }
  const confFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(confFile, conf.join('\n') + '\n');
  const proc = spawn('mosquitto', ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  // Ready when it accepts a TCP connection.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(p, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto did not start on port ${p}: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port: p,
    url: `mqtt://127.0.0.1:${p}`,
    dir,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
    passwordFile: (user) => path.join(dir, `${user}.password`),
  };
}

const authArgs = (b: Broker, user?: string): string[] => (user === undefined ? [] : ['-u', user, '-P', PASSWORDS[user]!]);

/** mosquitto_sub collecting `topic payload` lines until stopped. */
export function watch(b: Broker, topic: string, user?: string): { lines: string[]; messages: (suffix: string) => Record<string, unknown>[]; stop: () => void; ready: Promise<void> } {
  const proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(b.port), '-t', topic, '-v', '-V', 'mqttv5', ...authArgs(b, user)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  return {
    lines,
    messages: (suffix) =>
      lines
        .filter((l) => l.split(' ', 1)[0]!.endsWith(`/${suffix}`))
        .map((l) => JSON.parse(l.slice(l.indexOf(' ') + 1)) as Record<string, unknown>),
    stop: () => proc.kill('SIGTERM'),
    // mosquitto_sub has no "subscribed" signal; a short wait lets its SUBSCRIBE reach the broker.
    ready: new Promise((r) => setTimeout(r, 300)),
  };
}

/** The retained message on `topic`, read by a fresh mosquitto_sub. */
export function retained(b: Broker, topic: string, user?: string): Record<string, unknown> | undefined {
  const r = spawnSync('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(b.port), '-t', topic, '-C', '1', '-W', '2', '--retained-only', ...authArgs(b, user)], { encoding: 'utf8' });
  return r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout.trim()) as Record<string, unknown>);
}

/** mosquitto_pub (without blocking this process); resolves with its exit status and stderr. */
export function publish(b: Broker, topic: string, payload: string, user?: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-t', topic, '-m', payload, '-q', '1', '-V', 'mqttv5', ...authArgs(b, user)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('close', (status) => resolve({ status, stderr }));
  });
}
