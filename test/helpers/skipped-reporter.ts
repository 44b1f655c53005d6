/**
 * Lists, after the summary, the tests this host skipped and why: a test that needs root, a tool of the
 * toolbox, Chromium or bubblewrap says so in its name (test/helpers/root.ts, exec-toolbox.test.ts,
 * dashboard/test/helpers/browser.ts), and the default reporter shows no skipped test of a passing file.
 * A skipped suite whose name gives the reason is one line.
 */
import type { Reporter, TestModule, TestSuite, Vitest } from 'vitest/node';

/** How the names of tests skipped on purpose say why. */
const REASON = /\(needs root: |SKIPPED/;

export default class SkippedReporter implements Reporter {
  private ctx: Vitest | undefined;

  onInit(ctx: Vitest): void {
    this.ctx = ctx;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    const visit = (file: string, parent: TestModule | TestSuite) => {
      for (const child of parent.children) {
        if (child.type === 'suite') {
          if (child.state() === 'skipped' && REASON.test(child.name)) {
            const n = [...child.children.allTests()].length;
            lines.push(`${file} > ${child.fullName} (${n} test${n === 1 ? '' : 's'})`);
          } else visit(file, child);
        } else if (child.result().state === 'skipped' && REASON.test(child.fullName)) {
          lines.push(`${file} > ${child.fullName}`);
        }
      }
    };
    for (const m of testModules) visit(m.relativeModuleId, m);
    if (lines.length === 0) return;
    const log = (s: string) => (this.ctx ? this.ctx.logger.log(s) : console.log(s));
    log(`\nSkipped on this host, each with the reason in its name (${lines.length}):`);
    for (const l of lines) log(`  ↓ ${l}`);
  }
}
