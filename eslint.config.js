import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Forbids a layer from importing the packages (and relative paths) above or beside it. */
function layer(files, names, paths) {
  return [
    {
      files,
      rules: {
        'no-restricted-imports': [
          'error',
          {
            paths: names.map((name) => ({
              name,
              message: 'dependencies point one way (see docs/architecture.md)',
            })),
            patterns: [{ group: paths, message: 'dependencies point one way (see docs/architecture.md)' }],
          },
        ],
      },
    },
  ];
}

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'apps/server/src/generated/**',
      'data/**',
      'test-results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: [
          './tsconfig.test.json',
          './libs/*/tsconfig.json',
          './driver/tsconfig.json',
          './apps/*/tsconfig.json',
        ],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // NestJS declares plain option bags as classes (NestApplicationContextOptions, …).
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  // Dependencies point one way: apps -> libs/driver, never back; the server never imports the driver.
  ...layer(
    ['libs/**/*.ts'],
    ['@upc/server', '@upc/agent', '@upc/console', '@upc/driver'],
    ['**/apps/**', '**/driver/**'],
  ),
  ...layer(['driver/**/*.ts'], ['@upc/server', '@upc/agent', '@upc/console'], ['**/apps/**']),
  ...layer(
    ['apps/server/**/*.ts'],
    ['@upc/driver', '@upc/agent', '@upc/console'],
    ['**/driver/**', '**/agent/**'],
  ),
  ...layer(
    ['apps/console/**/*.ts', 'apps/console/**/*.tsx'],
    ['@upc/server', '@upc/agent', '@upc/driver'],
    ['**/server/**', '**/agent/**'],
  ),
  // Nothing but the driver's privileged module calls libc: it alone loads koffi.
  {
    files: ['**/*.ts', '**/*.js'],
    ignores: ['driver/src/linux/privileged.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "Literal[value='koffi']",
          message: 'only driver/src/linux/privileged.ts calls libc (koffi)',
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
