/** The Sessions tree in the tokmon sidebar. */

import * as vscode from "vscode";

import type { MetadataChangedParams, SessionDetail, SessionRow } from "./protocol";
import type { ServerManager } from "./server";
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

  private sessions: SessionRow[] | undefined;
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
    return this.sessions ?? [];
  }

  setTag(tag: string | null): void {
    this.tag_ = tag;
    void vscode.commands.executeCommand("setContext", "tokmon.filterActive", tag !== null);
    this.changeEmitter.fire();
  }

  /** Forget everything and reload from the server. */
  reload(changedSessions?: readonly string[]): void {
    if (changedSessions) {
      for (const id of changedSessions) {
        this.details.delete(id);
      }
    } else {
      this.details.clear();
    }
    this.sessions = undefined;
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
    if (this.sessions) {
      const i = this.sessions.findIndex((r) => r.sessionId === updated.sessionId);
      if (i >= 0) {
        this.sessions[i] = { ...this.sessions[i], ...updated };
      }
    }
    this.changeEmitter.fire();
  }

  private workspaceFolders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  }

  private async load(): Promise<void> {
    const api = this.server.api;
    if (!api) {
      this.sessions = undefined;
      return;
    }
    try {
      const result = await api.sessions({ ...TREE_QUERY });
      this.sessions = result.sessions;
      this.workspaceProject = result.workspaceProject;
      this.lastError = undefined;
    } catch (err) {
      this.lastError = String(err);
      this.log.error(`tokmon/sessions failed: ${this.lastError}`);
      this.sessions = undefined;
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
