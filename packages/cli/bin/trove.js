#!/usr/bin/env node
// The `trove` command. A committed file (not dist/) so that npm links the binary at install time,
// before the first build has produced dist/.
import { runCli } from '../dist/bin.js';

await runCli();
