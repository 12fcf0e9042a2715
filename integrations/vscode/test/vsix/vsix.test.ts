/**
 * The packaged .vsix (made by `vsce package` first): the bundle, manifest, README and LICENSE,
 * and nothing of node_modules, sources or tests.
 */

import * as fs from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";

import { beforeAll, describe, expect, it } from "vitest";
import * as yauzl from "yauzl";

const ROOT = path.resolve(__dirname, "..", "..");
const VSIX = path.resolve(ROOT, process.env.TOKMON_VSIX || "tokmon.vsix");

/** Every entry of the zip with its uncompressed content. */
function readZip(file: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err) {
        reject(err);
        return;
      }
      const out = new Map<string, Buffer>();
      zip.on("error", reject);
      zip.on("end", () => resolve(out));
      zip.on("entry", (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith("/")) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e) {
            reject(e);
            return;
          }
          const chunks: Buffer[] = [];
          stream.on("data", (c: Buffer) => chunks.push(c));
          stream.on("error", reject);
          stream.on("end", () => {
            out.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

describe("the packaged .vsix", () => {
  let entries: Map<string, Buffer>;
  let names: string[];

  beforeAll(async () => {
    expect(fs.existsSync(VSIX), `${VSIX} is missing: run vsce package first`).toBe(true);
    entries = await readZip(VSIX);
    names = [...entries.keys()];
  });

  /** The entry whose name matches case-insensitively (vsce writes readme.md, LICENSE.txt). */
  const find = (re: RegExp): string | undefined => names.find((n) => re.test(n));

  it("holds the bundle, the manifest, the README and the LICENSE", () => {
    expect(names).toContain("extension/dist/extension.js");
    expect(names).toContain("extension/package.json");
    expect(names).toContain("extension.vsixmanifest");
    expect(find(/^extension\/readme\.md$/i), names.join("\n")).toBeDefined();
    expect(find(/^extension\/license(\.txt|\.md)?$/i), names.join("\n")).toBeDefined();
    const readme = entries.get(find(/^extension\/readme\.md$/i)!)!.toString("utf8");
    expect(readme).toContain("# tokmon for VS Code");
    const license = entries.get(find(/^extension\/license(\.txt|\.md)?$/i)!)!.toString("utf8");
    expect(license).toContain("MIT License");
  });

  it("holds no node_modules, sources, tests, source maps or build config", () => {
    const bad = names.filter(
      (n) =>
        /(^|\/)node_modules\//.test(n) ||
        /^extension\/(src|test|scripts|out)\//.test(n) ||
        /\.(ts|mts|map)$/.test(n) ||
        /(tsconfig|eslint\.config|vitest\.config|package-lock)/.test(n) ||
        n.endsWith(".vsix"),
    );
    expect(bad).toEqual([]);
  });

  it("has a manifest that activates on startup and runs the bundle", () => {
    const manifest = JSON.parse(entries.get("extension/package.json")!.toString("utf8")) as {
      main: string;
      activationEvents: string[];
      publisher: string;
      repository: { url: string };
      license: string;
      contributes: { commands: { command: string }[]; configuration: { properties: object } };
    };
    expect(manifest.main).toBe("./dist/extension.js");
    expect(manifest.activationEvents).toEqual(["onStartupFinished"]);
    expect(manifest.publisher).toBeTruthy();
    expect(manifest.repository.url).toMatch(/^https:\/\//);
    expect(manifest.license).toBe("MIT");
    expect(manifest.contributes.commands.map((c) => c.command)).toContain("tokmon.restartServer");
    expect(Object.keys(manifest.contributes.configuration.properties).sort()).toEqual([
      "tokmon.path",
      "tokmon.statusBar.enabled",
      "tokmon.statusBar.format",
      "tokmon.thresholds.critical",
      "tokmon.thresholds.warning",
      "tokmon.tokenLimit",
    ]);
  });

  it("bundles the language client: the only runtime require outside Node is vscode", () => {
    const js = entries.get("extension/dist/extension.js")!.toString("utf8");
    expect(js).toContain("tokmon/usageChanged");
    const required = new Set(
      [...js.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1] ?? ""),
    );
    const foreign = [...required].filter(
      (m) => m !== "vscode" && !m.startsWith("node:") && !builtinModules.includes(m),
    );
    expect(foreign).toEqual([]);
    expect(required.has("vscode")).toBe(true);
  });
});

