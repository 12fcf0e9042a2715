"""Segments and per-format rendering of ``tokmon line`` (pure functions, hand-made snapshots)."""

from __future__ import annotations

import pytest

from tokmon.statusline import formats

NOW = 1_800_000_000.0


def snap(**over):
    base = {
        "v": 1,
        "generatedAt": NOW - 5,
        "settings": {"warningPercent": 80.0, "criticalPercent": 95.0, "staleSeconds": 10.0,
                     "tokenLimit": 5_000_000, "tokenLimitSource": "config"},
        "block": {"start": NOW - 3600, "end": NOW + 4 * 3600 - 120, "lastEntry": NOW - 60,
                  "totalTokens": 1_234_567, "costUSD": 4.5, "burnLevel": "high",
                  "tokensPerMinute": 2000.0, "costPerHour": 3.0, "limitPercent": 24.7},
        "today": {"date": "2027-01-15", "until": NOW + 3600, "totalTokens": 2_000_000,
                  "totalCost": 12.345},
        "sessions": [
            {"sessionId": "s-old", "projectPath": "/home/u/proj", "projectName": "proj",
             "title": None, "name": None, "totalCost": 9.0, "totalTokens": 1,
             "lastActivity": NOW - 6 * 3600},
            {"sessionId": "s-1", "projectPath": "/home/u/proj", "projectName": "proj",
             "title": "Fix the parser", "name": None, "totalCost": 1.2, "totalTokens": 10,
             "lastActivity": NOW - 100},
        ],
        "official": None,
        "watch": [],
        "watchComplete": True,
    }  # fmt: skip
    base.update(over)
    return base


def keys(segs):
    return [s["key"] for s in segs]


def test_number_formatting():
    assert formats.fmt_tokens(999) == "999"
    assert formats.fmt_tokens(1234) == "1.23k"  # the shared rule (tokmon/fmt.py)
    assert formats.fmt_tokens(1_234_567) == "1.23M"
    assert formats.fmt_tokens(250_000_000) == "250M"
    assert formats.fmt_cost(4.5) == "$4.50"
    assert formats.fmt_cost(123.4) == "$123.40"
    assert formats.fmt_duration(2 * 3600 + 13 * 60 + 29) == "2h13m"
    assert formats.fmt_duration(45 * 60) == "45m"
    assert formats.fmt_duration(10) == "0m"
    assert formats.fmt_age(30) == "now" and formats.fmt_age(190) == "3m"


def test_default_line_with_estimate_and_project_session():
    segs = formats.build_segments(snap(), NOW, cwd="/home/u/proj/src")
    assert keys(segs) == ["block", "today", "session"]
    # 1,234,567 / 5,000,000 = 24.7 % -> "~25%" (estimate); 4h - 2 min left
    assert formats.render(segs, "plain") == (
        "5h 1.23M $4.50 ~25% 3h58m left █ | today $12.35 | Fix the parser $1.20"
    )
    assert segs[0]["level"] == "normal"


def test_thresholds_and_overrides():
    s = snap()
    s["block"]["totalTokens"] = 4_100_000  # 82 %
    assert formats.build_segments(s, NOW)[0]["level"] == "warning"
    s["block"]["totalTokens"] = 4_800_000  # 96 %
    assert formats.build_segments(s, NOW)[0]["level"] == "critical"
    s["settings"]["criticalPercent"] = 99.0
    assert formats.build_segments(s, NOW)[0]["level"] == "warning"


def test_official_utilisation_wins_and_is_labelled_with_its_age():
    official = {"sessionId": "s-1", "observedAt": NOW - 180,
                "fiveHour": {"usedPercentage": 97.0, "resetsAt": NOW + 600},
                "sevenDay": {"usedPercentage": 12.4, "resetsAt": NOW + 86400,
                             "observedAt": NOW - 7200},
                "contextWindow": {"usedPercentage": 41.0}}  # fmt: skip
    segs = formats.build_segments(snap(official=official), NOW, cwd="/home/u/proj")
    text = formats.render(segs, "plain")
    assert "5h 1.23M $4.50 97%[3m] 3h58m left" in text
    assert "~" not in text.split("|")[0]
    assert "7d 12%[2h]" in text
    assert "ctx 41%" in text  # the official record belongs to the matched session
    assert segs[0]["level"] == "critical"  # 97 % official, although the estimate is 25 %


def test_expired_official_window_falls_back_to_the_estimate():
    official = {"observedAt": NOW - 7200, "fiveHour": {"usedPercentage": 99.0,
                                                      "resetsAt": NOW - 1}}  # fmt: skip
    segs = formats.build_segments(snap(official=official), NOW)
    assert "~25%" in segs[0]["text"] and segs[0]["level"] == "normal"


def test_time_passing_ends_block_day_and_session():
    later = NOW + 5 * 3600
    segs = formats.build_segments(snap(), later, cwd="/home/u/proj")
    assert formats.render(segs, "plain") == "5h idle | today $0.00"


def test_cwd_matching_is_by_path_prefix_not_substring():
    assert formats.match_session(snap(), NOW, "/home/u/project-two", None) is None
    assert formats.match_session(snap(), NOW, "/home/u/proj", None)["sessionId"] == "s-1"
    assert formats.match_session(snap(), NOW, None, "s-old")["sessionId"] == "s-old"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("tmux", "#[fg=red,bold]5h 4.80M $4.50 ~96% 3h58m left █#[default]"),
        ("bash", "\x01\x1b[31;1m\x025h 4.80M $4.50 ~96% 3h58m left █\x01\x1b[0m\x02"),
        ("zsh", "%{\x1b[31;1m%}5h 4.80M $4.50 ~96%% 3h58m left █%{\x1b[0m%}"),
        ("fish", "\x1b[31;1m5h 4.80M $4.50 ~96% 3h58m left █\x1b[0m"),
        ("starship", "\x1b[31;1m5h 4.80M $4.50 ~96% 3h58m left █\x1b[0m"),
        ("plain", "5h 4.80M $4.50 ~96% 3h58m left █"),
    ],
)
def test_critical_styling_in_each_formats_own_syntax(fmt, expected):
    s = snap()
    s["block"]["totalTokens"] = 4_800_000
    segs = formats.build_segments(s, NOW)
    assert formats.render(segs, fmt).split(formats.escape(" | ", fmt))[0] == expected


def test_escaping_of_the_formats_special_characters():
    s = snap()
    s["sessions"][1]["title"] = "issue #12 at 100%"
    segs = formats.build_segments(s, NOW, cwd="/home/u/proj")
    assert "issue ##12 at 100%" in formats.render(segs, "tmux")
    assert "issue #12 at 100%%" in formats.render(segs, "zsh")


def test_custom_styles_and_stale_mark():
    s = snap()
    s["block"]["totalTokens"] = 4_100_000
    segs = formats.build_segments(s, NOW)
    out = formats.render(segs, "tmux", {"warning": "colour208", "stale": "fg=grey"}, stale=True)
    assert out.startswith("#[fg=colour208]5h 4.10M")
    assert out.endswith("#[fg=grey]*#[default]")
    assert formats.render(segs, "plain", stale=True).endswith("today $12.35*")


def test_templates():
    segs = formats.build_segments(snap(), NOW, cwd="/home/u/proj")
    assert formats.render(segs, "plain", template="{block_cost} / {time_left} {today}") == (
        "$4.50 / 3h58m today $12.35"
    )
    # missing segments render empty and whitespace collapses
    assert formats.render(segs, "plain", template="{seven_day} {today_cost}") == "$12.35"
    with pytest.raises(formats.TemplateError, match="unknown template field 'nope'"):
        formats.render(segs, "plain", template="{nope}")


def test_no_snapshot_shows_only_claude_figures():
    claude = {"official": {"observedAt": NOW, "fiveHour": {"usedPercentage": 10.0,
                                                           "resetsAt": NOW + 60}},
              "session": {"name": "my session", "costUSD": 0.5}, "context": None}  # fmt: skip
    segs = formats.build_segments({}, NOW, claude=claude)
    assert formats.render(segs, "plain") == "5h 10%[now] | my session $0.50"


def test_json_payload_shape():
    segs = formats.build_segments(snap(), NOW)
    data = formats.json_payload(segs, snap(), NOW, stale=False)
    assert data["text"].startswith("5h 1.23M") and data["ageSeconds"] == 5.0
    assert data["segments"][0]["fields"]["block_percent"] == "~25%"
    assert formats.json_payload(None, None, NOW, True)["placeholder"] is True


def test_fit_drops_low_priority_segments_first():
    official = {"observedAt": NOW, "sevenDay": {"usedPercentage": 5.0, "resetsAt": NOW + 99}}
    segs = formats.build_segments(snap(official=official), NOW, cwd="/home/u/proj")
    assert keys(segs) == ["block", "seven_day", "today", "session"]
    full = formats.render(segs, "plain")
    assert formats.fit(segs, len(full)) == segs
    assert keys(formats.fit(segs, len(full) - 1)) == ["block", "seven_day", "session"]
    assert keys(formats.fit(segs, 40)) == ["block"]  # the block itself is never dropped
    assert formats.fit(segs, None) == segs
