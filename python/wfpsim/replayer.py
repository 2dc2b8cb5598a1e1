"""`wfpsim.replay`: read a capture batch by batch into NBL chains, run a pipeline (native stages,
an optional Python callout, an optional inject function), write the result, and measure.

Memory stays bounded: each batch's chain is freed before the next is read.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wfpsim._core import CaptureReader, CaptureWriter, Chain
from wfpsim.errors import CaptureError, WfpError
from wfpsim.pipeline import Pipeline, parse_spec

# Exit codes the CLI returns (documented in `wfpsim --help`).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DAMAGED_INPUT = 3
EXIT_IO = 4
EXIT_CALLOUT = 5


@dataclass
class ReplaySummary:
    input: str
    output: str | None = None
    packets: int = 0
    bytes: int = 0
    batches: int = 0
    seconds: float = 0.0
    packets_per_s: float = 0.0
    gbit_per_s: float = 0.0
    records_written: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)
    callout: dict[str, Any] | None = None
    inject: dict[str, Any] | None = None
    checksum_verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str | None = None
    error_offset: int | None = None
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_callable(spec: str) -> Callable[..., Any]:
    """``module:function`` (or ``path/to/file.py:function``) → the callable."""
    if ":" not in spec:
        raise WfpError(f"callout {spec!r} must be module:function")
    mod_name, func_name = spec.rsplit(":", 1)
    if mod_name.endswith(".py"):
        path = Path(mod_name).resolve()
        sys.path.insert(0, str(path.parent))
        mod_name = path.stem
    module = importlib.import_module(mod_name)
    try:
        return getattr(module, func_name)
    except AttributeError as e:
        raise WfpError(f"module {mod_name!r} has no {func_name!r}") from e


def _output_format(output: str | None, requested: str | None) -> str:
    if requested:
        return requested
    return "pcapng" if output and output.endswith(".pcapng") else "pcap"


def replay(
    input: str | Path,  # noqa: A002
    output: str | Path | None = None,
    *,
    pipeline: str | Pipeline | None = None,
    callout: Callable[..., Any] | str | None = None,
    per_packet: bool = True,
    inject: Callable[[Chain], dict[str, Any]] | None = None,
    verify: bool = True,
    output_format: str | None = None,
    batch_packets: int = 65536,
    batch_bytes: int = 1 << 20,
    progress: Callable[[ReplaySummary], None] | None = None,
) -> ReplaySummary:
    """Replays a capture; returns the summary (never raises for damaged input: see `.error`)."""
    if isinstance(callout, str):
        callout = load_callable(callout)
    if isinstance(pipeline, Pipeline):
        pipe = pipeline
    else:
        stages = parse_spec(pipeline)
        if verify:
            stages.append(("verify-checksums", {}))
        pipe = Pipeline(stages, callout, per_packet)
    summary = ReplaySummary(str(input), str(output) if output else None)
    reader = CaptureReader(str(input), batch_packets, batch_bytes)
    writer = (
        CaptureWriter(str(output), _output_format(str(output), output_format)) if output else None
    )
    inject_totals: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        while True:
            try:
                chain = reader.next_chain()
            except CaptureError as e:
                summary.error = str(e)
                summary.error_offset = getattr(e, "offset", None)
                summary.exit_code = EXIT_DAMAGED_INPUT
                break
            if chain is None:
                break
            with chain:
                nbls, nbs, nbytes = chain.stats()
                try:
                    pipe.run(chain, summary.packets)
                    if inject is not None:
                        for k, v in inject(chain).items():
                            inject_totals[k] = inject_totals.get(k, 0) + v
                except WfpError:
                    raise
                except Exception as e:  # a user callout failed: report it, keep what was written
                    summary.error = (
                        f"callout failed on batch {summary.batches}: {type(e).__name__}: {e}"
                    )
                    summary.exit_code = EXIT_CALLOUT
                    break
                if writer is not None:
                    summary.records_written += writer.write_chain(chain, inject is not None)
                summary.packets += nbs
                summary.bytes += nbytes
                summary.batches += 1
            if progress is not None:
                _finish(summary, start, pipe, inject_totals)
                progress(summary)
    finally:
        reader.close()
        if writer is not None:
            writer.close()
    _finish(summary, start, pipe, inject_totals)
    return summary


def _finish(summary: ReplaySummary, start: float, pipe: Pipeline, inject_totals: dict) -> None:
    summary.seconds = max(time.perf_counter() - start, 1e-9)
    summary.packets_per_s = summary.packets / summary.seconds
    summary.gbit_per_s = summary.bytes * 8 / summary.seconds / 1e9
    summary.stages = [dict(s) for s in pipe.stats]
    for s in pipe.stats:
        if s["stage"] == "verify-checksums":
            summary.checksum_verdicts = {
                "ip": dict(s.get("ip_verdicts", {})),
                "transport": dict(s.get("transport_verdicts", {})),
            }
    if pipe.callout is not None:
        summary.callout = dict(pipe.callout_stats)
    if inject_totals:
        summary.inject = dict(inject_totals)


__all__ = ["ReplaySummary", "replay", "load_callable"]
