import { defineConfig } from "vitest/config";

// Three projects: fast unit tests of the vscode-free logic, the real-server integration test,
// and the .vsix content check (run after `vsce package`).
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
    ],
  },
});
