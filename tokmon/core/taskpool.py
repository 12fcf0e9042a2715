"""A small pool of worker threads for the cold scan (the part of ``concurrent.futures`` the
scan uses: ``submit``, and tasks that say ``running``/``done``, ``cancel`` while pending and
give their ``result``).

Why not ``ThreadPoolExecutor``: importing ``concurrent.futures`` imports ``logging``,
``traceback``, ``queue`` and ``weakref`` on the report path, ~5 ms and ~1.5 MB of a cold
run's peak RSS (docs/performance.md, thirteenth session). Same behaviour where the scan
relies on it: tasks start in submission order, leaving the ``with`` block waits for every
submitted task (pending ones still run), a task's exception is raised by ``result()``.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

_PENDING, _RUNNING, _DONE, _CANCELLED = range(4)


class Task:
    """One submitted call; its state changes under the pool's lock."""

    __slots__ = ("_pool", "_fn", "_args", "_state", "_value", "_error")

    def __init__(self, pool: ThreadPool, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._pool = pool
        self._fn, self._args = fn, args
        self._state = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state >= _DONE

    def cancel(self) -> bool:
        """Take the task back if no worker has started it (True); False once started."""
        with self._pool._cond:
            if self._state == _PENDING:
                self._pool._pending.remove(self)
                self._state = _CANCELLED
                self._fn = self._args = None  # type: ignore[assignment]
            return self._state == _CANCELLED

    def result(self) -> Any:
        """The call's return value (waits for it); raises what the call raised."""
        cond = self._pool._cond
        with cond:
            while self._state < _DONE:
                cond.wait()
        if self._state == _CANCELLED:
            raise RuntimeError("the task was cancelled")
        if self._error is not None:
            raise self._error
        return self._value


class ThreadPool:
    """``workers`` threads named ``name_N`` taking tasks in submission order."""

    def __init__(self, workers: int, name: str = "tokmon-pool") -> None:
        self._cond = threading.Condition()
        self._pending: collections.deque[Task] = collections.deque()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}") for i in range(max(1, workers))
        ]
        self._started = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        task = Task(self, fn, args)
        with self._cond:
            if self._closing:
                raise RuntimeError("the pool is shut down")
            self._pending.append(task)
            self._cond.notify()
        if not self._started:
            self._started = True
            for t in self._threads:
                t.start()
        return task

    def _work(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._pending and not self._closing:
                    cond.wait()
                if not self._pending:
                    return
                task = self._pending.popleft()
                task._state = _RUNNING
                fn, args = task._fn, task._args
                task._fn = task._args = None  # type: ignore[assignment]
            try:
                value, error = fn(*args), None
            except BaseException as exc:  # raised again by result(), on the caller's thread
                value, error = None, exc
            del fn, args
            with cond:
                task._value, task._error = value, error
                task._state = _DONE
                cond.notify_all()
            del task, value, error

    def shutdown(self) -> None:
        """Let the workers finish every submitted task, then end them."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._started:
            for t in self._threads:
                t.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
