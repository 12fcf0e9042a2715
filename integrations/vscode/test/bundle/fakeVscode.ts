/**
 * A small stand-in for the `vscode` module, enough to load the packaged bundle
 * (dist/extension.js) in Node and run activate(): it records what the extension shows
 * (status bar item, tree view, messages, context keys) and answers input boxes from a queue.
 * Any API the test does not care about is a recursive no-op proxy.
 */

type Listener<T> = (e: T) => unknown;

/** A no-op value: callable, constructible, every property another no-op, iterable as empty. */
export function noop(): unknown {
  const cache = new Map<PropertyKey, unknown>();
  const target = function () {
    /* no-op */
  };
  const proxy: unknown = new Proxy(target, {
    get(_t, prop) {
      if (prop === "then") {
        return undefined;
      }
      if (prop === Symbol.iterator) {
        return function* () {
          /* empty */
        };
      }
      if (prop === Symbol.toPrimitive) {
        return () => "";
      }
      if (prop === "dispose") {
        return () => undefined;
      }
      if (!cache.has(prop)) {
        cache.set(prop, noop());
      }
      return cache.get(prop);
    },
    apply() {
      return noop();
    },
    construct() {
      return noop() as object;
    },
  });
  return proxy;
}

/** Wrap an object so that missing properties are no-ops instead of undefined. */
function withFallback<T extends object>(obj: T): T {
  return new Proxy(obj, {
    get(t, prop, recv) {
      if (prop in t || typeof prop === "symbol" || prop === "then") {
        return Reflect.get(t, prop, recv) as unknown;
      }
      return noop();
    },
  });
}

export class Disposable {
  constructor(private readonly fn: () => void = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) {
      l(e);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export interface FakeState {
  settings: Record<string, unknown>;
  contextKeys: Map<string, unknown>;
  commands: Map<string, (...args: unknown[]) => unknown>;
  statusItems: FakeStatusBarItem[];
  treeProviders: Map<string, unknown>;
  messages: { level: "info" | "warning" | "error"; text: string }[];
  inputAnswers: (string | undefined)[];
  clipboard: string;
  log: string[];
  configListeners: Listener<{ affectsConfiguration(s: string): boolean }>[];
  pythonPath: string | undefined;
}

export interface FakeStatusBarItem {
  id: string;
  text: string;
  tooltip: unknown;
  backgroundColor: { id: string } | undefined;
  command: unknown;
  visible: boolean;
}

/** Build a fresh fake `vscode` module and the state it records into. */
export function createFakeVscode(workspaceFolder: string): { module: unknown; state: FakeState } {
  const state: FakeState = {
    settings: {},
    contextKeys: new Map(),
    commands: new Map(),
    statusItems: [],
    treeProviders: new Map(),
    messages: [],
    inputAnswers: [],
    clipboard: "",
    log: [],
    configListeners: [],
    pythonPath: undefined,
  };
  const event = <T>(listeners?: Listener<T>[]) => (l: Listener<T>): Disposable => {
    listeners?.push(l);
    return new Disposable();
  };
  const uri = (fsPath: string) => withFallback({ fsPath, scheme: "file", path: fsPath, toString: () => `file://${fsPath}` });

  const logChannel = (name: string) =>
    withFallback({
      name,
      logLevel: 2,
      onDidChangeLogLevel: event<number>(),
      trace: (m: string) => state.log.push(`trace ${m}`),
      debug: (m: string) => state.log.push(`debug ${m}`),
      info: (m: string) => state.log.push(`info ${m}`),
      warn: (m: string) => state.log.push(`warn ${m}`),
      error: (m: unknown) => state.log.push(`error ${String(m)}`),
      append: (m: string) => state.log.push(m),
      appendLine: (m: string) => state.log.push(m),
      replace: () => undefined,
      clear: () => undefined,
      show: () => undefined,
      hide: () => undefined,
      dispose: () => undefined,
    });

  const message = (level: "info" | "warning" | "error") => (text: string): Promise<undefined> => {
    state.messages.push({ level, text });
    return Promise.resolve(undefined);
  };

  const vscode = {
    version: "1.95.0",
    Disposable,
    EventEmitter,
    StatusBarAlignment: { Left: 1, Right: 2 },
    TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
    LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
    ThemeColor: class {
      constructor(readonly id: string) {}
    },
    ThemeIcon: class {
      constructor(readonly id: string) {}
    },
    MarkdownString: class {
      isTrusted = false;
      constructor(
        readonly value = "",
        readonly supportThemeIcons = false,
      ) {}
    },
    TreeItem: class {
      id?: string;
      description?: string;
      tooltip?: unknown;
      iconPath?: unknown;
      contextValue?: string;
      constructor(
        readonly label: string,
        readonly collapsibleState = 0,
      ) {}
    },
    CancellationError: class extends Error {},
    CancellationTokenSource: class {
      token = { isCancellationRequested: false, onCancellationRequested: event<void>() };
      cancel(): void {
        this.token.isCancellationRequested = true;
      }
      dispose(): void {
        /* nothing */
      }
    },
    Uri: withFallback({ file: uri, parse: (s: string) => uri(s.replace(/^file:\/\//, "")) }),
    env: withFallback({
      appName: "Fake Code",
      language: "en",
      machineId: "fake",
      clipboard: {
        writeText: (t: string) => {
          state.clipboard = t;
          return Promise.resolve();
        },
        readText: () => Promise.resolve(state.clipboard),
      },
    }),
    extensions: withFallback({
      getExtension: (id: string) =>
        id === "ms-python.python" && state.pythonPath
          ? {
              isActive: true,
              exports: { environments: { getActiveEnvironmentPath: () => ({ path: state.pythonPath }) } },
              activate: () => Promise.resolve(undefined),
            }
          : undefined,
    }),
    commands: withFallback({
      registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
        if (state.commands.has(id)) {
          // as VS Code does: a command id can be registered once
          throw new Error(`command '${id}' already exists`);
        }
        state.commands.set(id, fn);
        return new Disposable(() => state.commands.delete(id));
      },
      executeCommand: (id: string, ...args: unknown[]): Promise<unknown> => {
        if (id === "setContext") {
          state.contextKeys.set(String(args[0]), args[1]);
          return Promise.resolve(undefined);
        }
        const fn = state.commands.get(id);
        return Promise.resolve(fn ? fn(...args) : undefined);
      },
    }),
    window: withFallback({
      createOutputChannel: (name: string) => logChannel(name),
      createStatusBarItem: (id: string) => {
        const item: FakeStatusBarItem & { show(): void; hide(): void; dispose(): void; name?: string } = {
          id,
          text: "",
          tooltip: undefined,
          backgroundColor: undefined,
          command: undefined,
          visible: false,
          show() {
            this.visible = true;
          },
          hide() {
            this.visible = false;
          },
          dispose() {
            this.visible = false;
          },
        };
        state.statusItems.push(item);
        return item;
      },
      createTreeView: (id: string, options: { treeDataProvider: unknown }) => {
        state.treeProviders.set(id, options.treeDataProvider);
        return withFallback({ dispose: () => undefined, visible: true });
      },
      showInformationMessage: message("info"),
      showWarningMessage: message("warning"),
      showErrorMessage: message("error"),
      showInputBox: () => Promise.resolve(state.inputAnswers.shift()),
      showQuickPick: () => Promise.resolve(undefined),
      setStatusBarMessage: () => new Disposable(),
      visibleTextEditors: [],
      tabGroups: withFallback({ all: [], onDidChangeTabs: event<unknown>() }),
    }),
    workspace: withFallback({
      workspaceFolders: [{ uri: uri(workspaceFolder), name: "ws", index: 0 }],
      textDocuments: [],
      notebookDocuments: [],
      getConfiguration: (section?: string) =>
        withFallback({
          get: <T>(key: string, dflt?: T): T | undefined => {
            const full = section ? `${section}.${key}` : key;
            return full in state.settings ? (state.settings[full] as T) : dflt;
          },
          has: (key: string) => (section ? `${section}.${key}` : key) in state.settings,
        }),
      onDidChangeConfiguration: event(state.configListeners),
    }),
  };
  return { module: withFallback(vscode), state };
}

/** Tell the extension that settings changed (as VS Code does after an edit). */
export function changeSettings(state: FakeState, changes: Record<string, unknown>): void {
  Object.assign(state.settings, changes);
  const keys = Object.keys(changes);
  const e = { affectsConfiguration: (s: string) => keys.some((k) => k === s || k.startsWith(`${s}.`)) };
  for (const l of state.configListeners) {
    l(e);
  }
}
