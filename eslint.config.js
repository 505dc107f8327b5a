// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.fuss/**', 'bench/**/out/**', 'services/aggregator/src/generated/**', 'client-sdk/src/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The maths stays pure: no file system, no runtime, no clock in these folders (STYLE 2).
    files: ['services/core/src/{math,cluster,metrics,partition,strategies}/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['node:*', 'onnxruntime-node', 'sharp', 'fs', 'path'] }],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Take a seeded Rng.' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
