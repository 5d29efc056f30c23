#!/usr/bin/env node
// Entry point of the `lagoon` command. Lagoon runs its TypeScript sources directly through tsx,
// so there is no build step between a clone and a running cluster.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command is done. A Kafka client may still hold timers (kafkajs re-schedules a crashed consumer
// even after disconnect when the brokers are gone), which must not keep a finished process alive.
// Unref'd: if nothing else is pending the process exits at once, with stdout flushed.
setTimeout(() => process.exit(code), 200).unref();
