"""Working-hours windows over a time range, and a map from "active time" to wall time.

Sessions are laid out on the concatenation of the windows, so everything between two
windows is idle: night gaps are longer than 5 hours (billing-block gaps), lunch breaks shorter.
"""

from __future__ import annotations

import bisect
import random
import time

HOUR = 3_600_000  # ms
MINUTE = 60_000


class Timeline:
    """Active windows ``[(start_ms, end_ms)]`` (sorted, disjoint) ending at ``end_ms``."""

    def __init__(self, rng: random.Random, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        wins: list[tuple[int, int]] = []
        day0 = start_ms // (24 * HOUR) * (24 * HOUR)
        day = day0
        while day < end_ms:
            last_day = day + 24 * HOUR > end_ms
            if last_day or rng.random() > 0.12:
                j = rng.randint(-60, 60) * MINUTE
                cand = [(day + 7 * HOUR + 30 * MINUTE + j, day + 12 * HOUR + j)]
                cand.append((day + 13 * HOUR + j, day + 18 * HOUR + 30 * MINUTE + j))
                if rng.random() < 0.4:
                    cand.append((day + 20 * HOUR + j, day + 23 * HOUR + j))
                for a, b in cand:
                    a, b = max(a, start_ms), min(b, end_ms)
                    if b - a >= 10 * MINUTE:
                        wins.append((a, b))
            day += 24 * HOUR
        # The last window always reaches ``end`` so a corpus ending "now" has an active block.
        tail = (max(start_ms, end_ms - 90 * MINUTE), end_ms)
        while wins and wins[-1][1] >= tail[0]:
            tail = (min(tail[0], wins[-1][0]), end_ms)
            wins.pop()
        wins.append(tail)
        self.windows = wins
        self.cum: list[int] = []
        acc = 0
        for a, b in wins:
            self.cum.append(acc)
            acc += b - a
        self.active_ms = acc

    def wall(self, pos: int) -> int:
        """Wall-clock ms of active position ``pos`` (clamped to the range)."""
        pos = min(max(pos, 0), self.active_ms)
        i = bisect.bisect_right(self.cum, pos) - 1
        a, b = self.windows[i]
        return min(a + (pos - self.cum[i]), b)


def iso(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC), the transcript timestamp format."""
    s, m = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{m:03d}Z"


def day_of(ms: int) -> str:
    """UTC date ``YYYY-MM-DD`` of ``ms``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))
