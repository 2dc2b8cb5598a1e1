"""The `wfpsim` command: exit codes, JSON output, damaged inputs, inspect, callouts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HTTP = Path(__file__).resolve().parent.parent / "data" / "http.pcap"
HTTP_PACKETS = 43


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wfpsim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_replay_and_inspect():
    r = run("--help")
    assert r.returncode == 0
    assert "replay" in r.stdout and "inspect" in r.stdout and "exit codes" in r.stdout


def test_replay_json_reports_every_packet(tmp_path):
    out = tmp_path / "o.pcap"
    r = run(
        "replay", str(HTTP), "-o", str(out), "--pipeline", "strip-link,ttl,fix-checksums", "--json"
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["packets"] == HTTP_PACKETS and summary["records_written"] == HTTP_PACKETS
    assert summary["checksum_verdicts"]["transport"]["valid"] == HTTP_PACKETS
    assert [s["stage"] for s in summary["stages"]][:3] == ["strip-link", "ttl", "fix-checksums"]
    assert out.stat().st_size > 24


def test_damaged_input_exit_code_message_and_partial_output(tmp_path):
    data = HTTP.read_bytes()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(data[:15000])
    out = tmp_path / "o.pcap"
    r = run("replay", str(bad), "-o", str(out), "--json")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "truncated" in lines[0] and "offset" in lines[0]
    summary = json.loads(r.stdout)
    assert 0 < summary["packets"] < HTTP_PACKETS
    assert summary["records_written"] == summary["packets"]
    r2 = run("replay", str(out), "--json")
    assert json.loads(r2.stdout)["packets"] == summary["packets"]


def test_not_a_capture_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"definitely not a capture file")
    r = run("replay", str(junk))
    assert r.returncode == 3 and "magic" in r.stderr and "Traceback" not in r.stderr
    r = run("replay", str(tmp_path / "missing.pcap"))
    assert r.returncode == 4 and "Traceback" not in r.stderr


def test_bad_pipeline_is_a_usage_error():
    r = run("replay", str(HTTP), "--pipeline", "strip-link,teleport")
    assert r.returncode == 2 and "unknown pipeline stage 'teleport'" in r.stderr
    r = run("replay", str(HTTP), "--pipeline", "nat:src=300.1.2.3")
    assert r.returncode == 2 and "not an IPv4 or IPv6 address" in r.stderr


def test_inspect_prints_one_line_per_packet():
    r = run("inspect", str(HTTP))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == HTTP_PACKETS
    assert "TCP" in lines[0] and "ip=valid" in lines[0] and "tcp=valid" in lines[0]


@pytest.fixture
def callout_module(tmp_path):
    (tmp_path / "my_callouts.py").write_text(
        textwrap.dedent(
            """
            seen = []
            def count(nbl):
                seen.append(nbl.FirstNetBuffer.DataLength)
            def explode(nbl):
                raise RuntimeError("boom")
            def batch(chain):
                print("batch", len(chain))
            """
        )
    )
    return tmp_path


def test_callout_per_packet_and_failure_exit_code(callout_module):
    r = run("replay", str(HTTP), "--callout", "my_callouts:count", "--json", cwd=callout_module)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["callout"]["calls"] == HTTP_PACKETS
    r = run("replay", str(HTTP), "--callout", "my_callouts:explode", cwd=callout_module)
    assert r.returncode == 5 and "boom" in r.stderr and "Traceback" not in r.stderr
    r = run("replay", str(HTTP), "--callout", "my_callouts:nope", cwd=callout_module)
    assert r.returncode == 2
