/** The Sessions tree as plain data: projects, sessions, models and blocks (no `vscode`). */

import {
  escapeMarkdown,
  formatCost,
  formatDateTime,
  formatDuration,
  formatInteger,
  formatRelative,
  formatTokens,
  shortId,
  shortModel,
  truncate,
} from "./format";
import type { Block, ModelBreakdown, SessionDetail, SessionRow, SessionsParams } from "./protocol";

/** How much of a session's description its tree row shows (the tooltip has all of it). */
const DESCRIPTION_CHARS = 48;

/**
 * The `tokmon/sessions` query behind the tree: every project, newest first. No
 * `workspaceFolder` here: that param filters to the workspace's sessions, while the tree shows
 * all projects (the server still answers `workspaceProject` from its default folder).
 */
export const TREE_QUERY: Readonly<SessionsParams> = { sort: "lastActivity", order: "desc" };

export interface ProjectGroup {
  /** Set when the tree groups by agent first (keeps the node ids unique across agents). */
  agent?: string;
  projectPath: string;
  projectName: string;
  isWorkspace: boolean;
  sessions: SessionRow[];
  totalTokens: number;
  totalCost: number;
  lastActivity: string;
}

/** One agent's sessions, grouped by project as the plain tree is. */
export interface AgentGroup {
  agent: string;
  projects: ProjectGroup[];
  sessions: number;
  totalTokens: number;
  totalCost: number;
  lastActivity: string;
}

export type TreeNode =
  | { kind: "agent"; group: AgentGroup }
  | { kind: "project"; group: ProjectGroup }
  | { kind: "session"; row: SessionRow }
  | { kind: "models"; sessionId: string }
  | { kind: "blocks"; sessionId: string }
  | { kind: "model"; sessionId: string; model: ModelBreakdown }
  | { kind: "block"; sessionId: string; block: Block }
  | { kind: "message"; text: string; key: string };

/** Plain description of how a node looks; the extension turns it into a TreeItem. */
export interface NodeView {
  id: string;
  label: string;
  description?: string;
  tooltip?: string;
  icon: string;
  contextValue: string;
  collapsible: "none" | "collapsed" | "expanded";
}

/** Normalise a path for comparisons: forward slashes, no trailing slash, case-folded on Windows. */
export function normalizePath(p: string, caseInsensitive = false): string {
  let s = p.replace(/\\/g, "/");
  while (s.length > 1 && s.endsWith("/") && !/^[A-Za-z]:\/$/.test(s)) {
    s = s.slice(0, -1);
  }
  return caseInsensitive ? s.toLowerCase() : s;
}

/** True when `child` equals `parent` or lies inside it. */
export function isSameOrInside(child: string, parent: string, caseInsensitive = false): boolean {
  const c = normalizePath(child, caseInsensitive);
  const p = normalizePath(parent, caseInsensitive);
  if (c === p) {
    return true;
  }
  return c.startsWith(p.endsWith("/") ? p : `${p}/`);
}

/** Does a session project belong to this workspace (the server's answer, else folder match)? */
export function isWorkspaceProject(
  projectPath: string,
  workspaceProject: string | null | undefined,
  workspaceFolders: readonly string[],
  caseInsensitive = false,
): boolean {
  if (workspaceProject) {
    return normalizePath(projectPath, caseInsensitive) === normalizePath(workspaceProject, caseInsensitive);
  }
  return workspaceFolders.some((f) => isSameOrInside(projectPath, f, caseInsensitive));
}

function lastMs(iso: string): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
}

/**
 * Group sessions by project: this workspace's project(s) first, then by most recent activity.
 * Sessions inside a project are newest first. `tag` keeps only sessions carrying that tag.
 */
export function groupSessions(
  sessions: readonly SessionRow[],
  options: {
    workspaceProject?: string | null;
    workspaceFolders?: readonly string[];
    tag?: string | null;
    caseInsensitive?: boolean;
  } = {},
): ProjectGroup[] {
  const byProject = new Map<string, ProjectGroup>();
  for (const row of sessions) {
    if (options.tag && !row.tags.includes(options.tag)) {
      continue;
    }
    const key = row.projectPath || "(unknown project)";
    let group = byProject.get(key);
    if (!group) {
      group = {
        projectPath: key,
        projectName: row.projectName || key,
        isWorkspace: isWorkspaceProject(
          key,
          options.workspaceProject,
          options.workspaceFolders ?? [],
          options.caseInsensitive,
        ),
        sessions: [],
        totalTokens: 0,
        totalCost: 0,
        lastActivity: row.lastActivity,
      };
      byProject.set(key, group);
    }
    group.sessions.push(row);
    group.totalTokens += row.totalTokens;
    group.totalCost += row.totalCost;
    if (lastMs(row.lastActivity) > lastMs(group.lastActivity)) {
      group.lastActivity = row.lastActivity;
    }
  }
  const groups = [...byProject.values()];
  for (const g of groups) {
    g.sessions.sort((a, b) => lastMs(b.lastActivity) - lastMs(a.lastActivity));
  }
  groups.sort((a, b) => {
    if (a.isWorkspace !== b.isWorkspace) {
      return a.isWorkspace ? -1 : 1;
    }
    return lastMs(b.lastActivity) - lastMs(a.lastActivity);
  });
  return groups;
}

/** A session's agent (rows from servers before agents had none: Claude Code). */
export function agentOf(row: SessionRow): string {
  return row.agent || "claude";
}

/**
 * Group sessions by agent, then by project (as {@link groupSessions}). Claude Code first, then
 * the other agents by most recent activity. Agents without a session (after `tag`) are left out.
 */
export function groupByAgent(
  sessions: readonly SessionRow[],
  options: Parameters<typeof groupSessions>[1] = {},
): AgentGroup[] {
  const byAgent = new Map<string, SessionRow[]>();
  for (const row of sessions) {
    if (options.tag && !row.tags.includes(options.tag)) {
      continue;
    }
    const list = byAgent.get(agentOf(row)) ?? [];
    list.push(row);
    byAgent.set(agentOf(row), list);
  }
  const out: AgentGroup[] = [];
  for (const [agent, rows] of byAgent) {
    const projects = groupSessions(rows, options).map((g) => ({ ...g, agent }));
    let last = rows[0]?.lastActivity ?? "";
    for (const r of rows) {
      if (lastMs(r.lastActivity) > lastMs(last)) {
        last = r.lastActivity;
      }
    }
    out.push({
      agent,
      projects,
      sessions: rows.length,
      totalTokens: rows.reduce((a, r) => a + r.totalTokens, 0),
      totalCost: rows.reduce((a, r) => a + r.totalCost, 0),
      lastActivity: last,
    });
  }
  out.sort((a, b) => {
    if ((a.agent === "claude") !== (b.agent === "claude")) {
      return a.agent === "claude" ? -1 : 1;
    }
    return lastMs(b.lastActivity) - lastMs(a.lastActivity) || a.agent.localeCompare(b.agent);
  });
  return out;
}

/** The tree's top level: agents when more than one agent has sessions, else projects. */
export function rootNodes(sessions: readonly SessionRow[], options: Parameters<typeof groupSessions>[1] = {}): TreeNode[] {
  const agents = groupByAgent(sessions, options);
  if (agents.length > 1) {
    return agents.map((group) => ({ kind: "agent", group }));
  }
  return groupSessions(sessions, options).map((group) => ({ kind: "project", group }));
}

/** Every tag in use, sorted, with how many sessions carry it. */
export function collectTags(sessions: readonly SessionRow[]): { tag: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const row of sessions) {
    for (const tag of row.tags) {
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .map(([tag, count]) => ({ tag, count }))
    .sort((a, b) => a.tag.localeCompare(b.tag));
}

/** The label of a session: its name, else Claude's title, else its short id. */
export function sessionLabel(row: SessionRow): string {
  return truncate(row.name ?? row.title ?? shortId(row.sessionId), 80);
}

/** Parse what a user typed into the Tag box: comma or space separated, deduplicated. */
export function parseTags(input: string): string[] {
  const seen = new Set<string>();
  for (const raw of input.split(/[,\s]+/)) {
    const tag = raw.trim().replace(/^#/, "");
    if (tag) {
      seen.add(tag);
    }
  }
  return [...seen];
}

/** The tree's children for a node (`undefined` = root). Session children need its detail. */
export function childrenOf(
  node: TreeNode | undefined,
  data: {
    groups: ProjectGroup[];
    /** The top level when given (see {@link rootNodes}); else the project groups. */
    roots?: TreeNode[];
    detail?: (sessionId: string) => SessionDetail | undefined;
  },
): TreeNode[] {
  if (!node) {
    return data.roots ?? data.groups.map((group) => ({ kind: "project", group }));
  }
  switch (node.kind) {
    case "agent":
      return node.group.projects.map((group) => ({ kind: "project", group }));
    case "project":
      return node.group.sessions.map((row) => ({ kind: "session", row }));
    case "session":
      return [
        { kind: "models", sessionId: node.row.sessionId },
        { kind: "blocks", sessionId: node.row.sessionId },
      ];
    case "models": {
      const detail = data.detail?.(node.sessionId);
      if (!detail) {
        return [{ kind: "message", text: "Loading…", key: `${node.kind}:${node.sessionId}` }];
      }
      const models = [...detail.models].sort((a, b) => b.cost - a.cost || b.totalTokens - a.totalTokens);
      return models.length
        ? models.map((model) => ({ kind: "model", sessionId: node.sessionId, model }))
        : [{ kind: "message", text: "No models", key: `models:${node.sessionId}` }];
    }
    case "blocks": {
      const detail = data.detail?.(node.sessionId);
      if (!detail) {
        return [{ kind: "message", text: "Loading…", key: `${node.kind}:${node.sessionId}` }];
      }
      const blocks = detail.blocks.filter((b) => !b.isGap);
      blocks.sort((a, b) => lastMs(b.startTime) - lastMs(a.startTime));
      return blocks.length
        ? blocks.map((block) => ({ kind: "block", sessionId: node.sessionId, block }))
        : [{ kind: "message", text: "No blocks", key: `blocks:${node.sessionId}` }];
    }
    default:
      return [];
  }
}

function sessionTooltip(row: SessionRow, nowMs: number): string {
  const lines = [`**${escapeMarkdown(sessionLabel(row))}**${row.isActive ? " (active)" : ""}`, ""];
  if (row.name && row.title) {
    lines.push(`Claude's title: ${escapeMarkdown(row.title)}  `);
  }
  lines.push(`Session ${escapeMarkdown(row.sessionId)}  `); // (a transcript's id: no code span a backtick could close)
  lines.push(`Project ${escapeMarkdown(row.projectPath)}  `);
  lines.push(
    `${formatInteger(row.totalTokens)} tokens (input ${formatInteger(row.inputTokens)}, output ${formatInteger(row.outputTokens)}, ` +
      `cache write ${formatInteger(row.cacheCreationTokens)}, cache read ${formatInteger(row.cacheReadTokens)})  `,
  );
  lines.push(`Cost ${formatCost(row.totalCost)} · ${formatInteger(row.entries)} responses  `);
  lines.push(
    `From ${formatDateTime(row.firstActivity)} to ${formatDateTime(row.lastActivity)} (${formatRelative(row.lastActivity, nowMs)})  `,
  );
  if (row.modelsUsed.length) {
    lines.push(`Models ${row.modelsUsed.map((m) => escapeMarkdown(shortModel(m))).join(", ")}  `);
  }
  if (row.tags.length) {
    lines.push(`Tags ${row.tags.map((t) => `\`${t.replace(/`/g, "'")}\``).join(" ")}  `);
  }
  if (row.description) {
    lines.push("", escapeMarkdown(row.description));
  }
  return lines.join("\n");
}

/** How a node looks. Pure; `nowMs` drives the "5 min ago" texts. */
export function viewOf(node: TreeNode, nowMs: number): NodeView {
  switch (node.kind) {
    case "agent": {
      const g = node.group;
      const n = g.sessions;
      const p = g.projects.length;
      return {
        id: `agent:${g.agent}`,
        label: g.agent,
        description: `${n} session${n === 1 ? "" : "s"} · ${formatTokens(g.totalTokens)} · ${formatCost(g.totalCost)}`,
        tooltip: `**${escapeMarkdown(g.agent)}**\n\n${n} session${n === 1 ? "" : "s"} in ${p} project${p === 1 ? "" : "s"}, ` +
          `${formatInteger(g.totalTokens)} tokens, ${formatCost(g.totalCost)}  \n` +
          `last active ${formatRelative(g.lastActivity, nowMs)}`,
        icon: "robot",
        contextValue: "tokmon.agent",
        collapsible: g.projects.some((x) => x.isWorkspace) ? "expanded" : "collapsed",
      };
    }
    case "project": {
      const g = node.group;
      const n = g.sessions.length;
      return {
        id: g.agent ? `project:${g.agent}:${g.projectPath}` : `project:${g.projectPath}`,
        label: g.projectName,
        description: `${g.isWorkspace ? "this workspace · " : ""}${n} session${n === 1 ? "" : "s"} · ` +
          `${formatTokens(g.totalTokens)} · ${formatCost(g.totalCost)}`,
        tooltip: `**${escapeMarkdown(g.projectName)}**\n\n${escapeMarkdown(g.projectPath)}  \n` +
          `${n} session${n === 1 ? "" : "s"}, ${formatInteger(g.totalTokens)} tokens, ${formatCost(g.totalCost)}`,
        icon: g.isWorkspace ? "root-folder" : "folder",
        contextValue: "tokmon.project",
        collapsible: g.isWorkspace ? "expanded" : "collapsed",
      };
    }
    case "session": {
      const r = node.row;
      const tags = r.tags.length ? ` · ${r.tags.map((t) => `#${t}`).join(" ")}` : "";
      const about = r.description ? ` · ${truncate(r.description, DESCRIPTION_CHARS)}` : "";
      return {
        id: `session:${r.sessionId}`,
        label: sessionLabel(r),
        description: `${formatTokens(r.totalTokens)} · ${formatCost(r.totalCost)} · ${formatRelative(r.lastActivity, nowMs)}${tags}${about}`,
        tooltip: sessionTooltip(r, nowMs),
        icon: r.isActive ? "pulse" : r.description ? "note" : "comment-discussion",
        contextValue: "tokmon.session",
        collapsible: "collapsed",
      };
    }
    case "models":
      return {
        id: `models:${node.sessionId}`,
        label: "Models",
        icon: "hubot",
        contextValue: "tokmon.models",
        collapsible: "collapsed",
      };
    case "blocks":
      return {
        id: `blocks:${node.sessionId}`,
        label: "Blocks",
        icon: "clock",
        contextValue: "tokmon.blocks",
        collapsible: "collapsed",
      };
    case "model": {
      const m = node.model;
      return {
        id: `model:${node.sessionId}:${m.modelName}`,
        label: shortModel(m.modelName),
        description: `${formatTokens(m.totalTokens)} · ${formatCost(m.cost)}`,
        tooltip: `**${escapeMarkdown(m.modelName)}**\n\n` +
          `input ${formatInteger(m.inputTokens)}, output ${formatInteger(m.outputTokens)}, ` +
          `cache write ${formatInteger(m.cacheCreationTokens)}, cache read ${formatInteger(m.cacheReadTokens)}  \n` +
          `${formatInteger(m.totalTokens)} tokens, ${formatCost(m.cost)}`,
        icon: "symbol-class",
        contextValue: "tokmon.model",
        collapsible: "none",
      };
    }
    case "block": {
      const b = node.block;
      const start = Date.parse(b.startTime);
      const end = Date.parse(b.actualEndTime ?? b.endTime);
      const minutes = Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 60000 : null;
      return {
        id: `block:${node.sessionId}:${b.id || b.startTime}`,
        label: formatDateTime(b.startTime),
        description: `${formatTokens(b.totalTokens)} · ${formatCost(b.costUSD)}${b.isActive ? " · active" : ""}`,
        tooltip: `**Block from ${formatDateTime(b.startTime)}**${b.isActive ? " (active)" : ""}\n\n` +
          `${formatInteger(b.entries)} responses over ${formatDuration(minutes)}  \n` +
          `${formatInteger(b.totalTokens)} tokens, ${formatCost(b.costUSD)}  \n` +
          `Models ${b.models.map((m) => escapeMarkdown(shortModel(m))).join(", ") || "–"}`,
        icon: b.isActive ? "watch" : "history",
        contextValue: "tokmon.block",
        collapsible: "none",
      };
    }
    case "message":
      return {
        id: `message:${node.key}:${node.text}`,
        label: node.text,
        icon: "info",
        contextValue: "tokmon.message",
        collapsible: "none",
      };
  }
}
