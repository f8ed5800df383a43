import { defineConfig } from 'vitest/config';

// Three projects: unit (no network, fakes allowed), integration (real processes on loopback),
// e2e (the real local cluster, the plugin run from the laptop network namespace).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // One cluster, one laptop: e2e files run one after another.
          fileParallelism: false,
        },
      },
    ],
  },
});
