/** The status bar meter: rendered from the last Summary pushed by `tokmon/usageChanged`. */

import * as vscode from "vscode";

import { formatPercent } from "./format";
import { AlertLedger, alertNotification } from "./limitsModel";
import type { AlertRow, LimitsStatus, Summary } from "./protocol";
import { buildStatusView, parseFormat, type StatusSettings } from "./statusModel";
import { type AlertState, blockKey, normalizeThresholds, ThresholdAlerts } from "./thresholds";

const ALERT_STATE_KEY = "tokmon.thresholdAlerts";
const LIMIT_ALERTS_KEY = "tokmon.limitAlerts";

/** Read the status bar settings. */
export function readStatusSettings(): StatusSettings & { enabled: boolean } {
  const c = vscode.workspace.getConfiguration("tokmon");
  return {
    enabled: c.get<boolean>("statusBar.enabled", true),
    format: parseFormat(c.get("statusBar.format")),
    thresholds: normalizeThresholds(c.get("thresholds.warning"), c.get("thresholds.critical")),
    tokenLimit: c.get<number>("tokenLimit", 0) ?? 0,
  };
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private summary: Summary | undefined;
  private limits: LimitsStatus | null = null;
  private readonly alerts: ThresholdAlerts;
  private readonly limitAlerts: AlertLedger;
  private serverDown = false;

  constructor(private readonly memento: vscode.Memento) {
    this.item = vscode.window.createStatusBarItem("tokmon.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "tokmon";
    this.item.command = "tokmon.openSidebar";
    this.alerts = new ThresholdAlerts(memento.get<AlertState>(ALERT_STATE_KEY));
    this.limitAlerts = new AlertLedger(memento.get<string[]>(LIMIT_ALERTS_KEY));
    this.render();
  }

  /** A new summary from the server (the only data source: no polling). */
  update(summary: Summary): void {
    this.summary = summary;
    this.serverDown = false;
    this.render();
    this.checkThresholds();
  }

  /** New limits status (`tokmon/limits` answer or `tokmon/limitsChanged` push). */
  updateLimits(status: LimitsStatus): void {
    this.limits = status;
    this.render();
  }

  /** A `tokmon/alert` push: one notification per alert key, ever. */
  showAlert(alert: AlertRow): boolean {
    if (!alert || typeof alert.key !== "string" || !this.limitAlerts.offer(alert.key)) {
      return false;
    }
    void this.memento.update(LIMIT_ALERTS_KEY, this.limitAlerts.snapshot());
    const { message, severity } = alertNotification(alert);
    const show = severity === "error" ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    void show(message, "Open Sessions").then((choice) => {
      if (choice) {
        void vscode.commands.executeCommand("tokmon.openSidebar");
      }
    });
    return true;
  }

  /** Show that the server is not running (or starting). */
  setServerDown(down: boolean): void {
    this.serverDown = down;
    this.render();
  }

  /** Re-render with current settings and clock (no request to the server). */
  render(): void {
    const settings = readStatusSettings();
    if (!settings.enabled) {
      this.item.hide();
      return;
    }
    if (!this.summary || this.serverDown) {
      this.item.text = this.serverDown ? "$(circle-slash) tokmon" : "$(sync~spin) tokmon";
      this.item.tooltip = this.serverDown
        ? "The tokmon server is not running. Click to open the tokmon sidebar."
        : "Waiting for tokmon…";
      this.item.backgroundColor = undefined;
      this.item.show();
      return;
    }
    const view = buildStatusView(this.summary, settings, Date.now(), this.limits);
    this.item.text = view.text;
    const md = new vscode.MarkdownString(view.tooltip, true);
    md.isTrusted = false;
    this.item.tooltip = md;
    this.item.backgroundColor =
      view.level === "critical"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.level === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
    this.item.show();
  }

  private checkThresholds(): void {
    if (!this.summary) {
      return;
    }
    const settings = readStatusSettings();
    const now = Date.now();
    const view = buildStatusView(this.summary, settings, now);
    const crossed = this.alerts.check(blockKey(this.summary, view.usage, now), view.level);
    void this.memento.update(ALERT_STATE_KEY, this.alerts.snapshot());
    if (!crossed || !view.usage) {
      return;
    }
    const kind = view.usage.source === "official" ? "official" : "estimated";
    const message =
      `tokmon: this 5-hour block is at ${formatPercent(view.usage.percent)} of the limit (${kind}), ` +
      `above your ${crossed} threshold of ${formatPercent(settings.thresholds[crossed === "critical" ? "critical" : "warning"])}.`;
    const show = crossed === "critical" ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    void show(message, "Open Sessions").then((choice) => {
      if (choice) {
        void vscode.commands.executeCommand("tokmon.openSidebar");
      }
    });
  }

  dispose(): void {
    this.item.dispose();
  }
}
