#!/usr/bin/env node
// Entry point: registers the TypeScript loader (tsx) and hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../harness/cli.ts');
process.exitCode = await main(process.argv.slice(2));
// The work is done and the rig closed: a Ctrl-C that arrives now must not turn a clean exit into
// a kill (exit code lost), so late signals are ignored while the process drains its output.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
