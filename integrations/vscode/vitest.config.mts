import { defineConfig } from "vitest/config";

// Four projects: fast unit tests of the vscode-free logic, the real-server integration test,
// and, after `vsce package`, the .vsix content check and the bundle activation test.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          env: { TZ: "UTC" },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "vsix",
          include: ["test/vsix/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "bundle",
          include: ["test/bundle/**/*.test.ts"],
          env: { TZ: "UTC" },
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
