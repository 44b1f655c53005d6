// ESLint (flat config): the recommended JavaScript and typescript-eslint rules, plus a few strict ones that
// cost nothing to follow. Type-aware rules are left out: `tsc -b` in strict mode already runs on every build,
// and type-aware linting would double the time of `npm test`'s lint step for little more.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/build/**',
      '**/node_modules/**',
      'bench/results/**',
      '.trove/**',
      'packages/*/coverage/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      eqeqeq: ['error', 'smart'],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-throw-literal': 'error',
      'object-shorthand': ['error', 'properties'],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Control characters in regular expressions are deliberate here: paths, header values and terminal
      // output are checked for them (NUL, C0 controls, ANSI escapes).
      'no-control-regex': 'off',
    },
  },
  {
    // Migrations run against the schema of their own version, not today's: they use Kysely<any>.
    files: ['packages/server/src/db/migrations.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests read JSON bodies whose shape is what they assert, field by field.
    files: ['**/test/**/*.{ts,tsx}', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['packages/dashboard/src/**/*.{ts,tsx}', 'packages/dashboard/test/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: reactHooks.configs.recommended.rules,
  },
);
