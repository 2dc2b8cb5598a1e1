"""The `wfpsim` command line: `replay`, `inspect` and `demo`.

Exit codes: 0 success; 2 bad usage; 3 damaged input (the packets before the damage were
processed and written); 4 an input or output file could not be opened or written; 5 a Python
callout raised.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import struct
import sys

import wfpsim
from wfpsim.errors import CaptureError, WfpError
from wfpsim.replayer import (
    EXIT_CALLOUT,
    EXIT_DAMAGED_INPUT,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    ReplaySummary,
    load_callable,
    replay,
)

EPILOG = """exit codes: 0 success; 2 bad usage; 3 damaged input (packets before the damage
were processed and written); 4 a file could not be opened or written; 5 a Python callout raised."""


def _progress_printer(stream):
    def show(s: ReplaySummary) -> None:
        stream.write(
            f"\r  {s.packets:>12,} packets  {s.bytes / 1e6:>10.1f} MB  "
            f"{s.packets_per_s / 1e6:>7.2f} Mpkt/s  {s.gbit_per_s:>6.2f} Gbit/s"
        )
        stream.flush()

    return show


def _print_summary(s: ReplaySummary, out) -> None:
    print(f"input            {s.input}", file=out)
    if s.output:
        print(f"output           {s.output} ({s.records_written:,} records)", file=out)
    print(f"packets          {s.packets:,} in {s.batches} batches", file=out)
    print(f"bytes            {s.bytes:,}", file=out)
    print(
        f"rate             {s.packets_per_s:,.0f} packets/s, {s.gbit_per_s:.3f} Gbit/s "
        f"({s.seconds:.3f} s)",
        file=out,
    )
    for st in s.stages:
        line = f"stage {st['stage']:<16} applied {st['applied']:,}  skipped {st['skipped']:,}  errors {st['errors']:,}"
        if st.get("first_error"):
            line += f"  (first: packet {st['first_error'][0]}: {st['first_error'][1]})"
        print(line, file=out)
    if s.callout:
        print(f"callout          {s.callout}", file=out)
    if s.inject:
        print(f"inject           {s.inject}", file=out)
    for layer, counts in s.checksum_verdicts.items():
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
        print(f"checksums {layer:<9} {shown or '-'}", file=out)


def cmd_replay(args: argparse.Namespace) -> int:
    callout = None
    if args.callout:
        try:
            callout = load_callable(args.callout)
        except (ImportError, WfpError) as e:
            print(f"wfpsim: cannot load callout {args.callout!r}: {e}", file=sys.stderr)
            return EXIT_USAGE
    inject = None
    if args.inject:
        try:
            from wfpsim.replay_inject import make_injector

            inject = make_injector(args.inject)
        except (ImportError, WfpError, ValueError) as e:
            print(f"wfpsim: --inject {args.inject}: {e}", file=sys.stderr)
            return EXIT_USAGE
    if not os.path.isfile(args.input):
        print(f"wfpsim: cannot read {args.input}: no such file", file=sys.stderr)
        return EXIT_IO
    show = sys.stderr.isatty() and not args.json and not args.quiet
    try:
        summary = replay(
            args.input,
            args.output,
            pipeline=args.pipeline,
            callout=callout,
            per_packet=not args.per_batch,
            inject=inject,
            verify=not args.no_verify,
            output_format=args.format,
            batch_packets=args.batch,
            progress=_progress_printer(sys.stderr) if show else None,
        )
    except CaptureError as e:  # not a capture at all (bad magic, damaged file header)
        print(f"wfpsim: {e}", file=sys.stderr)
        return EXIT_DAMAGED_INPUT
    except WfpError as e:
        print(f"wfpsim: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"wfpsim: {e}", file=sys.stderr)
        return EXIT_IO
    if show:
        sys.stderr.write("\n")
    if args.json:
        json.dump(summary.to_dict(), sys.stdout, default=str)
        sys.stdout.write("\n")
    elif not args.quiet:
        _print_summary(summary, sys.stdout)
    if summary.error:
        print(f"wfpsim: {summary.error}", file=sys.stderr)
    return summary.exit_code


def _addr_port(ip: bytes, version: int, transport_offset: int, proto: int) -> tuple[str, str]:
    if version == 4 and len(ip) >= 20:
        src, dst = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
    elif version == 6 and len(ip) >= 40:
        src, dst = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
    else:
        return "?", "?"
    if proto in (6, 17) and transport_offset and len(ip) >= transport_offset + 4:
        sp, dp = struct.unpack_from("!HH", ip, transport_offset)
        return f"{src}:{sp}", f"{dst}:{dp}"
    return str(src), str(dst)


PROTOCOLS = {
    1: "ICMP",
    6: "TCP",
    17: "UDP",
    58: "ICMPv6",
    50: "ESP",
    51: "AH",
    2: "IGMP",
    132: "SCTP",
    47: "GRE",
}


def inspect_lines(path: str):
    """Yields one line per packet: index, time, link, lengths, addresses, protocol, verdicts."""
    reader = wfpsim._core.CaptureReader(path)
    index = 0
    for chain in reader:
        with chain:
            for nbl in chain:
                for nb in nbl.net_buffers:
                    frame = nb.tobytes()
                    head = f"{index:>6} {nbl.timestamp_ns / 1e9:>18.9f} link={nbl.link_type:<4} {len(frame):>5}/{nbl.orig_len:<5}"
                    index += 1
                    found = wfpsim._core.network_layer(nbl.link_type, frame)
                    if found is None:
                        yield f"{head} non-IP"
                        continue
                    offset, _version = found
                    with wfpsim.NetBufferList.from_bytes(frame[offset:]) as ip:
                        try:
                            v = ip.FirstNetBuffer.verify_checksums(info=0)
                        except WfpError as e:
                            yield f"{head} malformed: {e}"
                            continue
                        s = v.summary
                        src, dst = _addr_port(
                            frame[offset:], s.ip_version, s.transport_offset, s.transport_protocol
                        )
                        proto = PROTOCOLS.get(s.transport_protocol, str(s.transport_protocol))
                        frag = " frag" if s.is_fragment else ""
                        trunc = " truncated" if s.truncated else ""
                        yield (
                            f"{head} IPv{s.ip_version} {src} > {dst} {proto}{frag}{trunc} "
                            f"ip={v.ip.name.lower()} {proto.lower()}={v.transport.name.lower()}"
                        )


def cmd_inspect(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.file):
        print(f"wfpsim: cannot read {args.file}: no such file", file=sys.stderr)
        return EXIT_IO
    try:
        for line in inspect_lines(args.file):
            print(line)
    except CaptureError as e:
        print(f"wfpsim: {e}", file=sys.stderr)
        return EXIT_DAMAGED_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as e:
        print(f"wfpsim: {e}", file=sys.stderr)
        return EXIT_IO
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from wfpsim.demo import run_demo

    return run_demo(args.file)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wfpsim",
        description="Windows Filtering Platform packet-path simulator.",
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{replay,inspect,demo}")
    r = sub.add_parser(
        "replay",
        help="replay a capture through NBLs, a pipeline and an inject function",
        epilog=EPILOG,
    )
    r.add_argument("input", help="pcap or pcapng file")
    r.add_argument("-o", "--output", help="write the result here (.pcapng → pcapng, else pcap)")
    r.add_argument(
        "--pipeline", help="native stages, e.g. strip-link,nat:src=10.0.0.1,ttl,fix-checksums"
    )
    r.add_argument(
        "--callout", help="module:function called with each NBL (or each chain with --per-batch)"
    )
    r.add_argument("--per-batch", action="store_true", help="call the callout once per batch chain")
    r.add_argument(
        "--inject", help="inject every packet with this function (e.g. FwpsInjectNetworkSendAsync0)"
    )
    r.add_argument(
        "--format", choices=["pcap", "pcapng"], help="output format (default from -o's extension)"
    )
    r.add_argument(
        "--batch",
        type=int,
        default=65536,
        help="at most this many packets per batch (default 65536; batches also stop at 1 MiB, which keeps them in cache)",
    )
    r.add_argument("--no-verify", action="store_true", help="skip the checksum-verdict count")
    r.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    r.add_argument("-q", "--quiet", action="store_true", help="no summary, no progress")
    r.set_defaults(func=cmd_replay)
    i = sub.add_parser(
        "inspect", help="one line per packet: addresses, protocol, checksum verdicts"
    )
    i.add_argument("file")
    i.set_defaults(func=cmd_inspect)
    d = sub.add_parser("demo", help="a short tour of the NBL engine on a shipped capture")
    d.add_argument("file", nargs="?", default=None)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "batch", 1) <= 0:
        print("wfpsim: --batch must be positive", file=sys.stderr)
        return EXIT_USAGE
    return args.func(args)


def entry() -> None:
    sys.exit(main())


__all__ = ["main", "entry", "build_parser", "EXIT_CALLOUT"]
