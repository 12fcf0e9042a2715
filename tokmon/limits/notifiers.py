"""Where alerts go: desktop notifications and webhooks (through apprise).

Desktop (the documented commands, see docs/limits.md):

* Linux: the freedesktop ``org.freedesktop.Notifications.Notify`` D-Bus call on the
  session bus (``DBUS_SESSION_BUS_ADDRESS``) through jeepney; without jeepney,
  ``notify-send --app-name=tokmon TITLE BODY``.
* macOS: ``osascript -e 'display notification "BODY" with title "TITLE"'``.
* Windows: ``powershell -NoProfile -NonInteractive -Command <toast script>`` (the
  ``Windows.UI.Notifications`` toast API, no module to install).

Webhooks: apprise URLs - ``slack://...``, ``discord://...``, ``ntfy://...``, ``json://host/path``
(generic JSON POST), ``jsons://`` for HTTPS - and anything else apprise supports.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

APP = "tokmon"
TIMEOUT = 10.0


def _applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ps_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _xml(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))  # fmt: skip


def desktop_command(system: str, title: str, body: str) -> list[str]:
    """The command that shows a desktop notification on ``system`` (platform.system())."""
    title = " ".join(title.split())
    body = " ".join(body.split())
    if system == "Darwin":
        script = f"display notification {_applescript_string(body)} with title {_applescript_string(title)}"
        return ["osascript", "-e", script]
    if system == "Windows":
        xml = (f"<toast><visual><binding template='ToastGeneric'><text>{_xml(title)}</text>"
               f"<text>{_xml(body)}</text></binding></visual></toast>")  # fmt: skip
        script = (
            "[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, "
            "ContentType = WindowsRuntime] | Out-Null; "
            "[Windows.Data.Xml.Dom.XmlDocument, Windows.Data.Xml.Dom.XmlDocument, "
            "ContentType = WindowsRuntime] | Out-Null; "
            f"$x = New-Object Windows.Data.Xml.Dom.XmlDocument; $x.LoadXml({_ps_string(xml)}); "
            "$t = New-Object Windows.UI.Notifications.ToastNotification $x; "
            "[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier("
            f"{_ps_string(APP)}).Show($t)"
        )
        return ["powershell", "-NoProfile", "-NonInteractive", "-Command", script]
    return ["notify-send", f"--app-name={APP}", title, body]


def dbus_notify(title: str, body: str, address: str, timeout: float = TIMEOUT) -> int:
    """Send ``Notify`` to ``org.freedesktop.Notifications`` on the bus at ``address``;
    returns the notification id the service assigned."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    target = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                         interface="org.freedesktop.Notifications")  # fmt: skip
    msg = new_method_call(target, "Notify", "susssasa{sv}i",
                          (APP, 0, "", title, body, [], {}, 10000))  # fmt: skip
    with open_dbus_connection(bus=address) as conn:
        reply = conn.send_and_get_reply(msg, timeout=timeout)
    if reply.header.message_type.name == "error":
        raise OSError(f"D-Bus error: {reply.body}")
    return int(reply.body[0])


def send_desktop(
    title: str, body: str, env: Mapping[str, str] | None = None, system: str | None = None
) -> str:
    """Show a desktop notification; returns how ("dbus", the command name) or raises OSError."""
    env = os.environ if env is None else env
    system = system or platform.system()
    if system == "Linux":
        address = env.get("DBUS_SESSION_BUS_ADDRESS")
        if address:
            try:
                dbus_notify(title, body, address)
                return "dbus"
            except ImportError:
                pass
            except Exception as exc:
                raise OSError(f"desktop notification failed: {exc}") from exc
    cmd = desktop_command(system, title, body)
    try:
        subprocess.run(
            cmd,
            check=True,
            timeout=TIMEOUT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError(f"desktop notification failed ({cmd[0]}): {exc}") from exc
    return cmd[0]


def send_webhooks(urls: Sequence[str], title: str, body: str) -> list[str]:
    """Notify every apprise URL; returns one problem per URL that failed (empty: all sent)."""
    if not urls:
        return []
    import logging

    import apprise

    logging.getLogger("apprise").setLevel(logging.CRITICAL)
    problems = []
    for url in urls:
        ap = apprise.Apprise()
        if not ap.add(url):
            problems.append(f"not a notification URL apprise knows: {redact(url)}")
            continue
        if not ap.notify(title=title, body=body):
            problems.append(f"webhook failed: {redact(url)}")
    return problems


def redact(url: str) -> str:
    """``scheme://host/…`` - URLs carry tokens; never log them whole."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…" if rest else url


def deliver(
    alert: Mapping[str, Any], cfg: Any, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Send ``alert`` through the configured channels; ``{channel: "sent" | error}``."""
    title = f"tokmon: {alert['subject']}"
    body = str(alert["message"])
    out: dict[str, str] = {}
    if cfg.desktop:
        try:
            out["desktop"] = "sent via " + send_desktop(title, body, env)
        except OSError as exc:
            out["desktop"] = str(exc)
    if cfg.webhooks:
        try:
            problems = send_webhooks(cfg.webhooks, title, body)
        except Exception as exc:  # apprise missing or broken
            problems = [f"webhooks unavailable: {exc}"]
        out["webhooks"] = "sent" if not problems else "; ".join(problems)
    return out
