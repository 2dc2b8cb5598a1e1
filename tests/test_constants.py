"""Every WDK constant and status code of the spec, checked against ``wfpsim``.

The spec notes (``<repo>/../shared/spec/*.md``, override with ``WFPSIM_SPEC_DIR``) are parsed for
``NAME | value`` table rows, ``NAME = value`` / ``NAME value`` / ``NAME (value)`` text, code-block
enum comments (``NAME, // 3``), ``TYPE: A 0, B 1`` lists, the per-layer field lists of layers.md
§6.1, the layer-id table and the NetBufferListInfo slot table. Every extracted pair must be
defined by :mod:`wfpsim.status` / :mod:`wfpsim.constants` with the same value, and every
constant-like name the spec (or a seed page) mentions must be defined — minus the explicit,
justified exceptions below.
"""

from __future__ import annotations

import enum
import importlib
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import wfpsim  # noqa: F401
except ImportError:  # not installed: use this checkout's python/ package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

status = importlib.import_module("wfpsim.status")
constants = importlib.import_module("wfpsim.constants")
layers = importlib.import_module("wfpsim.constants.layers")

NTSTATUS = status.NTSTATUS

SHARED = Path(
    os.environ.get("WFPSIM_SHARED_DIR", Path(__file__).resolve().parent.parent.parent / "shared")
)
SPEC_DIR = Path(os.environ.get("WFPSIM_SPEC_DIR", SHARED / "spec"))
SEED_DIR = SHARED / "seeds"
SPEC_FILES = ("nbl.md", "injection.md", "layers.md", "checksums.md", "samples.md")

needs_spec = pytest.mark.skipif(
    not all((SPEC_DIR / name).is_file() for name in SPEC_FILES),
    reason=f"spec notes not found in {SPEC_DIR} (set WFPSIM_SPEC_DIR)",
)

# ------------------------------------------------------------------------------------------------
# What counts as a WDK constant name
# ------------------------------------------------------------------------------------------------

#: Name prefixes of the constant groups the brief covers (status codes included).
CONSTANT_PREFIXES = (
    "STATUS_",
    "NDIS_STATUS_",
    "FACILITY_",
    "AF_",
    "IPPROTO_",
    "FWPS_LAYER_",
    "FWPS_BUILTIN_",
    "FWPS_FIELD_",
    "FWPS_FIELDS_",
    "FWPS_INJECTION_TYPE_",
    "FWPS_PACKET_",
    "FWPS_STREAM_FLAG_",
    "FWPS_STREAM_ACTION_",
    "FWPS_METADATA_FIELD_",
    "FWPS_L2_METADATA_FIELD_",
    "FWPS_L2_INCOMING_FLAG_",
    "FWPS_INCOMING_FLAG_",
    "FWPS_RIGHT_",
    "FWPS_CLASSIFY_OUT_FLAG_",
    "FWPS_CLASSIFY_FLAG_",
    "FWPS_FILTER_FLAG_",
    "FWPS_DISCARD_",
    "FWPS_CALLOUT_NOTIFY_",
    "FWPS_CALLOUT_FLAG_",
    "FWPS_SEND_INJECT_",
    "FWPS_CONSTRUCT_",
    "FWPS_ALLOCATE_CLONE_",
    "FWP_ACTION_",
    "FWP_DIRECTION",
    "FWP_CONDITION_FLAG_",
    "FWP_CALLOUT_FLAG_",
    "FWP_DATA_TYPE",
    "MDL_",
    "NDIS_NBL_FLAGS_",
    "NBL_FLAGS_",
    "NDIS_CLONE_FLAGS_",
    "NDIS_OBJECT_TYPE_",
    "NDIS_PROTOCOL_ID_",
    "NDIS_NET_BUFFER_LIST_INFO",
    "NET_BUFFER_LIST_POOL_",
    "NET_BUFFER_POOL_",
    "NDIS_TCP_LARGE_SEND_OFFLOAD_",
    "NDIS_LARGE_SEND_OFFLOAD_",
    "NET_IF_COMPARTMENT_ID_",
    "NET_IFINDEX_",
    "MEMORY_ALLOCATION_ALIGNMENT",
    "UNSPECIFIED_COMPARTMENT_ID",
    "DEFAULT_COMPARTMENT_ID",
)
#: FWP_DATA_TYPE members do not share a group prefix.
FWP_DATA_TYPE_RE = re.compile(
    r"FWP_(EMPTY|U?INT(8|16|32|64)|FLOAT|DOUBLE|SID|[A-Z0-9_]+_TYPE|[A-Z0-9_]+_TYPE_MAX"
    r"|V[46]_ADDR_MASK)"
)

#: Names with a constant-like prefix that are C types, structs or callbacks, not values.
NOT_CONSTANTS = {
    "FWP_ACTION_TYPE": "typedef UINT32 (the FWP_ACTION_* values are checked)",
    "FWP_MATCH_TYPE": "enum type of filter conditions, no value in the spec",
    "FWPS_DISCARD_METADATA0": "struct",
    "FWPS_CALLOUT_NOTIFY_FN0": "callback typedef",
    "FWPS_CALLOUT_NOTIFY_FN1": "callback typedef",
    "FWPS_CALLOUT_NOTIFY_FN2": "callback typedef",
    "FWPS_CALLOUT_NOTIFY_FN3": "callback typedef",
    "FWPS_PACKET_LIST_INFORMATION0": "struct",
    "NET_BUFFER_LIST_POOL_PARAMETERS": "struct",
    "NET_BUFFER_POOL_PARAMETERS": "struct",
    "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO": "struct (bitfield union)",
    "NDIS_STATUS": "typedef int",
}

#: Names the spec mentions that wfpsim deliberately does not define.
NOT_DEFINED = {
    "FWPS_CONSTRUCT_IPHEADER_FOR_SEND": "doc-only (Server 2022 23H2+); value unconfirmed, §1.5",
    "FWPS_CONSTRUCT_IPHEADER_FOR_RECEIVE": "doc-only (Server 2022 23H2+); value unconfirmed, §1.5",
    "FWPS_LAYER_RESERVED1_V4": "slot 58 only when NTDDI_VERSION == NTDDI_WIN7; pinned RS3 layout",
    "FWPS_LAYER_RESERVED1_V6": "slot 59 only when NTDDI_VERSION == NTDDI_WIN7; pinned RS3 layout",
    "FWPS_LAYER_RESERVED_LAYER_9": "newest SDK only (unconfirmed); see LAYER_LAYOUTS['newest']",
    "FWPS_LAYER_RESERVED_LAYER_10": "newest SDK only (unconfirmed); see LAYER_LAYOUTS['newest']",
    "FWPS_LAYER_OUTBOUND_NETWORK_CONNECTION_POLICY_V4": "newest SDK only; LAYER_LAYOUTS['newest']",
    "FWPS_LAYER_OUTBOUND_NETWORK_CONNECTION_POLICY_V6": "newest SDK only; LAYER_LAYOUTS['newest']",
    "NetBufferListInfoReserved4": "x86-only NetBufferListInfo slot; wfpsim models x64",
    "SwitchForwardingDetail_b0_to_b31": "x86-only NetBufferListInfo slot; wfpsim models x64",
    "SwitchForwardingDetail_b32_to_b63": "x86-only NetBufferListInfo slot; wfpsim models x64",
}

#: The spec marks these as fictitious; defining them would invent WDK API.
FICTITIOUS_PREFIXES = ("FWPS_ALLOCATE_CLONE_", "FWPS_CLONE_NBL_FLAG_", "FWPS_CALLOUT_FLAG_")

#: Values the spec states in prose that no pattern below extracts.
PROSE_EXPECTATIONS = {
    # nbl.md §3.1 "MEMORY_ALLOCATION_ALIGNMENT is 16 on 64-bit, 8 on 32-bit"; wfpsim models x64.
    "MEMORY_ALLOCATION_ALIGNMENT": 16,
    # layers.md §1 "FWPS_BUILTIN_KM_LAYER_MAX is defined as FWPS_LAYER_IPSEC_KM_DEMUX_V4" (= 91).
    "FWPS_BUILTIN_KM_LAYER_MAX": 91,
}

#: Constants that samples.md names without a value; value from ntstatus.h (wfpsim.status).
VALUE_NOT_IN_SPEC = {"STATUS_DEVICE_CONFIGURATION_ERROR": 0xC0000182}


def is_constant_name(token: str) -> bool:
    if token in NOT_CONSTANTS or token.endswith("_"):
        return False
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*(IPv[46])?", token):  # ..._IPv4 is the WDK spelling
        return False
    return token.startswith(CONSTANT_PREFIXES) or bool(FWP_DATA_TYPE_RE.fullmatch(token))


# ------------------------------------------------------------------------------------------------
# The module under test, flattened
# ------------------------------------------------------------------------------------------------


def defined_names() -> dict[str, object]:
    names: dict[str, object] = {}
    for module in (status, constants):
        for name in module.__all__:
            names[name] = getattr(module, name)
    return names


DEFINED = defined_names()


def value_of(name: str) -> int | None:
    value = DEFINED.get(name)
    if isinstance(value, int):
        return int(value)
    return None


# ------------------------------------------------------------------------------------------------
# Spec extraction
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    name: str
    value: int
    where: str  # file:line


@dataclass
class Extraction:
    pairs: list[Pair]
    aliases: list[tuple[str, str, str]]  # (ndis-or-other name, status name, where)
    equivalences: list[tuple[str, str, str]]  # A ≡ B
    unresolved: list[str]
    mentioned: dict[str, str]  # name -> first place it appears
    layer_columns: dict[str, dict[str, int | None]]
    nbl_info: list[tuple[str, int | None, str]]
    field_lists: dict[str, list[tuple[int, str]]]


NUM = r"(?:0[xX][0-9A-Fa-f]+|\d+)"
VALUE_RE = re.compile(rf"^\**`?\**({NUM})\**`?\**(?![\d–\-]|\.\.?\d|\s*[–\-]\s*\d|\.\.)")
TOKEN = r"(?:\.\.\._|_)?[A-Za-z][A-Za-z0-9_]*"
# `NAME` = value | `NAME`=value | `NAME` `value` | `NAME` value | `NAME` (value, | `NAME` (=value)
TICKED_THEN_VALUE = re.compile(
    rf"`({TOKEN}|[A-Z][A-Z0-9_]*_\*)`"
    rf"(?:\s*=\s*`?({NUM})`?|\s*\(\s*=?\s*({NUM})\s*[,)]|\s+`?({NUM})`?)"
    r"(?![\dA-Za-z–\-]|\.\d|\s*[–\-]\s*\d)"
)
# inside one code span: `NAME value`, `NAME = value`, `NAME (value)`
SPAN_NAME_VALUE = re.compile(rf"^({TOKEN})(?:\s*=\s*|\s*\(\s*|\s+)({NUM})\)?$")
# code / plain text: NAME = value (values must be numeric)
PLAIN_ASSIGN = re.compile(rf"(?<![A-Za-z0-9_.`])([A-Z][A-Z0-9_]+)\s*=\s*({NUM})(?![\dA-Za-z]|\.\d)")
# code-block enum member with its value in a comment:  NAME,   // 3
ENUM_COMMENT = re.compile(rf"^\s*([A-Z][A-Z0-9_]+)\s*,?\s*//\s*({NUM})\b")
WILDCARD = re.compile(r"`([A-Z][A-Z0-9_]*?_)\*`")
# `TYPE`: A 0, B 1, ... (nbl.md §10.5/§10.6)
TYPE_LIST = re.compile(
    r"`([A-Z][A-Z0-9_]+)`:\s*((?:[A-Z][A-Z0-9_]*\s+\d+[^,]*,\s*)+[A-Z][A-Z0-9_]*(?:\s+\d+)?)"
)
FIELD_LIST = re.compile(r"^\* `FWPS_FIELDS_([A-Z0-9_]+)` \(`FWPS_FIELD_\1_\*`\): (.*)$")
NAME_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Za-z0-9_]*(?![A-Za-z0-9_{])")  # not X_V{4,6}


def parse_int(text: str) -> int:
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())
    return [c.strip() for c in cells[1:-1]]


def cell_names(cell: str) -> list[str]:
    """The name(s) a table cell stands for: `A` / `..._B` lists, or a bare single name."""
    ticked = re.findall(r"`([^`]+)`", cell)
    if ticked:
        return [t.strip() for t in ticked]
    bare = cell.strip("* ")
    return [bare] if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", bare) else []


class Resolver:
    """Expands ``..._SUFFIX`` / ``_SUFFIX`` / ``SUFFIX`` abbreviations from their context.

    Context = the last full constant name and the last ``PREFIX_*`` wildcard seen. A candidate is
    a prefix of the context (cut at an underscore) plus the suffix; it resolves only if exactly
    one candidate is a name wfpsim defines (the *value* is still checked against the spec).
    """

    def __init__(self) -> None:
        self.last_full: str | None = None
        self.wildcard: str | None = None

    def see(self, token: str) -> None:
        if is_constant_name(token):
            self.last_full = token

    def resolve(self, token: str, bare: str | None = None) -> str | None:
        """``bare``: None = only ``..._X``/``_X`` abbreviations; "wildcard" = also a bare
        ``X`` when a ``PREFIX_*`` is in scope; "any" = also a bare ``X`` against the last name."""
        if is_constant_name(token):
            return token
        if token.startswith("..._"):
            suffix = token[4:]
        elif token.startswith("_"):
            suffix = token[1:]
        elif (bare == "any" or (bare == "wildcard" and self.wildcard)) and re.fullmatch(
            r"[A-Z][A-Za-z0-9_]*", token
        ):
            suffix = token
        else:
            return None
        candidates = set()
        if self.wildcard:
            candidates.add(self.wildcard + suffix)
        if self.last_full:
            parts = self.last_full.split("_")
            for cut in range(1, len(parts) + 1):
                candidates.add("_".join(parts[:cut]) + "_" + suffix)
        known = sorted(c for c in candidates if c in DEFINED or c in NOT_DEFINED)
        return known[0] if len(known) == 1 else None


def logical_lines(path: Path) -> list[tuple[int, str, str]]:
    """(first line number, kind, text): kind is "code", "table" or "text".

    Wrapped prose (a paragraph or a bullet and its continuation lines) is joined into one text
    line, so that a name at the end of one physical line and its value at the start of the next
    stay together.
    """
    out: list[tuple[int, str, str]] = []
    in_code = False
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            out.append((lineno, "code", raw))
        elif raw.lstrip().startswith("|"):
            out.append((lineno, "table", raw))
        elif not raw.strip():
            out.append((lineno, "blank", ""))
        elif (
            out
            and out[-1][1] == "text"
            and not re.match(r"\s*([#*-]|\d+\.)\s", raw)
            and not raw.startswith("#")
        ):
            first, _, text = out[-1]
            out[-1] = (first, "text", text + " " + raw.strip())
        else:
            out.append((lineno, "text", raw))
    return out


def extract(files: list[Path]) -> Extraction:
    ex = Extraction([], [], [], [], {}, {}, [], {})
    for path in files:
        resolver = Resolver()
        table_kind: str | None = None
        layer_headers: list[str] = []
        for lineno, kind, line in logical_lines(path):
            where = f"{path.name}:{lineno}"
            for tok in NAME_TOKEN_RE.findall(line):
                if is_constant_name(tok) or tok in NOT_DEFINED:
                    ex.mentioned.setdefault(tok, where)
            resolver.wildcard = None
            for wc in WILDCARD.findall(line):
                resolver.wildcard = wc

            def add(name: str, value: str, where: str = where) -> None:
                ex.pairs.append(Pair(name, parse_int(value), where))

            # -- code blocks: enum comments and NAME = value ---------------------------------
            if kind == "code":
                m = ENUM_COMMENT.match(line)
                if m and is_constant_name(m.group(1)):
                    add(m.group(1), m.group(2))
                for name, value in PLAIN_ASSIGN.findall(line):
                    if is_constant_name(name):
                        add(name, value)
                continue
            if kind != "table":
                table_kind = None
            if kind == "blank":
                continue

            # -- tables ------------------------------------------------------------------------
            if kind == "table":
                cells = split_row(line)
                if not cells or set("".join(cells)) <= set("-: "):
                    continue
                head = cells[0].lower()
                if head.startswith("name") and any("16299" in c for c in cells[1:]):
                    table_kind, layer_headers = "layers", cells[1:]
                    continue
                if head.startswith("idx x64"):
                    table_kind = "nblinfo"
                    continue
                if table_kind == "layers" and cells[0].startswith("`FWPS_"):
                    name = cells[0].strip("`")
                    for header, cell in zip(layer_headers, cells[1:], strict=True):
                        m = VALUE_RE.match(cell)
                        ex.layer_columns.setdefault(header, {})[name] = (
                            parse_int(m.group(1)) if m else None
                        )
                    m = VALUE_RE.match(cells[1])
                    if m:
                        add(name, m.group(1))
                    continue
                if table_kind == "nblinfo":
                    x64 = VALUE_RE.match(cells[0])
                    for name in re.findall(r"`([A-Za-z][A-Za-z0-9_]*)`", cells[2]):
                        ex.nbl_info.append((name, parse_int(x64.group(1)) if x64 else None, where))
                    continue
                full_names = []
                for token in cell_names(cells[0]):
                    for part in re.split(r"\s*/\s*", token):
                        bare = "any" if full_names else None
                        resolved = resolver.resolve(part.strip(), bare=bare)
                        if resolved:
                            resolver.see(resolved)
                            full_names.append(resolved)
                        elif part.startswith(("..._", "_")) or bare:
                            ex.unresolved.append(f"{where}: {part}")
                if full_names and len(cells) > 1:
                    values = re.findall(rf"`?({NUM})`?", cells[1]) if "/" in cells[1] else []
                    if len(full_names) > 1:
                        if not VALUE_RE.match(cells[1]):
                            continue  # e.g. "not in 16299 header"
                        assert len(values) == len(full_names), f"{where}: {full_names} {values}"
                        for name, value in zip(full_names, values, strict=True):
                            add(name, value)
                    else:
                        value_match = None
                        for cell in cells[1:]:
                            value_match = VALUE_RE.match(cell)
                            if value_match:
                                add(full_names[0], value_match.group(1))
                                break
                        for cell in cells[2:]:  # "defined as" column of the NDIS status table
                            alias = re.match(r"^`?(STATUS_[A-Z0-9_]+)`?", cell)
                            if alias and full_names[0].startswith("NDIS_STATUS_"):
                                ex.aliases.append((full_names[0], alias.group(1), where))
                                if value_match:
                                    add(alias.group(1), value_match.group(1))
                    continue
                # no name in the first cell: use the inline patterns on the whole row

            # -- layers.md §6.1 field lists ------------------------------------------------------
            m = FIELD_LIST.match(line)
            if m:
                layer, items = m.groups()
                entries = []
                for item in items.split(", "):
                    im = re.match(r"(\d+) ([A-Z0-9_]+)", item.strip())
                    assert im, f"{where}: unparsable field item {item!r}"
                    entries.append((int(im.group(1)), im.group(2)))
                ex.field_lists[layer] = entries
                continue

            # -- `TYPE`: A 0, B 1 lists ----------------------------------------------------------
            for type_name, items in TYPE_LIST.findall(line):
                saved = (resolver.last_full, resolver.wildcard)
                resolver.last_full, resolver.wildcard = type_name, None
                for item in items.split(","):
                    im = re.match(r"\s*([A-Z][A-Z0-9_]*)(?:\s+(\d+))?", item)
                    if im and im.group(2) is not None:
                        name = resolver.resolve(im.group(1), bare="any")
                        if name:
                            add(name, im.group(2))
                        else:
                            ex.unresolved.append(f"{where}: {type_name}: {im.group(1)}")
                resolver.last_full, resolver.wildcard = saved

            # -- A ≡ B equivalences --------------------------------------------------------------
            for left, right in re.findall(rf"`({TOKEN})`\s*≡\s*`({TOKEN})`", line):
                resolved_left = resolver.resolve(left)
                if resolved_left:
                    resolver.see(resolved_left)
                resolved_right = resolver.resolve(right)
                if resolved_left and resolved_right:
                    ex.equivalences.append((resolved_left, resolved_right, where))
                else:
                    ex.unresolved.append(f"{where}: {left} ≡ {right}")

            # -- inline forms, in text order -----------------------------------------------------
            events: list[tuple[int, str, str | None]] = []  # (position, token, value)
            ticked_value_at: set[int] = set()
            for m in TICKED_THEN_VALUE.finditer(line):
                value = m.group(2) or m.group(3) or m.group(4)
                events.append((m.start(), m.group(1), value))
                ticked_value_at.add(m.start())
            for m in re.finditer(r"`([^`]+)`", line):
                if m.start() in ticked_value_at:
                    continue
                text = m.group(1).strip()
                sm = SPAN_NAME_VALUE.match(text)
                if sm:
                    events.append((m.start(), sm.group(1), sm.group(2)))
                else:
                    for part in re.split(r"\s*/\s*", text):
                        events.append((m.start(), part, None))
                for name, value in PLAIN_ASSIGN.findall(text):
                    if is_constant_name(name):
                        add(name, value)
            for _, token, value in sorted(events, key=lambda e: e[0]):
                if token.endswith("*"):
                    continue
                resolved = resolver.resolve(token, bare="wildcard" if value else None)
                if resolved:
                    resolver.see(resolved)
                    if value is not None:
                        add(resolved, value)
                elif value is not None and (
                    token.startswith(("..._", "_"))
                    or (resolver.wildcard and re.fullmatch(r"[A-Z][A-Z0-9_]*", token))
                ):
                    ex.unresolved.append(f"{where}: {token} {value}")
    return ex


@pytest.fixture(scope="module")
def spec() -> Extraction:
    return extract([SPEC_DIR / name for name in SPEC_FILES])


@pytest.fixture(scope="module")
def seeds_mentioned() -> dict[str, str]:
    files = sorted(SEED_DIR.glob("*.txt")) if SEED_DIR.is_dir() else []
    return extract(files).mentioned if files else {}


# ------------------------------------------------------------------------------------------------
# Spec-derived tests
# ------------------------------------------------------------------------------------------------


@needs_spec
def test_extraction_found_the_spec_tables(spec: Extraction) -> None:
    """Guards the parser itself: if the markdown changes shape, this fails instead of passing."""
    names = {p.name for p in spec.pairs}
    assert len(spec.pairs) > 500
    for expected in (
        "STATUS_FWP_INJECT_HANDLE_CLOSING",
        "NDIS_STATUS_SEND_ABORTED",
        "FWPS_METADATA_FIELD_SUB_PROCESS_TAG",
        "FWP_CONDITION_FLAG_IS_HONORING_POLICY_AUTHORIZE",  # abbreviated `IS_...` list
        "FWPS_STREAM_FLAG_SEND_ABORT",
        "FWPS_PACKET_LIST_INFORMATION_QUERY_ALL_INBOUND",  # `..._QUERY_ALL_INBOUND`
        "FWPS_INCOMING_FLAG_IS_LOCAL_ONLY_FLOW",  # slash list in a table row
        "FWPS_DISCARD_MODULE_GENERAL",  # `_GENERAL`=2
        "FWPS_STREAM_ACTION_ALLOW_CONNECTION",
        "FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF",
        "MDL_INTERNAL",
        "NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6",
        "FWP_DATA_TYPE_MAX",
        "FWP_CALLOUT_FLAG_ALLOW_URO",
        "UNSPECIFIED_COMPARTMENT_ID",
        "DEFAULT_COMPARTMENT_ID",
        "FWPS_LAYER_NON_WFP",
        "IPPROTO_ICMPV6",
        "AF_INET6",
    ):
        assert expected in names, expected
    assert len(spec.layer_columns) == 3
    assert len(spec.field_lists) == 20
    assert len(spec.nbl_info) >= 35
    assert len(spec.aliases) >= 10
    assert spec.equivalences


@needs_spec
def test_every_spec_value_matches(spec: Extraction) -> None:
    problems = []
    for pair in spec.pairs:
        if pair.name in NOT_DEFINED:
            continue
        ours = value_of(pair.name)
        if ours is None:
            problems.append(f"{pair.where}: {pair.name} = {pair.value:#x} is not defined")
        elif ours != pair.value:
            problems.append(f"{pair.where}: {pair.name}: spec {pair.value:#x}, wfpsim {ours:#x}")
    assert not problems, "\n".join(problems)


@needs_spec
def test_spec_is_self_consistent(spec: Extraction) -> None:
    """No name gets two different values anywhere in the spec (outside per-SDK columns)."""
    seen: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for pair in spec.pairs:
        seen[pair.name][pair.value].append(pair.where)
    conflicts = {name: dict(vals) for name, vals in seen.items() if len(vals) > 1}
    assert not conflicts


@needs_spec
def test_no_abbreviation_left_unresolved(spec: Extraction) -> None:
    assert not spec.unresolved, "\n".join(spec.unresolved)


@needs_spec
def test_every_mentioned_constant_is_defined(spec: Extraction, seeds_mentioned) -> None:
    mentioned = dict(seeds_mentioned) | spec.mentioned
    missing = sorted(
        f"{where}: {name}"
        for name, where in mentioned.items()
        if name not in DEFINED and name not in NOT_DEFINED
    )
    assert not missing, "\n".join(missing)
    # every status code the spec names is an NTSTATUS member (aliases included)
    for name in mentioned:
        if name.startswith(("STATUS_", "NDIS_STATUS_")):
            assert name in NTSTATUS.__members__, name


@needs_spec
def test_exceptions_are_really_in_the_spec_and_really_undefined(spec: Extraction) -> None:
    text = "\n".join((SPEC_DIR / name).read_text(encoding="utf-8") for name in SPEC_FILES)
    abbreviated = {"FWPS_CONSTRUCT_IPHEADER_FOR_RECEIVE": "`..._FOR_RECEIVE`"}
    for name in NOT_DEFINED:
        assert name in text or abbreviated.get(name, name) in text, f"stale exception {name}"
        assert name not in DEFINED, f"{name} is listed as not defined but wfpsim defines it"
    for prefix in FICTITIOUS_PREFIXES:
        assert not [n for n in DEFINED if n.startswith(prefix)], prefix
    assert "fictitious" in (SPEC_DIR / "nbl.md").read_text(encoding="utf-8")
    for name, value in VALUE_NOT_IN_SPEC.items():
        assert name in text and value_of(name) == value


@needs_spec
def test_ndis_status_aliases_from_spec(spec: Extraction) -> None:
    for ndis_name, status_name, where in spec.aliases:
        assert NTSTATUS[ndis_name] is NTSTATUS[status_name], where
        assert status.status_name(NTSTATUS[ndis_name]) == status_name, where


@needs_spec
def test_equivalences_from_spec(spec: Extraction) -> None:
    for left, right, where in spec.equivalences:
        assert value_of(left) == value_of(right), where


@needs_spec
def test_layer_id_table_all_columns(spec: Extraction) -> None:
    layouts = layers.LAYER_LAYOUTS
    column_to_layouts = {
        "16299": ["10.0.16299"],
        "10240": ["10.0.10240", "10.0.14393"],
        "newest": ["newest"],
    }
    column_16299 = spec.layer_columns["10.0.16299 (header)"]
    assert sum(v is not None for v in column_16299.values()) == len(layers.FWPS_BUILTIN_LAYERS)
    for header, column in spec.layer_columns.items():
        keys = [v for k, vs in column_to_layouts.items() if k in header for v in vs]
        assert keys, header
        for key in keys:
            expected = {name: value for name, value in column.items() if value is not None}
            assert layouts[key] == expected, (header, key)


@needs_spec
def test_field_index_lists(spec: Extraction) -> None:
    checked = 0
    for layer, entries in spec.field_lists.items():
        variants = [layer]
        if layer.endswith("_V4") and layer[:-3] + "_V6" not in spec.field_lists:
            variants.append(layer[:-3] + "_V6")  # "V6 enums have the same order as V4"
        for variant in variants:
            cls = getattr(constants, f"FWPS_FIELDS_{variant}")
            assert [(m.value, m.name) for m in cls] == [
                (index, f"FWPS_FIELD_{variant}_{field}") for index, field in entries
            ], variant
            checked += 1
    assert checked == len(layers.FIELD_ENUMS) == 32


@needs_spec
def test_net_buffer_list_info_slots(spec: Extraction) -> None:
    info = constants.NDIS_NET_BUFFER_LIST_INFO
    x64 = [(name, idx) for name, idx, _ in spec.nbl_info if idx is not None]
    x86_only = {name for name, idx, _ in spec.nbl_info if idx is None} - {n for n, _ in x64}
    assert x86_only == {n for n in NOT_DEFINED if n in x86_only} and x86_only
    assert {name: idx for name, idx in x64} == {
        name: int(member) for name, member in info.__members__.items()
    }
    assert info.TcpIpChecksumNetBufferListInfo == 0 and info.MaxNetBufferListInfo == 27


# ------------------------------------------------------------------------------------------------
# Status semantics
# ------------------------------------------------------------------------------------------------


def test_ntstatus_values_are_unsigned_32_bit() -> None:
    for name, member in NTSTATUS.__members__.items():
        assert 0 <= member.value <= 0xFFFFFFFF, name
        assert isinstance(member, int)


@pytest.mark.parametrize(
    ("code", "success"),
    [
        (NTSTATUS.STATUS_SUCCESS, True),
        (NTSTATUS.STATUS_PENDING, True),
        (NTSTATUS.STATUS_OBJECT_NAME_EXISTS, True),  # informational 0x4...
        (NTSTATUS.STATUS_BUFFER_OVERFLOW, False),  # warning 0x8...
        (NTSTATUS.STATUS_DEVICE_BUSY, False),
        (NTSTATUS.STATUS_UNSUCCESSFUL, False),
        (NTSTATUS.STATUS_FWP_INJECT_HANDLE_CLOSING, False),
        (0x00000103, True),
        (0x7FFFFFFF, True),
        (0x80000000, False),
        (0xC0220101, False),
        (-1073741823, False),  # (LONG)0xC0000001
        (-(1 << 31), False),
        (259, True),
    ],
)
def test_nt_success(code: int, success: bool) -> None:
    assert status.NT_SUCCESS(code) is success


def test_severity_macros() -> None:
    assert status.NT_INFORMATION(NTSTATUS.STATUS_OBJECT_NAME_EXISTS)
    assert status.NT_WARNING(NTSTATUS.STATUS_DEVICE_BUSY)
    assert status.NT_ERROR(NTSTATUS.STATUS_FWP_CANNOT_PEND)
    assert not status.NT_ERROR(NTSTATUS.STATUS_PENDING)
    assert not status.NT_INFORMATION(NTSTATUS.STATUS_SUCCESS)


@pytest.mark.parametrize("bad", [1 << 32, -(1 << 31) - 1, 2**40])
def test_out_of_range_status_rejected(bad: int) -> None:
    with pytest.raises(ValueError):
        status.NT_SUCCESS(bad)


@pytest.mark.parametrize("bad", [True, 1.0, "0", None])
def test_non_integer_status_rejected(bad: object) -> None:
    with pytest.raises(TypeError):
        status.NT_SUCCESS(bad)  # type: ignore[arg-type]


def test_signed_unsigned_views() -> None:
    assert status.as_signed(NTSTATUS.STATUS_UNSUCCESSFUL) == -1073741823
    assert status.as_unsigned(-1073741823) == 0xC0000001
    assert status.as_signed(NTSTATUS.STATUS_PENDING) == 0x103


def test_ndis_aliases_behave() -> None:
    assert NTSTATUS.NDIS_STATUS_FAILURE is NTSTATUS.STATUS_UNSUCCESSFUL
    assert NTSTATUS.NDIS_STATUS_RESOURCES is NTSTATUS.STATUS_INSUFFICIENT_RESOURCES
    assert NTSTATUS.NDIS_STATUS_SUCCESS is NTSTATUS.STATUS_SUCCESS
    assert NTSTATUS.NDIS_STATUS_FAILURE.name == "STATUS_UNSUCCESSFUL"
    # nbl.md §5 pitfall: SEND_ABORTED is STATUS_NDIS_REQUEST_ABORTED, not NDIS_STATUS_REQUEST_ABORTED
    assert NTSTATUS.NDIS_STATUS_SEND_ABORTED == 0xC023000C
    assert NTSTATUS.NDIS_STATUS_SEND_ABORTED is NTSTATUS.STATUS_NDIS_REQUEST_ABORTED
    assert NTSTATUS.NDIS_STATUS_SEND_ABORTED is not NTSTATUS.NDIS_STATUS_REQUEST_ABORTED
    assert NTSTATUS.NDIS_STATUS_REQUEST_ABORTED == 0xC001000C
    assert NTSTATUS(0xC001000C).name == "NDIS_STATUS_REQUEST_ABORTED"
    # module-level exports are the very same members
    assert status.NDIS_STATUS_FAILURE is NTSTATUS.STATUS_UNSUCCESSFUL
    assert status.STATUS_FWP_DROP_NOICMP is NTSTATUS.STATUS_FWP_DROP_NOICMP


def test_status_name_and_coerce() -> None:
    assert status.status_name(0) == "STATUS_SUCCESS"
    assert status.status_name(NTSTATUS.NDIS_STATUS_PAUSED) == "STATUS_NDIS_PAUSED"
    assert status.status_name(-1073741823) == "STATUS_UNSUCCESSFUL"
    assert status.status_name(0xC0220102) == "STATUS_FWP_INJECT_HANDLE_STALE"
    assert status.status_name(0x12345678) == "0x12345678"
    assert status.coerce(0xC000000D) is NTSTATUS.STATUS_INVALID_PARAMETER
    assert status.coerce(-1073741811) is NTSTATUS.STATUS_INVALID_PARAMETER
    unknown = status.coerce(0xC0DE0001)
    assert type(unknown) is int and unknown == 0xC0DE0001
    assert status.coerce(-1) == 0xFFFFFFFF and type(status.coerce(-1)) is int


def test_fwp_status_codes_use_the_fwp_facility() -> None:
    for name, member in NTSTATUS.__members__.items():
        if name.startswith("STATUS_FWP_"):
            assert (member >> 16) & 0x0FFF == status.FACILITY_FWP_ERROR_CODE, name
            assert member >> 30 == 3, name


# ------------------------------------------------------------------------------------------------
# Constant semantics
# ------------------------------------------------------------------------------------------------


def test_prose_values() -> None:
    for name, value in PROSE_EXPECTATIONS.items():
        assert value_of(name) == value, name
    assert constants.FWPS_BUILTIN_KM_LAYER_MAX is constants.FWPS_LAYER_IPSEC_KM_DEMUX_V4


def test_no_name_defined_twice_with_different_values() -> None:
    submodules = [
        importlib.import_module(f"wfpsim.constants.{m}")
        for m in ("net", "mm", "ndis", "fwp", "layers")
    ]
    owners: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for module in [status, *submodules]:
        for name in module.__all__:
            owners[name].append((module.__name__, getattr(module, name)))
    duplicated = {n: o for n, o in owners.items() if len(o) > 1}
    assert not duplicated, duplicated  # one home per concept
    for name in constants.__all__:
        assert getattr(constants, name) is owners[name][0][1], name
    assert set(constants.__all__).isdisjoint(status.__all__)


def test_enum_members_exported_at_module_level() -> None:
    enums = [v for v in DEFINED.values() if isinstance(v, type) and issubclass(v, enum.Enum)]
    assert len(enums) >= 40
    for cls in enums:
        for name, member in cls.__members__.items():
            assert DEFINED.get(name) is member, f"{cls.__name__}.{name}"


def test_action_type_composition() -> None:
    c = constants
    terminating, non_terminating, callout = (
        c.FWP_ACTION_FLAG_TERMINATING,
        c.FWP_ACTION_FLAG_NON_TERMINATING,
        c.FWP_ACTION_FLAG_CALLOUT,
    )
    assert c.FWP_ACTION_BLOCK == 0x1 | terminating
    assert c.FWP_ACTION_PERMIT == 0x2 | terminating
    assert c.FWP_ACTION_CALLOUT_TERMINATING == 0x3 | callout | terminating
    assert c.FWP_ACTION_CALLOUT_INSPECTION == 0x4 | callout | non_terminating
    assert c.FWP_ACTION_CALLOUT_UNKNOWN == 0x5 | callout
    assert c.FWP_ACTION_CONTINUE == 0x6 | non_terminating
    actions = {n: v for n, v in DEFINED.items() if n.startswith("FWP_ACTION_") and "FLAG" not in n}
    assert sorted(v & 0xFFF for v in actions.values()) == list(range(1, 10))
    for name, value in actions.items():
        assert not (value & terminating and value & non_terminating), name
        assert bool(value & callout) == ("CALLOUT" in name), name


@pytest.mark.parametrize(
    "prefix",
    [
        "FWPS_METADATA_FIELD_",
        "FWPS_L2_METADATA_FIELD_",
        "FWPS_STREAM_FLAG_",
        "FWPS_INJECTION_TYPE_",
        "FWP_CONDITION_FLAG_",
        "FWP_CALLOUT_FLAG_",
        "FWPS_FILTER_FLAG_",
        "FWPS_INCOMING_FLAG_",
        "MDL_",
        "NDIS_NBL_FLAGS_",
    ],
)
def test_flag_groups_are_distinct_single_bits(prefix: str) -> None:
    flags = {n: v for n, v in DEFINED.items() if n.startswith(prefix) and isinstance(v, int)}
    assert len(flags) >= 4
    for name, value in flags.items():
        assert value and value & (value - 1) == 0, name
    assert len(set(flags.values())) == len(flags), prefix


def test_nbl_flag_masks_partition_the_private_flags() -> None:
    masks = [
        constants.NBL_FLAGS_PROTOCOL_RESERVED,
        constants.NBL_FLAGS_MINIPORT_RESERVED,
        constants.NBL_FLAGS_SCRATCH,
        constants.NBL_FLAGS_NDIS_RESERVED,
    ]
    total = 0
    for mask in masks:
        assert total & mask == 0
        total |= mask
    assert total == 0xFFFFFFFF


def test_builtin_layers_are_contiguous() -> None:
    ids = [m.value for m in constants.FWPS_BUILTIN_LAYERS]
    assert ids == list(range(len(ids)))
    assert constants.FWPS_BUILTIN_LAYER_MAX == 103
    assert constants.FWPS_LAYER_STREAM_V4 == 20 and constants.FWPS_LAYER_STREAM_V6 == 22
    for sdk, layout in layers.LAYER_LAYOUTS.items():
        assert sorted(layout.values()) == list(range(len(layout))), sdk
        for name, value in layout.items():
            if value <= 81:
                assert constants.FWPS_BUILTIN_LAYERS[name] == value, (sdk, name)


def test_field_enums_shape() -> None:
    for layer, cls in layers.FIELD_ENUMS.items():
        canonical = list(cls)
        assert [m.value for m in canonical] == list(range(len(canonical))), layer
        assert canonical[-1].name == f"FWPS_FIELD_{layer}_MAX"
        assert layers.FIELDS_BY_LAYER[constants.FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{layer}"]] is cls
        members = cls.__members__
        icmp_type = members.get(f"FWPS_FIELD_{layer}_ICMP_TYPE")
        if icmp_type is not None and icmp_type.name != f"FWPS_FIELD_{layer}_ICMP_TYPE":
            assert (
                members[f"FWPS_FIELD_{layer}_ICMP_TYPE"]
                is members[f"FWPS_FIELD_{layer}_IP_LOCAL_PORT"]
            )
            assert (
                members[f"FWPS_FIELD_{layer}_ICMP_CODE"]
                is members[f"FWPS_FIELD_{layer}_IP_REMOTE_PORT"]
            )
    # real fields at the V4 ICMP-error layers, aliases on the V6 outbound one
    assert constants.FWPS_FIELD_OUTBOUND_ICMP_ERROR_V4_ICMP_TYPE == 4
    assert constants.FWPS_FIELD_OUTBOUND_ICMP_ERROR_V6_ICMP_TYPE == 4
    assert constants.FWPS_FIELD_INBOUND_TRANSPORT_V4_ICMP_CODE == 5


def test_enum_types_match_the_wdk() -> None:
    assert constants.FWP_DIRECTION.FWP_DIRECTION_INBOUND == 1
    assert constants.FWP_DATA_TYPE(0x102) is constants.FWP_RANGE_TYPE
    assert (
        constants.FWPS_PACKET_INJECTION_STATE(3).name == "FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF"
    )
    assert constants.FWPS_STREAM_ACTION_TYPE_MAX == 5
    assert constants.IPPROTO(0) is constants.IPPROTO_HOPOPTS
    assert constants.IPPROTO_IP is constants.IPPROTO_HOPOPTS
    assert constants.COMPARTMENT_ID.DEFAULT_COMPARTMENT_ID == 1
    assert constants.NDIS_NET_BUFFER_LIST_INFO(7).name == "NetBufferListFrameType"
    assert constants.NetBufferListProtocolId is constants.NetBufferListFrameType
    assert (
        constants.FWPS_PACKET_LIST_INFORMATION_QUERY_ALL_INBOUND
        == ~constants.FWPS_PACKET_LIST_INFORMATION_QUERY_OUTBOUND & 0xFFFFFFFF
    )
