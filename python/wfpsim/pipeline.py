"""Replay pipelines: native Rust stages plus optional Python stages, built from a spec string.

Spec syntax (the CLI's ``--pipeline``): stages separated by commas, parameters after colons::

    strip-link,nat:src=10.0.0.1,nat:sport=4000,ttl,fix-checksums

Stages (all native, i.e. run in Rust over the whole chain with the GIL released):

==================  ============================================================
``strip-link``      advance past the link header to the IP header (record → raw IP)
``push-eth``        prepend an Ethernet header (``:src=02:00:00:00:00:01:dst=...``)
``vlan-pop``        remove the outer 802.1Q/802.1ad tag
``vlan-push:TCI``   insert an 802.1Q tag
``nat:src=A``       rewrite the source (``dst=A`` destination) address, RFC 1624 checksums;
                    ``from=B`` limits it to packets whose address is B
``nat:sport=P``     rewrite the source (``dport=P`` destination) TCP/UDP port
``ttl``             decrement the IPv4 TTL / IPv6 hop limit
``fix-checksums``   recompute the IPv4 header and transport checksums (offload-aware)
``verify-checksums``  count checksum verdicts
==================  ============================================================

NAT, TTL and checksum stages need data that starts at the IP header: put ``strip-link`` first
for captures with a link layer (raw-IP captures need nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfpsim._core import Chain, NativePipeline, NetBufferList
from wfpsim.errors import InvalidParameterError

NATIVE_STAGES = (
    "strip-link",
    "push-eth",
    "vlan-pop",
    "vlan-push",
    "nat-addr",
    "nat-port",
    "ttl",
    "fix-checksums",
    "verify-checksums",
)


def _mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise InvalidParameterError(f"{text!r} is not a MAC address (six hex bytes)")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError as e:
        raise InvalidParameterError(f"{text!r} is not a MAC address") from e


def _addr(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError as e:
        raise InvalidParameterError(f"{text!r} is not an IPv4 or IPv6 address") from e


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 0xFFFF:
        raise InvalidParameterError(f"{text!r} is not a port (0..65535)")
    return int(text)


def parse_stage(spec: str) -> tuple[str, dict[str, Any]]:
    """One ``name[:key=value...]`` stage → ``(native name, params)``."""
    name, *args = spec.strip().split(":")
    if name == "push-eth":
        # MAC addresses contain colons: rejoin the values.
        text = ":".join(args)
        params: dict[str, Any] = {}
        for key in ("src", "dst"):
            marker = f"{key}="
            if marker in text:
                value = text.split(marker, 1)[1][:17]
                params[key] = _mac(value)
        return "push-eth", params
    kv: dict[str, str] = {}
    for a in args:
        if "=" in a:
            k, v = a.split("=", 1)
            kv[k.strip()] = v.strip()
        else:
            kv[""] = a.strip()
    if name in ("nat", "nat-addr", "nat-port"):
        if "sport" in kv or "dport" in kv:
            which = "src" if "sport" in kv else "dst"
            params = {"which": which, "to": _port(kv["sport" if which == "src" else "dport"])}
            if "from" in kv:
                params["from"] = _port(kv["from"])
            return "nat-port", params
        if "src" in kv or "dst" in kv:
            which = "src" if "src" in kv else "dst"
            params = {"which": which, "to": _addr(kv[which])}
            if "from" in kv:
                params["from"] = _addr(kv["from"])
            return "nat-addr", params
        raise InvalidParameterError(f"stage {spec!r}: nat needs src=, dst=, sport= or dport=")
    if name == "vlan-push":
        tci = kv.get("tci", kv.get("", "0"))
        if not tci.isdigit() or int(tci) > 0xFFFF:
            raise InvalidParameterError(f"stage {spec!r}: the TCI must be 0..65535")
        return "vlan-push", {"tci": int(tci)}
    aliases = {"fix": "fix-checksums", "verify": "verify-checksums", "strip": "strip-link"}
    name = aliases.get(name, name)
    if name not in NATIVE_STAGES:
        raise InvalidParameterError(
            f"unknown pipeline stage {name!r}; known: {', '.join(NATIVE_STAGES)}, nat"
        )
    return name, {}


def parse_spec(spec: str | None) -> list[tuple[str, dict[str, Any]]]:
    if not spec:
        return []
    return [parse_stage(s) for s in spec.split(",") if s.strip()]


PacketCallout = Callable[[NetBufferList], Any]
BatchCallout = Callable[[Chain], Any]


@dataclass
class Pipeline:
    """Native stages, then an optional Python callout per packet or per batch.

    A per-packet callout gets each NBL; returning False drops nothing here but is counted as
    ``rejected`` in the stats (dropping is the stack's business: use an inject function and a
    real callout for that). A per-batch callout gets the whole `Chain`.
    """

    stages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    callout: PacketCallout | BatchCallout | None = None
    per_packet: bool = True

    def __post_init__(self) -> None:
        self._native = NativePipeline(self.stages)
        self.stats: list[dict[str, Any]] = [
            {"stage": n, "applied": 0, "skipped": 0, "errors": 0, "first_error": None}
            for n, _ in self.stages
        ]
        self.callout_stats = {"calls": 0, "rejected": 0, "errors": 0, "first_error": None}

    @classmethod
    def from_spec(cls, spec: str | None, callout=None, per_packet: bool = True) -> Pipeline:
        return cls(parse_spec(spec), callout, per_packet)

    def run(self, chain: Chain, first_index: int = 0) -> None:
        """Runs every stage over `chain`, adding to the running stats."""
        native = self._native.run(chain) if self.stages else []
        for total, got in zip(self.stats, native, strict=True):
            for k in ("applied", "skipped", "errors"):
                total[k] += got[k]
            if total["first_error"] is None and got["first_error"] is not None:
                i, msg = got["first_error"]
                total["first_error"] = (first_index + i, msg)
            for k in ("transport_verdicts", "ip_verdicts"):
                if k in got:
                    acc = total.setdefault(k, dict.fromkeys(got[k], 0))
                    for verdict, n in got[k].items():
                        acc[verdict] += n
        if self.callout is not None:
            self._run_callout(chain, first_index)

    def _run_callout(self, chain: Chain, first_index: int) -> None:
        st = self.callout_stats
        if not self.per_packet:
            st["calls"] += 1
            self.callout(chain)
            return
        callout = self.callout
        for nbl in chain:
            st["calls"] += 1
            if callout(nbl) is False:
                st["rejected"] += 1


__all__ = ["Pipeline", "parse_spec", "parse_stage", "NATIVE_STAGES"]
