"""The README's "Writing a callout" example and the demos of the driver ports run and print what
they say."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_writing_a_callout_example(no_leaks, capsys):
    exec(compile(readme_block("Writing a callout"), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "absorbed",
        "['FWPS_PACKET_NOT_INJECTED', 'FWPS_PACKET_INJECTED_BY_SELF', 'completed 0x00000000']",
        "b'hello' ['wire']",
    ]


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("inspect_driver.py", "wire: [b'hello']"),
        ("ddproxy_driver.py", "remote_address='192.0.2.50', remote_port=53"),
        ("stmedit_driver.py", "the application reads b'it is sunny today'"),
        ("wfpsampler_driver.py", "received: [b'hello']"),
    ],
)
def test_driver_demos(no_leaks, capsys, example, expected):
    runpy.run_path(str(ROOT / "examples" / example))["demo"]()
    assert expected in capsys.readouterr().out
