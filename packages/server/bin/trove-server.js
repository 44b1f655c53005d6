#!/usr/bin/env node
// The `trove-server` command. A committed file (not dist/) so that npm links the binary at install
// time, before the first build has produced dist/.
import '../dist/bin.js';
