"""Desktop notifications: a real D-Bus notification service on a private session bus
(Linux), and the documented macOS / Windows commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tokmon

from tokmon.limits.notifiers import desktop_command


class FakeNotificationService:
    """Owns ``org.freedesktop.Notifications`` on ``address`` and records Notify calls."""

    def __init__(self, address: str) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        reply = self.conn.send_and_get_reply(message_bus.RequestName(
            "org.freedesktop.Notifications"), timeout=10)  # fmt: skip
        assert reply.body[0] == 1  # primary owner
        self.calls: list[tuple[Any, ...]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_method_return

        while not self.stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:
                return
            h = msg.header
            if (
                h.message_type == MessageType.method_call
                and h.fields.get(HeaderFields.member) == "Notify"
            ):
                self.calls.append(msg.body)
                self.conn.send(new_method_return(msg, "u", (len(self.calls),)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.conn.close()


@pytest.fixture
def session_bus() -> Any:
    if not sys.platform.startswith("linux"):
        pytest.skip("D-Bus notifications are the Linux channel")
    pytest.importorskip("jeepney")
    exe = shutil.which("dbus-daemon")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("dbus-daemon missing under CI (.ci/steps/75-limits.sh installs it)")
        pytest.skip("dbus-daemon not installed (.ci/steps/75-limits.sh installs it)")
    proc = subprocess.Popen([exe, "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    assert address.startswith(("unix:", "tcp:")), address
    yield address
    proc.terminate()
    proc.wait(10)


def test_alert_reaches_a_real_dbus_notification_service(
    session_bus: str, env: dict[str, str], tmp_path: Path
) -> None:
    service = FakeNotificationService(session_bus)
    try:
        cfg = tmp_path / "config.toml"
        cfg.write_text("[alerts]\ndesktop = true\n")
        e = {
            **env,
            "TOKMON_CONFIG": str(cfg),
            "DBUS_SESSION_BUS_ADDRESS": session_bus,
            "CLAUDE_CONFIG_DIR": str(tmp_path / "none"),
        }
        r = run_tokmon(["alerts", "test", "--json"], e)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["channels"]["desktop"] == "sent via dbus"
        end = time.monotonic() + 30
        while not service.calls and time.monotonic() < end:
            time.sleep(0.1)
        app, _replaces, _icon, summary, body, _actions, _hints, _timeout = service.calls[0]
        assert app == "tokmon" and summary == "tokmon: test alert"
        assert "notifications work" in body
        # and the log lists it
        log = json.loads(run_tokmon(["alerts", "log", "--json"], e).stdout)["alerts"]
        assert log[0]["kind"] == "test" and log[0]["status"] == "sent"
    finally:
        service.close()


def test_no_notification_service_is_one_clear_failure(
    session_bus: str, env: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[alerts]\ndesktop = true\n")
    e = {**env, "TOKMON_CONFIG": str(cfg), "DBUS_SESSION_BUS_ADDRESS": session_bus}
    r = run_tokmon(["alerts", "test"], e)
    assert r.returncode == 1
    assert "desktop: desktop notification failed" in r.stdout and "Traceback" not in r.stderr


def test_documented_commands_for_macos_windows_and_notify_send() -> None:
    title, body = "tokmon: 5-hour at 80%", 'said "hi" & <left> it\'s \\ done'
    mac = desktop_command("Darwin", title, body)
    assert mac[:2] == ["osascript", "-e"]
    assert mac[2] == ('display notification "said \\"hi\\" & <left> it\'s \\\\ done" '
                      'with title "tokmon: 5-hour at 80%"')  # fmt: skip
    win = desktop_command("Windows", title, body)
    assert win[:4] == ["powershell", "-NoProfile", "-NonInteractive", "-Command"]
    script = win[4]
    assert "Windows.UI.Notifications.ToastNotificationManager" in script
    # XML-escaped inside a single-quoted PowerShell string ('' doubles a quote)
    assert "<text>said &quot;hi&quot; &amp; &lt;left&gt; it&apos;s \\ done</text>" in script
    assert "CreateToastNotifier('tokmon')" in script
    assert desktop_command("Linux", title, "a\nb") == [
        "notify-send",
        "--app-name=tokmon",
        title,
        "a b",
    ]
