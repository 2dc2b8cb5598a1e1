"""wfpsim."""
