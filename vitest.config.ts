import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC compiles the tests and the server's sources so that NestJS gets decorator metadata.
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: {
    alias: [
      { find: /^@upc\/(protocol|image|policy)$/, replacement: `${import.meta.dirname}/libs/$1/src/index.ts` },
      { find: /^@upc\/driver$/, replacement: `${import.meta.dirname}/driver/src/index.ts` },
    ],
  },
  test: {
    include: [
      'test/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'libs/*/src/**/*.test.ts',
      'driver/src/**/*.test.ts',
    ],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
