"""`python -m wfpsim` is the `wfpsim` command."""

from wfpsim.cli import entry

entry()
