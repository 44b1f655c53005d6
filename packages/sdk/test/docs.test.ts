/**
 * The documentation promises: TSDoc on every public symbol (each export of the built
 * entry point dist/index.d.ts and each public member of the exported classes and
 * interfaces carries a doc comment), and a README example for every call.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as sdk from '../src/index.js';

const entry = fileURLToPath(new URL('../dist/index.d.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));

function undocumented(): string[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: [],
  });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const doc = (s: ts.Symbol) => ts.displayPartsToString(s.getDocumentationComment(checker)).trim();
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const name = exported.getName();
    const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!doc(sym) && !doc(exported)) missing.push(name);
    const decl = sym.declarations?.[0];
    if (!decl || !(ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl))) continue;
    for (const member of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))) {
      const d = member.declarations?.[0];
      // Inherited members of platform types (Error, Promise) are documented where they come from.
      if (!d || !d.getSourceFile().fileName.startsWith(packageDir)) continue;
      // `#private` fields are not part of the API.
      if (member.getName().startsWith('#')) continue;
      if (ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      if (member.getJsDocTags(checker).some((t) => t.name === 'internal')) continue;
      if (!doc(member)) missing.push(`${name}.${member.getName()}`);
    }
  }
  return missing;
}

describe('TSDoc', () => {
  it('documents every exported symbol and every public member', () => {
    expect(existsSync(entry), 'build first: npx tsc -b').toBe(true);
    expect(undocumented()).toEqual([]);
  });
});

describe('README', () => {
  // @internal plumbing and TypeScript-private helpers (which stay on the prototype at run time).
  const INTERNAL = new Set([
    'constructor',
    'request',
    'requestJson',
    'knownWorkspaceId',
    'namespaceHeader',
    'fetchPage',
    'buildUrl',
    'buildInit',
    'newestCreatedAt',
    'collectNewer',
    'base',
  ]);
  const CLASSES = {
    BaseClient: sdk.BaseClient,
    TroveClient: sdk.TroveClient,
    TroveAdminClient: sdk.TroveAdminClient,
    Snapshots: sdk.Snapshots,
    Processes: sdk.Processes,
    Events: sdk.Events,
    Keys: sdk.Keys,
    Webhooks: sdk.Webhooks,
    Namespaces: sdk.Namespaces,
    EventPage: sdk.EventPage,
    WorkspaceSummary: sdk.WorkspaceSummary,
  };
  const FUNCTIONS = [
    'verifyWebhook',
    'verifyWebhookAsync',
    'generateTestHeader',
    'generateTestHeaderAsync',
    'createWorkspace',
  ];

  it('shows a call of every public method and function in a code example', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const code = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
    const missing: string[] = [];
    for (const [name, cls] of Object.entries(CLASSES)) {
      for (const method of Object.getOwnPropertyNames(cls.prototype)) {
        if (INTERNAL.has(method)) continue;
        if (!code.includes(`.${method}(`)) missing.push(`${name}.${method}`);
      }
    }
    for (const fn of FUNCTIONS) if (!new RegExp(`\\b${fn}\\(`).test(code)) missing.push(fn);
    expect(missing).toEqual([]);
  });
});
