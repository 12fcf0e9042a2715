/**
 * What the integration tests share: where the corpora and the Python interpreter are, and the
 * environment of a `tokmon serve` under test.
 */

import * as fs from "node:fs";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "..", "..", "..", "..");

/** The real Claude corpus (TOKMON_TEST_CORPUS); read-only: tests copy it. */
export const CORPUS = process.env.TOKMON_TEST_CORPUS
  ? path.resolve(process.env.TOKMON_TEST_CORPUS)
  : path.join(REPO, "..", "shared", "corpus", "claude-real");

/** The other agents' corpus (TOKMON_AGENTS_CORPUS); read-only: tests copy it. */
export const AGENTS = process.env.TOKMON_AGENTS_CORPUS
  ? path.resolve(process.env.TOKMON_AGENTS_CORPUS)
  : path.join(REPO, "..", "shared", "corpus", "agents");

/**
 * Whether the corpora `paths` exist; when one is missing, the tests that need them skip
 * (visibly), except where the corpora are required (.ci/steps/40-vscode.sh sets
 * TOKMON_CORPORA_REQUIRED=1 when the outer run has CI=true, as pytest's conftest does), where
 * a missing corpus is an error.
 */
export function corporaPresent(...paths: string[]): boolean {
  const missing = paths.filter((p) => !fs.existsSync(p));
  if (missing.length === 0) {
    return true;
  }
  if (process.env.TOKMON_CORPORA_REQUIRED === "1") {
    throw new Error(`corpora missing: ${missing.join(" / ")}`);
  }
  console.warn(`skipping: shared corpus not found at ${missing.join(" / ")} (clone with ../shared beside it)`);
  return false;
}

/** The interpreter that runs `-m tokmon serve` (TOKMON_PYTHON). */
export const PYTHON = process.env.TOKMON_PYTHON || "python3";

/**
 * The server's environment: this process's without any TOKMON_* or CLAUDE_* variable, with
 * `home` as HOME (and USERPROFILE), UTC, unbuffered output, and `vars` (TOKMON_HOME, the
 * agents' data dirs).
 */
export function tokmonEnv(home: string, vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("TOKMON_") && !k.startsWith("CLAUDE_")) {
      env[k] = v;
    }
  }
  return Object.assign(env, vars, { HOME: home, USERPROFILE: home, TZ: "UTC", PYTHONUNBUFFERED: "1" });
}
