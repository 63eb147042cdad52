"""Progress reporting: log lines without a terminal (every N items, and on a timer), steps, summaries."""

import io
import time

from nerfdata.progress import Reporter, format_rate, format_seconds


def lines(log: io.StringIO) -> list[str]:
    return log.getvalue().splitlines()


def test_without_a_terminal_a_line_every_n_items_with_rates():
    log = io.StringIO()
    with Reporter(
        "render",
        6,
        "views",
        outcomes=("rendered", "rejected"),
        work_unit="rays",
        every=2,
        stream=log,
        seconds=60,
    ) as progress:
        for index in range(6):
            progress.advance("rejected" if index == 3 else "rendered", work=100, reason="inside geometry")
    logged = lines(log)
    assert [line.split(",")[0] for line in logged] == [
        "render: 2/6 views (33%)",
        "render: 4/6 views (67%)",
        "render: 6/6 views (100%)",
    ]
    assert (
        "3 rendered, 1 rejected" in logged[1]
        and "views/s" in logged[1]
        and "rays/s" in logged[1]
        and "left" in logged[1]
    )
    assert "left" not in logged[2]


def test_a_slow_item_still_logs_on_the_timer():
    log = io.StringIO()
    with Reporter("inerf solve", 2, "targets", stream=log, seconds=0.05) as progress:
        with progress.steps("target 0", 300) as steps:
            steps.update(120, loss=0.0123)
            time.sleep(0.3)
        progress.advance()
    assert lines(log)[0].startswith("inerf solve: 0/2 targets (0%)")
    assert "; target 0: 120/300 steps, loss 0.0123" in lines(log)[0]


def test_summary_counts_outcomes_reasons_and_earlier_runs(capsys):
    earlier = "kept from an earlier run"
    progress = Reporter(
        "render",
        5,
        "views",
        outcomes=("rendered", earlier, "rejected"),
        done={earlier: 2},
        work_unit="rays",
        stream=io.StringIO(),
    )
    with progress:
        progress.advance("rendered", work=1000)
        progress.advance("rejected", reason="inside geometry")
        progress.advance("rejected", reason="inside geometry")
    (line,) = progress.summary()
    assert (
        line.startswith("render: 5 views in ")
        and "1 rendered, 2 kept from an earlier run, 2 rejected (2 inside geometry)" in line
    )
    assert "rays/s" in line and capsys.readouterr().out == line + "\n"
    kept = Reporter(
        "render", 3, "views", outcomes=("rendered", earlier), done={earlier: 3}, stream=io.StringIO()
    )
    with kept:
        pass
    assert kept.summary()[0].startswith("render: all 3 views kept from an earlier run; nothing left to do")


def test_disabled_is_silent_and_a_terminal_draws_a_bar(capsys):
    log = io.StringIO()
    with Reporter("train", 2, "steps", enabled=False, stream=log, every=1) as progress:
        progress.advance()
        progress.advance()
    assert log.getvalue() == "" and progress.summary() and capsys.readouterr().out == ""
    terminal = io.StringIO()
    with Reporter("train", 2, "steps", stream=terminal, terminal=True) as progress:
        progress.advance(status="loss 0.1")
        progress.advance(status="loss 0.05")
    assert "train" in terminal.getvalue() and "2/2" in terminal.getvalue()


def test_formats():
    assert format_rate(35210.0, "rays") == "35.2k rays/s" and format_rate(2.5e6, "rays") == "2.5M rays/s"
    assert format_seconds(59.94) == "59.9 s" and format_seconds(61) == "1 min 01 s"
