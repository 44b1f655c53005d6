#!/usr/bin/env node
/**
 * The PostgreSQL pass of `npm test`: the API test suites (server end-to-end and in-process route tests,
 * event log group commit, webhook outbox and worker, SDK, CLI, MCP) again — every file of them that
 * starts a server or creates a test database — with every test server on its own fresh PostgreSQL
 * database instead of SQLite (TROVE_TEST_PG=1; see test/helpers/server.ts).
 *
 * PostgreSQL is the local server at TROVE_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres). When it cannot be reached the
 * pass is skipped with the reason, unless TROVE_REQUIRE_PG=1 (CI), which makes
 * that a failure. Databases left behind by an interrupted run are dropped.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../packages/server/package.json', import.meta.url));
const pg = require('pg');

const adminUrl = process.env.TROVE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const required = process.env.TROVE_REQUIRE_PG === '1';
/** The route tests live beside their feature (test/<feature>/routes*.test.ts), plus the cross-route ones. */
const ROUTE_TEST = /^(routes.*|auth-matrix|rate-limit|protocol-doc)\.test\.ts$/;
const SUITES = [
  'packages/server/test/e2e',
  'packages/server/test',
  'packages/server/test/events',
  'packages/server/test/webhooks',
  'packages/sdk/test',
  'packages/cli/test',
  'packages/mcp/test',
];

async function withAdmin(fn) {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Whether the process `pid` exists (EPERM: it does, another user's). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Test databases (`trove_t_<run pid>_<random>`, test/helpers/server.ts) of runs that were killed before their
 * afterAll hooks ran, and this run's own at its end; a concurrent run's (another checkout, another user) stay.
 */
async function dropLeftovers() {
  await withAdmin(async (c) => {
    const { rows } = await c.query("select datname from pg_database where datname like 'trove\\_t\\_%'");
    for (const { datname } of rows) {
      const m = /^trove_t_([0-9]+)_[0-9a-f]+$/.exec(datname);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid !== process.pid && alive(pid)) continue;
      await c.query(`drop database if exists ${datname} with (force)`);
    }
  });
}

try {
  await withAdmin((c) => c.query('select 1'));
} catch (err) {
  const msg = `PostgreSQL pass: ${adminUrl} is not reachable (${err.message})`;
  if (required) {
    console.error(`error: ${msg}; TROVE_REQUIRE_PG=1 makes this a failure`);
    process.exit(1);
  }
  console.log(`${msg}; skipped. Start the local PostgreSQL to run the API suites against it.`);
  process.exit(0);
}

/** Test files of the suites that reach a database: they start a server or create a test database. */
function databaseTests() {
  const files = [];
  const walk = (dir, onlyRoutes) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, onlyRoutes);
      else if (
        e.name.endsWith('.test.ts') &&
        (!onlyRoutes || ROUTE_TEST.test(e.name)) &&
        /\b(startServer|startTestApp|useServer|useLoggedInCli|createTestDatabase)\b/.test(readFileSync(p, 'utf8'))
      ) {
        files.push(p);
      }
    }
  };
  // packages/server/test itself: only its route tests (the other folders are unit and sandbox tests).
  for (const suite of SUITES) walk(suite, suite === 'packages/server/test');
  return [...new Set(files)].sort();
}

await dropLeftovers();
const files = databaseTests();
console.log(`\nPostgreSQL pass: ${files.length} test files of ${SUITES.join(' ')} against ${adminUrl}\n`);
const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...files, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TROVE_TEST_PG: '1', TROVE_TEST_PG_RUN: String(process.pid) },
});
await dropLeftovers().catch(() => {});
process.exit(run.status ?? 1);
