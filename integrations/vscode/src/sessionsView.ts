/** The Sessions tree in the tokmon sidebar. */

import * as vscode from "vscode";

import type { MetadataChangedParams, SessionDetail, SessionRow, UsageChangedParams } from "./protocol";
import type { ServerManager } from "./server";
import { SessionList } from "./sessionList";
import {
  childrenOf,
  groupSessions,
  rootNodes,
  type ProjectGroup,
  TREE_QUERY,
  type TreeNode,
  viewOf,
} from "./treeModel";

export class SessionsProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<TreeNode | undefined | void>();
  readonly onDidChangeTreeData = this.changeEmitter.event;

  private readonly list = new SessionList();
  private workspaceProject: string | null = null;
  private readonly details = new Map<string, SessionDetail>();
  private loading: Promise<void> | undefined;
  private tag_: string | null = null;
  private lastError: string | undefined;

  constructor(private readonly server: ServerManager, private readonly log: vscode.LogOutputChannel) {}

  get tag(): string | null {
    return this.tag_;
  }

  /** All sessions last loaded (unfiltered), for the tag picker and command palette. */
  get rows(): readonly SessionRow[] {
    return this.list.rows ?? [];
  }

  private get sessions(): SessionRow[] | undefined {
    return this.list.rows;
  }

  setTag(tag: string | null): void {
    this.tag_ = tag;
    void vscode.commands.executeCommand("setContext", "tokmon.filterActive", tag !== null);
    this.changeEmitter.fire();
  }

  /** Forget everything and reload from the server. */
  reload(): void {
    this.details.clear();
    this.list.reset();
    this.changeEmitter.fire();
  }

  /**
   * A `tokmon/usageChanged` push: its rows are upserted into the list (no request); only a
   * missed push (a gap in `seq`) or an older server's push makes the list load again.
   */
  applyUsage(params: UsageChangedParams): void {
    for (const id of params.changedSessions ?? []) {
      this.details.delete(id);
    }
    for (const row of params.sessions ?? []) {
      this.details.delete(row.sessionId); // e.g. one that left the active set by the clock
    }
    if (this.list.apply(params) === "reload") {
      this.log.info(`tokmon/usageChanged seq ${String(params.seq)}: reloading the sessions`);
    }
    this.changeEmitter.fire();
  }

  /** Apply a metadata change without a round trip. */
  applyMetadata(change: MetadataChangedParams): void {
    const patch = (row: SessionRow): void => {
      row.name = change.name;
      row.tags = [...change.tags];
      row.description = change.description;
    };
    const row = this.sessions?.find((r) => r.sessionId === change.sessionId);
    if (row) {
      patch(row);
    }
    const detail = this.details.get(change.sessionId);
    if (detail) {
      patch(detail);
    }
    this.changeEmitter.fire();
  }

  /** Replace one row (e.g. the answer of tokmon/setSessionMetadata). */
  updateRow(updated: SessionRow): void {
    this.list.update(updated);
    this.changeEmitter.fire();
  }

  private workspaceFolders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  }

  private async load(): Promise<void> {
    const api = this.server.api;
    if (!api) {
      this.list.reset();
      return;
    }
    this.list.beginLoad();
    try {
      const result = await api.sessions({ ...TREE_QUERY });
      this.workspaceProject = result.workspaceProject;
      this.lastError = undefined;
      if (this.list.loaded(result) === "reload") {
        // a push that arrived meanwhile skipped one: this view asks again
        this.changeEmitter.fire();
      }
    } catch (err) {
      this.lastError = String(err);
      this.log.error(`tokmon/sessions failed: ${this.lastError}`);
      this.list.failed();
    }
  }

  private groupOptions(): Parameters<typeof groupSessions>[1] {
    return {
      workspaceProject: this.workspaceProject,
      workspaceFolders: this.workspaceFolders(),
      tag: this.tag_,
      caseInsensitive: process.platform === "win32" || process.platform === "darwin",
    };
  }

  private groups(): ProjectGroup[] {
    return groupSessions(this.sessions ?? [], this.groupOptions());
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (this.server.state !== "running") {
      return []; // the welcome view explains why
    }
    if (!node) {
      if (this.sessions === undefined) {
        this.loading ??= this.load().finally(() => {
          this.loading = undefined;
        });
        await this.loading;
      }
      if (this.lastError !== undefined) {
        return [{ kind: "message", text: `Could not load sessions: ${this.lastError}`, key: "root" }];
      }
      return rootNodes(this.sessions ?? [], this.groupOptions());
    }
    if (node.kind === "models" || node.kind === "blocks") {
      const detail = await this.detail(node.sessionId);
      if (!detail) {
        return [{ kind: "message", text: "Could not load this session", key: `${node.kind}:${node.sessionId}` }];
      }
    }
    return childrenOf(node, { groups: this.groups(), detail: (id) => this.details.get(id) });
  }

  private async detail(sessionId: string): Promise<SessionDetail | undefined> {
    const cached = this.details.get(sessionId);
    if (cached) {
      return cached;
    }
    const api = this.server.api;
    if (!api) {
      return undefined;
    }
    try {
      const detail = await api.session(sessionId);
      this.details.set(sessionId, detail);
      return detail;
    } catch (err) {
      this.log.error(`tokmon/session ${sessionId} failed: ${String(err)}`);
      return undefined;
    }
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const view = viewOf(node, Date.now());
    const collapsible =
      view.collapsible === "expanded"
        ? vscode.TreeItemCollapsibleState.Expanded
        : view.collapsible === "collapsed"
          ? vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(view.label, collapsible);
    item.id = view.id;
    item.description = view.description;
    if (view.tooltip) {
      const md = new vscode.MarkdownString(view.tooltip, true);
      md.isTrusted = false;
      item.tooltip = md;
    }
    item.iconPath = new vscode.ThemeIcon(view.icon);
    item.contextValue = view.contextValue;
    return item;
  }

  dispose(): void {
    this.changeEmitter.dispose();
  }
}
