/**
 * Connecting to an MQTT broker: the settings a user gives (URL, user, password file, TLS files,
 * topic prefix), the mqtt.js client options made from them, and mqtt.js itself, loaded on first use.
 * Shared by a rig's link (mqtt.ts) and the fleet coordinator (fleet.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IClientOptions } from 'mqtt';
import { DexhilError } from './errors.ts';

/** The first wait before reconnecting to a broker (it then doubles, harness/mqtt.ts). */
export const BACKOFF_START_MS = 500;

/** How to reach a broker, as the user gives it (the --mqtt options; telemetryHz and queueLimit are the rig link's). */
export interface MqttSettings {
  url: string;
  user?: string | undefined;
  passwordFile?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  prefix?: string | undefined;
  telemetryHz?: number | undefined;
  queueLimit?: number | undefined;
}

/** Reads a file an option names, or says which option and file could not be read. */
function readOptionFile(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new DexhilError('USAGE', `${option} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

const require = createRequire(import.meta.url);
let mqttModule: typeof import('mqtt') | undefined;
/**
 * mqtt.js, loaded the first time a connection is made: most runs use no broker, and loading it
 * costs every start about 0.15 s.
 */
export function mqttJs(): typeof import('mqtt') {
  mqttModule ??= require('mqtt') as typeof import('mqtt');
  return mqttModule;
}

/** The mqtt.js options for `settings`. @throws DexhilError USAGE on a bad URL or an unreadable file. */
export function clientOptions(settings: MqttSettings, rigId: string, will: { topic: string; payload: string }): IClientOptions {
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    throw new DexhilError('USAGE', `--mqtt ${settings.url}: not a URL`, { hint: 'e.g. mqtt://127.0.0.1:1883 or mqtts://broker.lab:8883' });
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new DexhilError('USAGE', `--mqtt ${settings.url}: unknown scheme ${url.protocol}`, { hint: 'use mqtt://, mqtts://, ws:// or wss://' });
  }
  const options: IClientOptions = {
    clientId: `dexhil-${rigId}-${process.pid}`,
    protocolVersion: 5,
    clean: true,
    connectTimeout: 5000,
    reconnectPeriod: BACKOFF_START_MS,
    queueQoSZero: false,
    // A refusal (bad password, MQTT 5 unknown) is retried with backoff too; the run goes on.
    reconnectOnConnackError: true,
    will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true },
  };
  if (settings.user !== undefined) options.username = settings.user;
  if (settings.passwordFile !== undefined) options.password = readOptionFile('--mqtt-password-file', settings.passwordFile).toString('utf8').replace(/\r?\n$/, '');
  if (settings.ca !== undefined) options.ca = readOptionFile('--mqtt-ca', settings.ca);
  if (settings.cert !== undefined) options.cert = readOptionFile('--mqtt-cert', settings.cert);
  if (settings.key !== undefined) options.key = readOptionFile('--mqtt-key', settings.key);
  return options;
}

/** The broker URL without any user name or password in it (for manifests and messages). */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
