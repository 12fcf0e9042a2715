/** The interpreter the Python extension (ms-python.python) has selected, if any. */

import * as vscode from "vscode";

interface PythonEnvironmentApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { path: string } | undefined;
  };
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } | undefined;
  };
}

/** Path of the selected Python interpreter, or undefined (no extension, none selected). */
export async function pythonInterpreter(log: vscode.LogOutputChannel): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonEnvironmentApi>("ms-python.python");
  if (!ext) {
    return undefined;
  }
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
    const active = api?.environments?.getActiveEnvironmentPath?.(resource);
    if (active?.path) {
      return active.path;
    }
    const exec = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
    return exec && exec.length > 0 ? exec[0] : undefined;
  } catch (err) {
    log.warn(`could not ask the Python extension for its interpreter: ${String(err)}`);
    return undefined;
  }
}
