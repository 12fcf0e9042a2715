/** Extension entry point: wires the server, the status bar, the sidebar and the commands. */

import * as vscode from "vscode";

import { formatCost, formatRelative, formatTokens, shortId } from "./format";
import type { SessionRow } from "./protocol";
import { ServerManager } from "./server";
import { SessionsProvider } from "./sessionsView";
import { StatusBar } from "./statusBar";
import { collectTags, parseTags, sessionLabel, TREE_QUERY, type TreeNode } from "./treeModel";

let activeServer: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("tokmon", { log: true });
  const server = new ServerManager(log);
  activeServer = server;
  const status = new StatusBar(context.globalState);
  const sessions = new SessionsProvider(server, log);
  const tree = vscode.window.createTreeView("tokmon.sessions", {
    treeDataProvider: sessions,
    showCollapseAll: true,
  });
  context.subscriptions.push(log, server, status, sessions, tree);
  void vscode.commands.executeCommand("setContext", "tokmon.filterActive", false);

  const workspaceFolder = (): string | undefined => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;

  /** Ask once for the summary right after the server starts; afterwards it is pushed. */
  const fetchSummary = async (): Promise<void> => {
    const api = server.api;
    if (!api) {
      return;
    }
    try {
      status.update(await api.summary({ workspaceFolder: workspaceFolder() }));
    } catch (err) {
      log.error(`tokmon/summary failed: ${String(err)}`);
    }
    try {
      status.updateLimits(await api.limits());
    } catch (err) {
      // an older server without tokmon/limits: the tooltip just has no weekly window
      log.warn(`tokmon/limits failed: ${String(err)}`);
    }
  };

  context.subscriptions.push(
    server.onDidChangeState((state) => {
      status.setServerDown(state === "stopped");
      sessions.reload();
      if (state === "running") {
        void fetchSummary();
      }
    }),
    server.onUsageChanged((params) => {
      status.update(params.summary);
      sessions.applyUsage(params);
    }),
    server.onMetadataChanged((change) => sessions.applyMetadata(change)),
    server.onLimitsChanged((limits) => status.updateLimits(limits)),
    server.onAlert((alert) => {
      if (status.showAlert(alert)) {
        log.info(`alert: ${alert.message}`);
      }
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("tokmon.path")) {
        void server.restart();
      } else if (e.affectsConfiguration("tokmon")) {
        status.render();
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      sessions.reload();
      void fetchSummary();
    }),
  );

  /** The session a command acts on: the tree node it was invoked on, else a quick pick. */
  const pickSession = async (node?: TreeNode): Promise<SessionRow | undefined> => {
    if (node && node.kind === "session") {
      return node.row;
    }
    const api = server.api;
    if (!api) {
      void vscode.window.showWarningMessage("The tokmon server is not running.");
      return undefined;
    }
    const { sessions: rows } = await api.sessions({ ...TREE_QUERY });
    const now = Date.now();
    const picked = await vscode.window.showQuickPick(
      rows.map((row) => ({
        label: sessionLabel(row),
        description: `${row.projectName} · ${formatTokens(row.totalTokens)} · ${formatCost(row.totalCost)}`,
        detail: `${shortId(row.sessionId)} · ${formatRelative(row.lastActivity, now)}${row.tags.length ? ` · ${row.tags.map((t) => `#${t}`).join(" ")}` : ""}`,
        row,
      })),
      { placeHolder: "Choose a Claude Code session", matchOnDescription: true, matchOnDetail: true },
    );
    return picked?.row;
  };

  const setMetadata = async (
    row: SessionRow,
    change: { name?: string | null; tags?: string[]; description?: string | null },
  ): Promise<void> => {
    const api = server.api;
    if (!api) {
      void vscode.window.showWarningMessage("The tokmon server is not running.");
      return;
    }
    try {
      const updated = await api.setSessionMetadata({ sessionId: row.sessionId, ...change });
      sessions.updateRow(updated);
    } catch (err) {
      void vscode.window.showErrorMessage(`tokmon: could not update the session: ${String(err)}`);
    }
  };

  context.subscriptions.push(
    vscode.commands.registerCommand("tokmon.restartServer", () => server.restart()),
    vscode.commands.registerCommand("tokmon.showLog", () => log.show()),
    vscode.commands.registerCommand("tokmon.openSidebar", () =>
      vscode.commands.executeCommand("workbench.view.extension.tokmon"),
    ),
    vscode.commands.registerCommand("tokmon.refresh", async () => {
      const api = server.api;
      if (!api) {
        await server.start();
        return;
      }
      try {
        status.update(await api.refresh({ workspaceFolder: workspaceFolder() }));
      } catch (err) {
        log.error(`tokmon/refresh failed: ${String(err)}`);
      }
      sessions.reload();
    }),
    vscode.commands.registerCommand("tokmon.filterByTag", async () => {
      const tags = collectTags(sessions.rows);
      if (tags.length === 0) {
        void vscode.window.showInformationMessage("No session has a tag yet. Use \"Tag…\" on a session.");
        return;
      }
      const items: (vscode.QuickPickItem & { tag: string | null })[] = [
        { label: "$(clear-all) Show all sessions", tag: null },
        ...tags.map(({ tag, count }) => ({
          label: `#${tag}`,
          description: `${count} session${count === 1 ? "" : "s"}`,
          picked: tag === sessions.tag,
          tag,
        })),
      ];
      const picked = await vscode.window.showQuickPick(items, { placeHolder: "Show only sessions with this tag" });
      if (picked) {
        sessions.setTag(picked.tag);
      }
    }),
    vscode.commands.registerCommand("tokmon.clearFilter", () => sessions.setTag(null)),
    vscode.commands.registerCommand("tokmon.session.rename", async (node?: TreeNode) => {
      const row = await pickSession(node);
      if (!row) {
        return;
      }
      const name = await vscode.window.showInputBox({
        title: `Rename session ${shortId(row.sessionId)}`,
        prompt: "A name for this session (empty to remove it)",
        value: row.name ?? row.title ?? "",
      });
      if (name !== undefined) {
        await setMetadata(row, { name: name.trim() ? name.trim() : null });
      }
    }),
    vscode.commands.registerCommand("tokmon.session.tag", async (node?: TreeNode) => {
      const row = await pickSession(node);
      if (!row) {
        return;
      }
      const input = await vscode.window.showInputBox({
        title: `Tags of session ${sessionLabel(row)}`,
        prompt: "Tags separated by commas or spaces (empty to remove all)",
        value: row.tags.join(", "),
      });
      if (input !== undefined) {
        await setMetadata(row, { tags: parseTags(input) });
      }
    }),
    vscode.commands.registerCommand("tokmon.session.describe", async (node?: TreeNode) => {
      const row = await pickSession(node);
      if (!row) {
        return;
      }
      const text = await vscode.window.showInputBox({
        title: `Describe session ${sessionLabel(row)}`,
        prompt: "A description (empty to remove it)",
        value: row.description ?? "",
      });
      if (text !== undefined) {
        await setMetadata(row, { description: text.trim() ? text.trim() : null });
      }
    }),
    vscode.commands.registerCommand("tokmon.session.copyId", async (node?: TreeNode) => {
      const row = await pickSession(node);
      if (row) {
        await vscode.env.clipboard.writeText(row.sessionId);
        void vscode.window.setStatusBarMessage(`Copied session id ${row.sessionId}`, 3000);
      }
    }),
  );

  void vscode.commands.executeCommand("setContext", "tokmon.serverState", "starting");
  status.render();
  void server.start();
}

export function deactivate(): Promise<void> | undefined {
  const server = activeServer;
  activeServer = undefined;
  return server?.stop();
}
