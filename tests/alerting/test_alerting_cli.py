"""`civic alerts ...` as a user runs it, against a real alerting gRPC server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from civic.listening.v1 import alerting_pb2
from tests.alerting.helpers import ANGER, HOUR, MONDAY, Running, fire, rule, toned

pytestmark = pytest.mark.slow  # every test runs `civic` in its own process

CIVIC = str(Path(sys.executable).with_name("civic"))


def civic(target: str, *args: str, timeout: float = 60, columns: int = 250) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVIC, "alerts", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CIVIC_ALERTING_TARGET": target, "COLUMNS": str(columns)})


def test_list_ack_assign_resolve_silence_watch(start: Callable[..., Running]) -> None:
    running = start()
    running.put(rule("holes", "query_match", query="pothole", labels={"team": "roads"}))
    (alert,) = fire(running, range(1))
    target = running.target
    assert alert.id in civic(target, "--tenant", "city-a").stdout  # the listing of before the subcommands
    assert alert.id in civic(target, "list", "-t", "city-a", "--state", "firing").stdout
    acked = civic(target, "ack", alert.id, "-t", "city-a", "--by", "ana")
    assert acked.returncode == 0 and "acknowledged by ana" in acked.stdout
    assert "assigned to roads" in civic(target, "assign", alert.id, "roads", "-t", "city-a", "--by", "ana").stdout
    made = civic(target, "silence", "-t", "city-a", "--by", "ana", "-m", "team=roads", "-m", "rule=~hol.*",
                 "--for", "1h", "--comment", "works")
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split()[1]
    listed = civic(target, "list", "-t", "city-a").stdout
    assert "ack ana" in listed and "-> roads" in listed and "silenced" in listed
    assert "ended" in civic(target, "silence", "-t", "city-a", "--by", "ana", "-m", "x=y", "--expire",
                            silence_id).stdout
    assert "resolved by ben" in civic(target, "resolve", alert.id, "-t", "city-a", "--by", "ben").stdout
    stored = running.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant="city-a")).alerts[0]
    assert (stored.acknowledged_by, stored.assignee, stored.resolved_by) == ("ana", "roads", "ben")
    lines = watched(target, 3, "-t", "city-a", "--after", "1")
    assert [line.split()[3] for line in lines] == ["acknowledged", "assigned", "resolved"]
    assert lines[0].startswith("2 ")


def watched(target: str, count: int, *args: str, limit_s: float = 60) -> list[str]:
    """The first `count` lines `civic alerts watch` prints (it streams until stopped): read as they come,
    however long the command takes to start, then the process is stopped."""
    watch = subprocess.Popen([CIVIC, "alerts", "watch", *args], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "CIVIC_ALERTING_TARGET": target, "COLUMNS": "250"})
    stopper = threading.Timer(limit_s, watch.kill)
    stopper.start()
    assert watch.stdout is not None
    try:
        lines: list[str] = []
        while len(lines) < count and (line := watch.stdout.readline()):
            lines.append(line.rstrip("\n"))
        return lines
    finally:
        stopper.cancel()
        watch.kill()
        watch.wait()
        watch.stdout.close()


def test_errors_are_one_line_and_exit_one(start: Callable[..., Running]) -> None:
    target = start().target
    missing = civic(target, "ack", "nope", "-t", "city-a", "--by", "ana")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr and len(missing.stderr.splitlines()) == 1
    bad = civic(target, "silence", "-t", "city-a", "--by", "ana", "-m", "team~roads")
    assert bad.returncode == 1 and "--match 'team~roads'" in bad.stderr
    nobody = civic(target, "resolve", "x", "-t", "city-a", "--by", " ")
    assert nobody.returncode == 1 and "INVALID_ARGUMENT: by" in nobody.stderr
    down = civic("127.0.0.1:9", "list", "-t", "city-a")
    assert down.returncode == 1 and "civic up" in down.stderr
    assert civic(target).returncode == 1


def test_rules_show_their_kinds_and_the_queue_shows_why(start: Callable[..., Running]) -> None:
    running = start()
    running.put(
        rule("anger", "anger_surge", query="metro", threshold=30, min_posts=20),
        rule("metro", "query_match", query="metro", threshold=3, severity=alerting_pb2.SEVERITY_CRITICAL),
    )
    listed = civic(running.target, "rules", "-t", "city-a")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("anger" in line and "anger_surge" in line and "30 points more anger" in line for line in lines)
    assert any("query_match" in line and "3 posts" in line and "critical" in line for line in lines)
    rude = [toned(f"r{i}", MONDAY + HOUR * i / 4, ANGER, text="metro staff are idiots", offensive=True,
                  topic="transit") for i in range(2)]
    running.evaluate([*rude, toned("calm", MONDAY + HOUR / 8, text="metro late")])
    queue = civic(running.target, "list", "-t", "city-a", columns=400).stdout
    # abuse: ln(1 + 2) / ln(1 + 10) x 0.15 = 6.9 points; severity: critical, 1.0 x 0.15.
    assert "severity +15, velocity +12, abuse +7 (2 offensive posts about the agency's topics (transit 2), " \
           "e.g. mastodon/r0, mastodon/r1)" in queue
    assert "No rules for city-b." in civic(running.target, "rules", "-t", "city-b").stdout
