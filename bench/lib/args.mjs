/**
 * Command-line flags shared by every bench script: `--quick`, `--name value`,
 * `--name=value`. Unknown flags are ignored so run.mjs can pass the same
 * argument list to every script.
 */
export function parseArgs(argv = process.argv.slice(2)) {
  const values = new Map();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq !== -1) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) values.set(a.slice(2), argv[++i]);
    else values.set(a.slice(2), true);
  }
  return {
    has: (name) => values.has(name) && values.get(name) !== 'false',
    str: (name, def) => (typeof values.get(name) === 'string' ? values.get(name) : def),
    num: (name, def) => {
      const v = values.get(name);
      if (typeof v !== 'string') return def;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`--${name} needs a number, got "${v}"`);
      return n;
    },
  };
}
