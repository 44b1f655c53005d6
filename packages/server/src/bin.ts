#!/usr/bin/env node
// Before anything touches the libuv thread pool: file uploads, downloads and fsyncs all run on it,
// and its default of 4 threads queues them behind each other under concurrent load.
process.env.UV_THREADPOOL_SIZE ??= '16';
import { ConfigError } from './config.js';
import { main } from './main.js';

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
