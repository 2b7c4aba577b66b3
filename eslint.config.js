// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const NO_APPS = { group: ['**/apps/**'], message: 'The platform never imports an app.' };
// Request types come from the route's schemas (the TypeBox type provider), never from a cast.
const NO_REQUEST_CASTS = {
  selector:
    ':matches(TSAsExpression, TSTypeAssertion) > MemberExpression.expression[object.name=/^(request|req)$/][property.name=/^(body|params|query)$/]',
  message:
    'Type the route with the TypeBox provider (`app.withTypeProvider<TypeBoxTypeProvider>()`) and let its schema type `request.body`/`params`/`query`: no cast.',
};

export default tseslint.config(
  // `gen/`: code generated from proto/ by buf (checked in, type-checked, not hand-edited).
  { ignores: ['node_modules/', '**/dist/', '.data/', 'coverage/', 'src/**/gen/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['test', 'describe', 'it', 'suite'], package: 'node:test' },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      // Fastify handlers and hooks are async by contract (a throw becomes the error response).
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/ban-ts-comment': [
        'error',
        { 'ts-expect-error': 'allow-with-description' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'Read configuration through src/platform/config only.',
        },
        NO_REQUEST_CASTS,
      ],
    },
  },
  {
    // Scripts and tests pass env to child processes.
    files: ['scripts/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // The config area is the one place that reads the environment (request casts stay forbidden).
    files: ['src/platform/config/**'],
    rules: { 'no-restricted-syntax': ['error', NO_REQUEST_CASTS] },
  },
  {
    files: ['src/platform/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [NO_APPS] }],
    },
  },
  // Between platform areas too: `src/platform/<a>/**` reaches `src/platform/<b>/` only through
  // `<b>/index.ts`. Import paths are relative, so the `../` that leave the area depend on the depth.
  ...[0, 1, 2, 3].map((depth) => ({
    files: [`src/platform/*/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NO_APPS,
            {
              regex: `^(\\.\\./){${String(depth + 1)}}[^./][^/]*/(?!index\\.ts$)[^/]+`,
              message: 'Import another platform area through its index.ts only.',
            },
          ],
        },
      ],
    },
  })),
  // An app reaches the platform through an area's index.ts only, and never another app. Import
  // paths are relative: from a file `depth` folders inside its app, `depth + 1` `../` leave the app
  // (into another app), `depth + 2` reach `src/` (only `platform/` is allowed there).
  ...[0, 1, 2, 3].map((depth) => ({
    files: [`src/apps/*/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '/platform/[^/]+/(?!index\\.ts$)[^/]+',
              message: 'Import a platform area through its index.ts only.',
            },
            {
              regex: `^(\\.\\./){${depth + 1}}(?!\\.\\./)[a-z0-9-]+/`,
              message: 'An app never imports another app.',
            },
            {
              regex: `^(\\.\\./){${depth + 2}}(?!platform/)|^(\\.\\./){${depth + 3}}`,
              message: 'An app imports only its own files and the platform.',
            },
          ],
        },
      ],
    },
  })),
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
