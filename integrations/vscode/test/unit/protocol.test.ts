import { describe, expect, it } from "vitest";

import * as fs from "node:fs";
import * as path from "node:path";

import {
  compareVersions,
  Methods,
  Notifications,
  ServerCommands,
  TokmonApi,
  versionProblem,
} from "../../src/protocol";

describe("versions", () => {
  it("compares numerically", () => {
    expect(compareVersions("0.10.0", "0.9.9")).toBe(1);
    expect(compareVersions("0.1.0", "0.1.0")).toBe(0);
    expect(compareVersions("v1.2", "1.2.0")).toBe(0);
    expect(compareVersions("0.0.9", "0.1.0")).toBe(-1);
  });

  it("rejects an old protocol or a missing answer, accepts a current server", () => {
    expect(versionProblem({ version: "0.1.0", protocol: 1 })).toBeNull();
    expect(versionProblem({ version: "0.2.0", protocol: 2 })).toBeNull();
    expect(versionProblem({ version: "0.1.0", protocol: 0 })).toContain("protocol 0");
    expect(versionProblem({ version: "0.0.5", protocol: 1 })).toContain("older than 0.1.0");
    expect(versionProblem(null)).toContain("did not report");
  });
});

describe("TokmonApi", () => {
  it("sends the documented method names and params", async () => {
    const calls: [string, unknown][] = [];
    const api = new TokmonApi({
      sendRequest<R>(method: string, params?: unknown): Promise<R> {
        calls.push([method, params]);
        return Promise.resolve({} as R);
      },
    });
    await api.version();
    await api.sessions({ tag: "x" });
    await api.session("abc");
    await api.setSessionMetadata({ sessionId: "abc", addTags: ["t"] });
    await api.hello();
    expect(calls).toEqual([
      ["tokmon/version", {}],
      ["tokmon/sessions", { tag: "x" }],
      ["tokmon/session", { sessionId: "abc" }],
      ["tokmon/setSessionMetadata", { sessionId: "abc", addTags: ["t"] }],
      ["tokmon/hello", { capabilities: { activeDeltas: true } }],
    ]);
    expect(Methods.summary).toBe("tokmon/summary");
    expect(Notifications.usageChanged).toBe("tokmon/usageChanged");
  });
});

describe("command ids", () => {
  it("never reuse a server command id (the language client registers those itself)", () => {
    const manifest = JSON.parse(
      fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"),
    ) as { contributes: { commands: { command: string }[] } };
    const ours = manifest.contributes.commands.map((c) => c.command);
    expect(ours).toContain("tokmon.session.tag");
    for (const id of Object.values(ServerCommands)) {
      expect(ours).not.toContain(id);
    }
  });
});
