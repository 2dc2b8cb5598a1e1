"""The simulated host: interfaces, compartments, routes, transport endpoints and flows.

Just enough of a host for every inject function to have a real destination, and for the paths
to fill the incoming values and metadata a callout sees.

* :class:`Interface` — index, addresses (with on-link prefixes), MTU, MAC (None: a raw-IP link,
  no MAC layers), compartment, up/down.
* :class:`Endpoint` — a socket: its ``handle`` is the ``transportEndpointHandle`` a callout sees
  and passes to FwpsInjectTransportSendAsync*; after :meth:`Endpoint.close` the handle is stale.
* :class:`TcpFlow` — a TCP connection with a ``flow_id`` (the ``flowHandle`` of the metadata and
  the ``flowId`` of FwpsStreamInjectAsync0), its received bytes and state.
* :class:`DatagramFlow` — the ALE state of a non-TCP (endpoint, remote) pair: whether the first
  packet was authorised (ALE_AUTH_CONNECT / RECV_ACCEPT), is pending, or was refused.

Numbers: endpoint handles and flow ids are unique across every stack of the process (UINT64
values), so a handle used on the wrong stack is never silently valid.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wfpsim.constants import AF_INET, AF_INET6
from wfpsim.errors import InvalidParameterError, InvalidStateError
from wfpsim.stack.ip import addr_bytes, addr_text
from wfpsim.status import NTSTATUS

if TYPE_CHECKING:
    from wfpsim.stack.stack import Stack

IF_TYPE_ETHERNET_CSMACD = 6
IF_TYPE_SOFTWARE_LOOPBACK = 24
IF_TYPE_OTHER = 1

# NL_ADDRESS_TYPE (nldef.h): the *_ADDRESS_TYPE incoming values
NlatUnspecified, NlatUnicast, NlatAnycast, NlatMulticast, NlatBroadcast, NlatInvalid = range(6)

_endpoint_handles = itertools.count(0xFFFF_C000_0000_1000, 0x40)
_flow_ids = itertools.count(0x1_0000)


def next_flow_id() -> int:
    return next(_flow_ids)


class Interface:
    """A network interface of the simulated host. Changing ``up``, ``addresses``,
    ``compartment_id`` or ``mtu`` takes effect at once (the stack's address/route caches are
    dropped)."""

    _WATCHED = frozenset({"up", "addresses", "compartment_id", "mtu", "mac"})
    on_change: Any = None

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in self._WATCHED and self.on_change is not None:
            self.on_change()

    def __init__(
        self,
        index: int,
        addresses: list[str] | tuple[str, ...] = (),
        *,
        mtu: int = 1500,
        mac: bytes | None = None,
        compartment_id: int = 1,
        up: bool = True,
        sub_interface_index: int = 0,
        implicit: bool = False,
    ) -> None:
        if index <= 0:
            raise InvalidParameterError(f"interface index must be > 0 (got {index})")
        if mac is not None and len(bytes(mac)) != 6:
            raise InvalidParameterError(f"a MAC address has 6 bytes, not {len(bytes(mac))}")
        if mtu < 68:
            raise InvalidParameterError(f"MTU {mtu} is below the IPv4 minimum of 68")
        if compartment_id <= 0:
            raise InvalidParameterError(f"compartment id must be > 0 (got {compartment_id})")
        self.index = index
        self.addresses = [ipaddress.ip_interface(a) for a in addresses]
        self.mtu = mtu
        self.mac = bytes(mac) if mac is not None else None
        self.compartment_id = compartment_id
        self.up = up
        self.sub_interface_index = sub_interface_index
        self.implicit = implicit
        self.if_type = IF_TYPE_ETHERNET_CSMACD if self.mac is not None else IF_TYPE_OTHER
        self.link: Any = None  # a Link when connected wire-to-wire
        self.neighbors: dict[bytes, bytes] = {}

    @property
    def luid(self) -> int:
        """NET_LUID: IfType in bits 48-63, NetLuidIndex in bits 24-47 (ifdef.h)."""
        return (self.if_type << 48) | ((self.index & 0xFFFFFF) << 24)

    @property
    def ethernet(self) -> bool:
        return self.mac is not None

    def has_address(self, address: bytes) -> bool:
        return any(a.ip.packed == address for a in self.addresses)

    def source_for(self, family: int, destination: bytes | None = None) -> bytes | None:
        """The address to send from: one on-link with the destination if any, else the first."""
        version = 4 if family == AF_INET else 6
        mine = [a for a in self.addresses if a.version == version]
        if destination is not None:
            dst = ipaddress.ip_address(destination)
            for a in mine:
                if dst in a.network:
                    return a.ip.packed
        return mine[0].ip.packed if mine else None

    def on_link(self, address: bytes) -> bool:
        dst = ipaddress.ip_address(address)
        return any(a.version == dst.version and dst in a.network for a in self.addresses)

    def is_broadcast(self, address: bytes) -> bool:
        if len(address) != 4:
            return False
        if address == b"\xff\xff\xff\xff":
            return True
        dst = ipaddress.ip_address(address)
        return any(
            a.version == 4 and a.network.prefixlen < 31 and dst == a.network.broadcast_address
            for a in self.addresses
        )

    def __repr__(self) -> str:
        addrs = ", ".join(str(a) for a in self.addresses)
        return (
            f"<Interface {self.index} [{addrs}] mtu={self.mtu} compartment={self.compartment_id}>"
        )


@dataclass
class Datagram:
    """Data delivered to a local endpoint."""

    data: bytes
    remote_address: str
    remote_port: int
    interface_index: int
    time_ns: int
    function: str | None = None  # the inject function, when the packet was injected


class Endpoint:
    """A transport endpoint (socket). ``handle`` is its ``transportEndpointHandle``."""

    def __init__(
        self,
        stack: Stack,
        address_family: int,
        protocol: int,
        local_address: bytes | None,
        local_port: int,
        *,
        compartment_id: int = 1,
        header_include: bool = False,
        raw: bool = False,
        process_id: int = 4,
        app_path: str = "\\device\\harddiskvolume1\\windows\\system32\\wfpsim-app.exe",
        listening: bool = False,
    ) -> None:
        self.handle = next(_endpoint_handles)
        self.stack = stack
        self.address_family = address_family
        self.protocol = protocol
        self.local_address = local_address  # None: wildcard bind
        self.local_port = local_port
        self.compartment_id = compartment_id
        self.header_include = header_include
        self.raw = raw or header_include
        self.process_id = process_id
        self.app_path = app_path
        self.listening = listening
        self.closed = False
        self.received: list[Datagram] = []

    def close(self) -> None:
        """Closes the socket: its handle becomes stale (transport sends through it then fail
        late, S-39), flows it owns are closed."""
        if self.closed:
            return
        self.closed = True
        self.stack._endpoint_closed(self)

    def matches(self, address: bytes, port: int) -> bool:
        if self.closed or (self.local_port and self.local_port != port):
            return False
        return self.local_address is None or self.local_address == address

    def __repr__(self) -> str:
        local = addr_text(self.local_address) if self.local_address else "*"
        state = " closed" if self.closed else ""
        return f"<Endpoint {self.handle:#x} proto={self.protocol} {local}:{self.local_port}{state}>"


class DatagramFlow:
    """ALE state of a non-TCP flow: (endpoint, remote address, remote port)."""

    def __init__(self, endpoint: Endpoint, remote: tuple[bytes, int], direction: int) -> None:
        self.flow_id = next_flow_id()
        self.endpoint = endpoint
        self.remote = remote
        self.direction = direction  # FWP_DIRECTION of the first packet
        self.state = "new"  # "new", "pending", "authorized", "refused"
        self.queued: list[Any] = []  # packets held while the ALE classify is pended


class TcpFlow:
    """A TCP connection. ``flow_id`` is the run-time flow handle."""

    def __init__(
        self,
        stack: Stack,
        address_family: int,
        local: tuple[bytes, int],
        remote: tuple[bytes, int],
        endpoint: Endpoint,
        *,
        direction: int = 0,
        interface_index: int = 0,
    ) -> None:
        self.flow_id = next_flow_id()
        self.stack = stack
        self.address_family = address_family
        self.local = local
        self.remote = remote
        self.endpoint = endpoint
        self.direction = direction  # FWP_DIRECTION of the connection (who connected)
        self.interface_index = interface_index
        self.state = "established"  # "syn_received", "established", "closed", "refused"
        self.snd_nxt = 1000
        self.rcv_nxt = 0
        self.received = bytearray()  # stream bytes delivered to the local application
        self.sent = bytearray()  # stream bytes put on the wire
        self.fin_received = False  # FIN delivered to the application
        self.fin_sent = False
        self.fin_indicated = {0: False, 1: False}  # a FIN was indicated at the stream layer
        self.fin_released = {0: False, 1: False}  # ... and passed all stream callouts
        self.deferred = {0: False, 1: False}  # engine reported DEFER for the direction
        self.classifying: dict[int, int] = {}  # direction -> nesting depth of stream_classify
        self.dropped = False

    @property
    def closed(self) -> bool:
        return self.state in ("closed", "refused")

    @property
    def compartment_id(self) -> int:
        return self.endpoint.compartment_id

    def fin_pended(self, direction: int) -> bool:
        """A FIN was indicated but a stream callout held it back (pended FIN)."""
        return self.fin_indicated[direction] and not self.fin_released[direction]

    def close(self) -> None:
        """Closes the connection (no FIN is sent; TCP termination is not indicated to WFP)."""
        if self.state != "closed":
            self.state = "closed"
            self.stack._flow_closed(self)

    def send(self, data: bytes, *, push: bool = True) -> None:
        """The application writes ``data`` to the connection (outbound stream)."""
        self.stack.send(self.endpoint, bytes(data), flow=self, push=push)

    def __repr__(self) -> str:
        return (
            f"<TcpFlow {self.flow_id:#x} {addr_text(self.local[0])}:{self.local[1]} -> "
            f"{addr_text(self.remote[0])}:{self.remote[1]} {self.state}>"
        )


def parse_endpoint_address(address: Any, family: int | None = None) -> bytes | None:
    if address is None or address in ("", "*"):
        return None
    raw = addr_bytes(address)
    if family is not None and (len(raw) == 4) != (family == AF_INET):
        raise InvalidParameterError(
            f"address {addr_text(raw)} does not belong to address family {family}",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    return raw


def require_family(address_family: int) -> int:
    if address_family not in (AF_INET, AF_INET6):
        raise InvalidParameterError(
            f"address_family must be AF_INET (2) or AF_INET6 (23), not {address_family}",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    return address_family


def require_open(endpoint: Endpoint) -> None:
    if endpoint.closed:
        raise InvalidStateError(
            f"endpoint {endpoint.handle:#x} is closed", NTSTATUS.STATUS_INVALID_HANDLE
        )


__all__ = [
    "Interface",
    "Endpoint",
    "Datagram",
    "DatagramFlow",
    "TcpFlow",
    "next_flow_id",
]
