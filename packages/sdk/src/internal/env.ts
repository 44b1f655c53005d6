/**
 * Environment lookup that works where `process` does not exist (edge runtimes,
 * browsers) and where reading it throws (Deno without --allow-env).
 */
export function readEnv(name: string): string | undefined {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env?: { get(name: string): string | undefined } };
  };
  try {
    const fromProcess = g.process?.env?.[name];
    if (fromProcess !== undefined) return emptyToUndefined(fromProcess);
    return emptyToUndefined(g.Deno?.env?.get(name));
  } catch {
    return undefined;
  }
}

function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}
