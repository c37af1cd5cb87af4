#!/usr/bin/env node
// Entry point: runs the CLI from its bundle (bin/bundle.js), built from the TypeScript sources when
// they changed; where the bundle cannot be built or written, from the sources through tsx.
import { bundle } from './bundle.js';

let main;
if (process.env.DEXHIL_FROM_SOURCES !== '1') {
  try {
    ({ main } = await import((await bundle()).cli.href));
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    process.stderr.write(`dexhil: running from the TypeScript sources (slower to start): the bundled code could not be built or loaded: ${why}\n`);
  }
}
if (main === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../harness/cli.ts'));
}
process.exitCode = await main(process.argv.slice(2));
// The work is done and the rig closed: a Ctrl-C that arrives now must not turn a clean exit into
// a kill (exit code lost), so late signals are ignored while the process drains its output.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
