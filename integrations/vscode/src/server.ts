/** Starts, watches and restarts `tokmon serve` through vscode-languageclient. */

import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";

import { type Discovery, discoverServer, nodeHost, type ServerCommand } from "./discovery";
import {
  CLIENT_CAPABILITIES,
  INSTALL_COMMAND,
  type AlertRow,
  type LimitsStatus,
  type MetadataChangedParams,
  MIN_TOKMON_VERSION,
  Notifications,
  TokmonApi,
  UPGRADE_COMMAND,
  type UsageChangedParams,
  versionProblem,
} from "./protocol";
import { pythonInterpreter } from "./python";

export type ServerState = "starting" | "running" | "stopped";

/**
 * A LanguageClient that logs its errors but never pops up its own notifications: the manager
 * shows one clear message per problem (with the install or upgrade command) instead.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | "force"): void {
    super.error(message, data, false);
  }
}

/** How often the server may die before we stop restarting it (within RESTART_WINDOW_MS). */
const MAX_CRASHES = 3;
const RESTART_WINDOW_MS = 3 * 60 * 1000;

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private api_: TokmonApi | undefined;
  private state_: ServerState = "stopped";
  private crashes: number[] = [];
  private notified = new Set<string>();
  private starting: Promise<void> | undefined;

  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly usageEmitter = new vscode.EventEmitter<UsageChangedParams>();
  private readonly metadataEmitter = new vscode.EventEmitter<MetadataChangedParams>();
  private readonly limitsEmitter = new vscode.EventEmitter<LimitsStatus>();
  private readonly alertEmitter = new vscode.EventEmitter<AlertRow>();

  readonly onDidChangeState = this.stateEmitter.event;
  readonly onUsageChanged = this.usageEmitter.event;
  readonly onMetadataChanged = this.metadataEmitter.event;
  /** `tokmon/limitsChanged`: the limits status (windows, pace, budgets). */
  readonly onLimitsChanged = this.limitsEmitter.event;
  /** `tokmon/alert`: one alert-log row (the server sends each once). */
  readonly onAlert = this.alertEmitter.event;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  get state(): ServerState {
    return this.state_;
  }

  /** The typed API while the server runs, else undefined. */
  get api(): TokmonApi | undefined {
    return this.state_ === "running" ? this.api_ : undefined;
  }

  private setState(state: ServerState): void {
    if (state !== this.state_) {
      this.state_ = state;
      void vscode.commands.executeCommand("setContext", "tokmon.serverState", state);
      this.stateEmitter.fire(state);
    }
  }

  /** Start the server unless it is already starting or running. */
  start(): Promise<void> {
    if (!this.starting) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  /** Stop and start again (the `tokmon: Restart Server` command). */
  async restart(): Promise<void> {
    await this.starting?.catch(() => undefined);
    this.crashes = [];
    this.notified.clear();
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.api_ = undefined;
    if (client) {
      try {
        if (client.state !== State.Stopped) {
          await client.stop(5000);
        }
      } catch (err) {
        this.log.warn(`stopping the server: ${String(err)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    this.setState("stopped");
  }

  private async doStart(): Promise<void> {
    if (this.client) {
      return;
    }
    this.setState("starting");
    const config = vscode.workspace.getConfiguration("tokmon");
    const python = await pythonInterpreter(this.log);
    const found: Discovery = await discoverServer(config.get<string>("path"), python, nodeHost());
    if (!found.ok) {
      this.log.error(found.message);
      this.setState("stopped");
      this.notifyMissing(found.reason, found.message);
      return;
    }
    this.log.info(`starting ${found.server.command} ${found.server.args.join(" ")} (from ${found.server.source})`);
    const client = this.createClient(found.server);
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.log.error(`the server did not start: ${String(err)}`);
      this.client = undefined;
      await client.dispose().catch(() => undefined);
      this.setState("stopped");
      const missing = /ENOENT|not found/i.test(String(err));
      if (missing) {
        this.notifyMissing(
          "missing",
          `tokmon could not be started (${found.server.command}). Install it with: ${INSTALL_COMMAND}`,
        );
      } else {
        // The process started but did not speak LSP: most often a tokmon without `serve`.
        this.notifyOnce(
          "failed",
          `The tokmon server did not start (${found.server.command} ${found.server.args.join(" ")}). ` +
            `If tokmon is older than ${MIN_TOKMON_VERSION}, upgrade it with: ${UPGRADE_COMMAND}. See the tokmon log for details.`,
          UPGRADE_COMMAND,
        );
      }
      return;
    }
    const api = new TokmonApi(client);
    let problem: string | null;
    try {
      const version = await api.version();
      this.log.info(`tokmon ${version.version}, protocol ${version.protocol}`);
      problem = versionProblem(version);
    } catch (err) {
      problem = `it does not answer tokmon/version (${String(err)})`;
    }
    if (problem) {
      this.log.error(`tokmon is too old: ${problem}`);
      await this.stop();
      this.notifyOnce(
        "too-old",
        `tokmon is too old for this extension: ${problem}. Upgrade it with: ${UPGRADE_COMMAND}`,
        UPGRADE_COMMAND,
      );
      return;
    }
    this.api_ = api;
    this.setState("running");
  }

  private createClient(server: ServerCommand): LanguageClient {
    const exec = {
      command: server.command,
      args: server.args,
      transport: TransportKind.stdio,
      options: { env: { ...process.env, PYTHONUNBUFFERED: "1" }, ...(server.cwd ? { cwd: server.cwd } : {}) },
    };
    const serverOptions: ServerOptions = { run: exec, debug: exec };
    const folders = vscode.workspace.workspaceFolders ?? [];
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.log,
      // asked again at every (re)start: pushes without the summary's whole active list
      initializationOptions: {
        workspaceFolders: folders.map((f) => f.uri.fsPath),
        capabilities: CLIENT_CAPABILITIES,
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => this.onClosed(),
      },
      initializationFailedHandler: (err) => {
        this.log.error(`initialize failed: ${String(err)}`);
        return false;
      },
    };
    const client = new QuietLanguageClient("tokmon", "tokmon", serverOptions, clientOptions);
    client.onNotification(Notifications.usageChanged, (params: UsageChangedParams) => {
      this.usageEmitter.fire(params);
    });
    client.onNotification(Notifications.metadataChanged, (params: MetadataChangedParams) => {
      this.metadataEmitter.fire(params);
    });
    client.onNotification(Notifications.limitsChanged, (params: LimitsStatus) => {
      this.limitsEmitter.fire(params);
    });
    client.onNotification(Notifications.alert, (params: AlertRow) => {
      this.alertEmitter.fire(params);
    });
    return client;
  }

  /** The server process ended: restart a few times, then give up with one message. */
  private onClosed(): { action: CloseAction; handled: boolean } {
    if (this.client === undefined || this.state_ !== "running") {
      // A deliberate stop, or a start that is being handled elsewhere.
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < RESTART_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length <= MAX_CRASHES) {
      this.log.warn(`the tokmon server stopped; restarting (${this.crashes.length}/${MAX_CRASHES})`);
      this.setState("starting");
      // The client re-initialises itself; mark it running again once it is.
      const client = this.client;
      const sub = client?.onDidChangeState((e) => {
        if (e.newState === State.Running) {
          this.setState("running");
          sub?.dispose();
        } else if (e.newState === State.Stopped) {
          this.setState("stopped");
          sub?.dispose();
        }
      });
      return { action: CloseAction.Restart, handled: true };
    }
    this.log.error("the tokmon server keeps stopping; not restarting it");
    this.api_ = undefined;
    this.setState("stopped");
    this.notifyOnce(
      "crashed",
      "The tokmon server keeps stopping. See the tokmon log, then run \"tokmon: Restart Server\".",
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private notifyMissing(reason: string, message: string): void {
    this.notifyOnce(reason, message, reason === "failed" ? undefined : INSTALL_COMMAND);
  }

  /** One notification per reason until the next manual restart. */
  private notifyOnce(key: string, message: string, command?: string): void {
    if (this.notified.has(key)) {
      return;
    }
    this.notified.add(key);
    const actions = command ? ["Copy Command", "Open Settings", "Show Log"] : ["Show Log"];
    void vscode.window.showErrorMessage(message, ...actions).then(async (choice) => {
      if (choice === "Copy Command" && command) {
        await vscode.env.clipboard.writeText(command);
      } else if (choice === "Open Settings") {
        await vscode.commands.executeCommand("workbench.action.openSettings", "tokmon.path");
      } else if (choice === "Show Log") {
        this.log.show(true);
      }
    });
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.usageEmitter.dispose();
    this.metadataEmitter.dispose();
    this.limitsEmitter.dispose();
    this.alertEmitter.dispose();
  }
}
