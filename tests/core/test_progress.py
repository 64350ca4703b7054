"""Progress of commands over many inputs: a line every LINE_EVERY seconds off a terminal, a bar on one, nothing when off."""

from __future__ import annotations

import pytest

from vislab.core import progress as P


def test_lines_off_a_terminal_with_count_rate_and_eta(monkeypatch, capsys):
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    with P.Tracker("predict", total=4, mode="auto") as p:  # stderr is captured: not a terminal
        for _ in range(4):
            p.advance()
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split("  ")[0] for ln in lines] == ["predict: 1/4 images", "predict: 2/4 images", "predict: 3/4 images", "predict: 4/4 images"]
    assert all("/s" in ln and "eta " in ln for ln in lines)
    assert lines[-1].endswith("eta 0:00")


def test_no_line_for_short_work_and_none_when_off(monkeypatch, capsys):
    list(P.track(range(50), "eval"))  # well under LINE_EVERY
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    list(P.track(range(50), "eval", mode="off"))
    assert capsys.readouterr().err == ""


def test_unknown_total_counts_without_eta(monkeypatch, capsys):
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    list(P.track(iter(range(2)), "apply", unit="files"))
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("apply: 2 files") and "eta" not in err


def test_a_bar_when_asked(capsys):
    with P.Tracker("export", total=2, unit="formats", mode="on") as p:
        p.advance(2)
    assert p.done == 2  # the bar is transient: drawn on stderr while it runs, gone after


def test_command_mode_is_checked():
    with pytest.raises(ValueError, match="expected auto, on or off, got 'sometimes'"):
        P.set_command_mode("sometimes")
