//! Checksums and header operations (issue 3) on the Python side: the free functions, the
//! result classes, and the checksum methods of NetBuffer / NetBufferList / Chain.

use numpy::PyArray1;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};
use wfpsim_core::checksum::{self, ChecksumInfo};
use wfpsim_core::heap::{NbOwner, PerPacket};
use wfpsim_core::packet::{
    self, Endpoint, FieldKind, FixAction, FixReport, ParseSummary as CoreSummary, Verdicts,
};
use wfpsim_core::{ErrorKind, NbId};

use crate::engine;
use crate::errors::{raise, IntoPyResult};
use crate::objects::{Chain, NetBuffer, NetBufferList};

// ---- free functions ----

/// Calls `f` with the bytes of any buffer; `bytes` objects take a copy-free fast path.
fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
        raise(
            ErrorKind::InvalidParameter,
            None,
            "expected a bytes-like object (bytes, bytearray, memoryview, numpy uint8)",
        )
    })?;
    if !buf.is_c_contiguous() {
        return Err(raise(
            ErrorKind::InvalidParameter,
            None,
            "the buffer must be C-contiguous",
        ));
    }
    // SAFETY: the export pins the memory for the lifetime of `buf`; read-only use.
    let data = unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, buf.len_bytes()) };
    Ok(f(data))
}

/// The Internet checksum (RFC 1071) of `buffer`: the final, complemented value. `initial` is an
/// uncomplemented 16-bit partial sum (e.g. a pseudo-header sum) added before complementing.
#[pyfunction]
#[pyo3(signature = (buffer, initial=0))]
pub fn internet_checksum(buffer: &Bound<'_, PyAny>, initial: u16) -> PyResult<u16> {
    with_bytes(buffer, |d| checksum::internet_checksum(d, initial))
}

/// The folded one's-complement sum of `buffer` (uncomplemented), for building partial sums.
#[pyfunction]
pub fn ones_sum(buffer: &Bound<'_, PyAny>) -> PyResult<u16> {
    with_bytes(buffer, checksum::ones_sum)
}

/// The IPv4 (4-byte addresses) or IPv6 (16-byte) pseudo-header sum, uncomplemented.
#[pyfunction]
pub fn pseudo_header_sum(
    source: &[u8],
    destination: &[u8],
    protocol: u8,
    length: u32,
) -> PyResult<u16> {
    if let (Ok(s), Ok(d)) = (
        <&[u8; 4]>::try_from(source),
        <&[u8; 4]>::try_from(destination),
    ) {
        let len = u16::try_from(length).map_err(|_| {
            raise(
                ErrorKind::InvalidParameter,
                None,
                "IPv4 upper-layer length exceeds 65535",
            )
        })?;
        return Ok(checksum::pseudo_header_v4(s, d, protocol, len));
    }
    match (
        <&[u8; 16]>::try_from(source),
        <&[u8; 16]>::try_from(destination),
    ) {
        (Ok(s), Ok(d)) => Ok(checksum::pseudo_header_v6(s, d, protocol, length)),
        _ => Err(raise(
            ErrorKind::InvalidParameter,
            None,
            "addresses must both be 4 bytes (IPv4) or both 16 bytes (IPv6)",
        )),
    }
}

/// RFC 1624 incremental update of a stored checksum for a 16-bit field changing `old` → `new`.
#[pyfunction]
pub fn checksum_update16(checksum: u16, old: u16, new: u16) -> u16 {
    checksum::update16(checksum, old, new)
}

/// RFC 1624 incremental update for a 32-bit field (an IPv4 address) changing `old` → `new`.
#[pyfunction]
pub fn checksum_update32(checksum: u16, old: u32, new: u32) -> u16 {
    checksum::update32(checksum, old, new)
}

/// `(name, mask)` of every flag of NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO (`checksums.md §7.1`),
/// plus the TcpHeaderOffset mask: the Python `ChecksumInfo` is generated from this table.
#[pyfunction]
pub fn checksum_info_layout() -> Vec<(&'static str, u32)> {
    vec![
        ("is_ipv4", ChecksumInfo::IS_IPV4),
        ("is_ipv6", ChecksumInfo::IS_IPV6),
        ("tcp_checksum", ChecksumInfo::TCP_CHECKSUM),
        ("udp_checksum", ChecksumInfo::UDP_CHECKSUM),
        ("ip_header_checksum", ChecksumInfo::IP_HEADER_CHECKSUM),
        ("tcp_checksum_failed", ChecksumInfo::TCP_CHECKSUM_FAILED),
        ("udp_checksum_failed", ChecksumInfo::UDP_CHECKSUM_FAILED),
        ("ip_checksum_failed", ChecksumInfo::IP_CHECKSUM_FAILED),
        (
            "tcp_checksum_succeeded",
            ChecksumInfo::TCP_CHECKSUM_SUCCEEDED,
        ),
        (
            "udp_checksum_succeeded",
            ChecksumInfo::UDP_CHECKSUM_SUCCEEDED,
        ),
        ("ip_checksum_succeeded", ChecksumInfo::IP_CHECKSUM_SUCCEEDED),
        ("loopback", ChecksumInfo::LOOPBACK),
        (
            "tcp_checksum_value_invalid",
            ChecksumInfo::TCP_CHECKSUM_VALUE_INVALID,
        ),
        (
            "ip_checksum_value_invalid",
            ChecksumInfo::IP_CHECKSUM_VALUE_INVALID,
        ),
        ("tcp_header_offset", ChecksumInfo::TCP_HEADER_OFFSET_MASK),
    ]
}

// ---- result classes ----

/// Where a packet's headers lie and how it is fragmented (offsets from the data start).
#[pyclass(frozen, get_all, module = "wfpsim._core")]
#[derive(Clone)]
pub struct ParseSummary {
    network_offset: u32,
    network_header_len: u32,
    transport_offset: u32,
    payload_len: u32,
    fragment_offset: u32,
    fragment_id: u32,
    ip_version: u8,
    transport_protocol: u8,
    is_fragment: bool,
    first_fragment: bool,
    more_fragments: bool,
    truncated: bool,
}

impl From<CoreSummary> for ParseSummary {
    fn from(s: CoreSummary) -> Self {
        ParseSummary {
            network_offset: s.network_offset,
            network_header_len: s.network_header_len,
            transport_offset: s.transport_offset,
            payload_len: s.payload_len,
            fragment_offset: s.fragment_offset,
            fragment_id: s.fragment_id,
            ip_version: s.ip_version,
            transport_protocol: s.transport_protocol,
            is_fragment: s.is_fragment,
            first_fragment: s.first_fragment,
            more_fragments: s.more_fragments,
            truncated: s.truncated,
        }
    }
}

#[pymethods]
impl ParseSummary {
    fn __repr__(&self) -> String {
        format!(
            "<ParseSummary IPv{} proto={} net@{}+{} transport@{} payload={}{}{}>",
            self.ip_version,
            self.transport_protocol,
            self.network_offset,
            self.network_header_len,
            self.transport_offset,
            self.payload_len,
            if self.is_fragment {
                format!(
                    " fragment(off={}, MF={})",
                    self.fragment_offset, self.more_fragments
                )
            } else {
                String::new()
            },
            if self.truncated { " truncated" } else { "" },
        )
    }
}

fn verdict_member(py: Python<'_>, v: packet::Verdict) -> PyResult<Py<PyAny>> {
    static MEMBERS: PyOnceLock<Py<PyList>> = PyOnceLock::new();
    let list = MEMBERS.get_or_try_init(py, || -> PyResult<Py<PyList>> {
        let cls = py.import("wfpsim.checksums")?.getattr("Verdict")?;
        let members = PyList::empty(py);
        for i in 0..5u8 {
            members.append(cls.call1((i,))?)?;
        }
        Ok(members.unbind())
    })?;
    Ok(list.bind(py).get_item(v as usize)?.unbind())
}

/// The verdicts for the IP header (`.ip`; ABSENT for IPv6) and the transport header
/// (`.transport`), each a `wfpsim.Verdict`. From an NBL, these are its first NB's verdicts and
/// `.per_net_buffer` lists every NB's.
#[pyclass(frozen, get_all, module = "wfpsim._core")]
pub struct ChecksumVerdicts {
    ip: Py<PyAny>,
    transport: Py<PyAny>,
    summary: Py<ParseSummary>,
    per_net_buffer: Option<Py<PyList>>,
}

#[pymethods]
impl ChecksumVerdicts {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<ChecksumVerdicts ip={} transport={}>",
            self.ip.bind(py).repr()?,
            self.transport.bind(py).repr()?
        ))
    }
}

fn verdicts_obj(py: Python<'_>, v: Verdicts) -> PyResult<ChecksumVerdicts> {
    Ok(ChecksumVerdicts {
        ip: verdict_member(py, v.ip)?,
        transport: verdict_member(py, v.transport)?,
        summary: Py::new(py, ParseSummary::from(v.summary))?,
        per_net_buffer: None,
    })
}

fn action_parts(a: FixAction) -> (&'static str, Option<u16>) {
    match a {
        FixAction::Full(v) => ("full", Some(v)),
        FixAction::Seed(v) => ("seed", Some(v)),
        FixAction::Cleared => ("cleared", Some(0)),
        FixAction::Untouched => ("untouched", None),
    }
}

/// What `fix_checksums` wrote: per header an action ("full", "seed" for TX offload, "cleared"
/// for an offloaded IPv4 header, "untouched") and the value written.
#[pyclass(frozen, get_all, name = "FixReport", module = "wfpsim._core")]
pub struct FixReportPy {
    ip: &'static str,
    ip_value: Option<u16>,
    transport: &'static str,
    transport_value: Option<u16>,
    summary: Py<ParseSummary>,
    per_net_buffer: Option<Py<PyList>>,
}

#[pymethods]
impl FixReportPy {
    fn __repr__(&self) -> String {
        format!(
            "<FixReport ip={} transport={} value={:?}>",
            self.ip, self.transport, self.transport_value
        )
    }
}

fn fix_obj(py: Python<'_>, r: FixReport) -> PyResult<FixReportPy> {
    let (ip, ip_value) = action_parts(r.ip);
    let (transport, transport_value) = action_parts(r.transport);
    Ok(FixReportPy {
        ip,
        ip_value,
        transport,
        transport_value,
        summary: Py::new(py, ParseSummary::from(r.summary))?,
        per_net_buffer: None,
    })
}

// ---- NB / NBL / Chain methods ----

/// The checksum info an NB is handled with: explicit, else its NBL's slot 0, else none.
fn info_for(nb: NbId, explicit: Option<u64>) -> PyResult<ChecksumInfo> {
    if let Some(v) = explicit {
        return Ok(ChecksumInfo::from_value(v as usize));
    }
    engine::with(|e| {
        let owner = e.heap.nb(nb)?.owner;
        match owner {
            NbOwner::Preallocated(nbl) | NbOwner::Clone(nbl) if e.heap.nbl_alive(nbl) => {
                e.heap.checksum_info(nbl)
            }
            _ => Ok(ChecksumInfo::NONE),
        }
    })
    .py()
}

fn endpoint(which: &str) -> PyResult<Endpoint> {
    match which {
        "source" | "src" => Ok(Endpoint::Source),
        "destination" | "dst" => Ok(Endpoint::Destination),
        _ => Err(raise(
            ErrorKind::InvalidParameter,
            None,
            format!("which must be 'source' or 'destination', not {which:?}"),
        )),
    }
}

/// Accepts an int or an object with an int `.value` (wfpsim.ChecksumInfo).
fn info_arg(info: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match info {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => match o.extract::<u64>() {
            Ok(v) => Ok(Some(v)),
            Err(_) => Ok(Some(o.getattr("value")?.extract::<u64>()?)),
        },
    }
}

#[pymethods]
impl NetBuffer {
    /// Parses the data as an IP packet (network-layer view): offsets, protocols, fragments.
    fn parse(&self) -> PyResult<ParseSummary> {
        engine::with(|e| e.heap.parse_nb(self.id))
            .py()
            .map(ParseSummary::from)
    }

    /// Verifies the IPv4 header and transport checksums; `info` overrides the NBL's
    /// TcpIpChecksumNetBufferListInfo (read through its Transmit view).
    #[pyo3(signature = (info=None))]
    fn verify_checksums(
        &self,
        py: Python<'_>,
        info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ChecksumVerdicts> {
        let info = info_for(self.id, info_arg(info)?)?;
        let v = engine::with(|e| e.heap.verify_nb(self.id, info)).py()?;
        verdicts_obj(py, v)
    }

    /// Recomputes the IPv4 header checksum and the transport checksum in full, or writes the
    /// pseudo-header seed where the checksum info requests TX offload; never touches the
    /// transport checksum of a fragment.
    #[pyo3(signature = (info=None))]
    fn fix_checksums(
        &self,
        py: Python<'_>,
        info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<FixReportPy> {
        let info = info_for(self.id, info_arg(info)?)?;
        let r = engine::with(|e| e.heap.fix_nb(self.id, info)).py()?;
        fix_obj(py, r)
    }

    /// Rewrites the source or destination address (4 or 16 bytes) with RFC 1624 updates of the
    /// IPv4 header and transport checksums (the NAT case).
    #[pyo3(signature = (which, address, info=None))]
    fn rewrite_address(
        &self,
        which: &str,
        address: &[u8],
        info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let which = endpoint(which)?;
        let info = info_for(self.id, info_arg(info)?)?;
        engine::with(|e| {
            packet::rewrite_address(&mut e.heap.nb_pieces_mut(self.id)?, which, address, info)
        })
        .py()
    }

    /// Rewrites the TCP/UDP source or destination port incrementally; returns the old port.
    #[pyo3(signature = (which, port, info=None))]
    fn rewrite_port(
        &self,
        which: &str,
        port: u16,
        info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u16> {
        let which = endpoint(which)?;
        let info = info_for(self.id, info_arg(info)?)?;
        engine::with(|e| {
            packet::rewrite_port(&mut e.heap.nb_pieces_mut(self.id)?, which, port, info)
        })
        .py()
    }

    /// Decrements the IPv4 TTL / IPv6 hop limit (updating the IPv4 header checksum); returns it.
    #[pyo3(signature = (info=None))]
    fn decrement_ttl(&self, info: Option<&Bound<'_, PyAny>>) -> PyResult<u8> {
        let info = info_for(self.id, info_arg(info)?)?;
        engine::with(|e| packet::decrement_ttl(&mut e.heap.nb_pieces_mut(self.id)?, info)).py()
    }

    /// Writes a 16-bit field at `field_offset` and repairs the 16-bit checksum at
    /// `checksum_offset` incrementally; `kind` is "checksum", "udp" (0 stays 0) or "seed".
    #[pyo3(signature = (field_offset, value, checksum_offset, kind="checksum"))]
    fn update_field16(
        &self,
        field_offset: usize,
        value: u16,
        checksum_offset: usize,
        kind: &str,
    ) -> PyResult<u16> {
        let kind = match kind {
            "checksum" => FieldKind::Checksum,
            "udp" => FieldKind::UdpChecksum,
            "seed" => FieldKind::Seed,
            _ => {
                return Err(raise(
                    ErrorKind::InvalidParameter,
                    None,
                    "kind must be 'checksum', 'udp' or 'seed'",
                ))
            }
        };
        engine::with(|e| {
            packet::update_field16(
                &mut e.heap.nb_pieces_mut(self.id)?,
                field_offset,
                value,
                checksum_offset,
                kind,
            )
        })
        .py()
    }

    /// The pseudo-header sum of the packet (final destination / home address rules applied).
    #[pyo3(signature = (include_length=true))]
    fn pseudo_header_sum(&self, include_length: bool) -> PyResult<u16> {
        engine::with(|e| packet::pseudo_header_sum(&e.heap.nb_pieces(self.id)?, include_length))
            .py()
    }

    /// The Internet checksum over the NB's data as it lies across its MDLs (no copy).
    #[pyo3(signature = (initial=0))]
    fn internet_checksum(&self, initial: u16) -> PyResult<u16> {
        engine::with(|e| {
            let p = e.heap.nb_pieces(self.id)?;
            checksum::internet_checksum_segmented(
                &p,
                0,
                wfpsim_core::bytes::Segmented::total_len(&p),
                initial,
            )
        })
        .py()
    }
}

#[pymethods]
impl NetBufferList {
    /// TcpIpChecksumNetBufferListInfo (slot 0) as an int.
    #[getter]
    fn checksum_info(&self) -> PyResult<u64> {
        engine::with(|e| e.heap.checksum_info(self.id).map(|i| i.value() as u64)).py()
    }

    #[setter]
    fn set_checksum_info(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = info_arg(Some(value))?.unwrap_or(0);
        engine::with(|e| {
            e.heap.nbl_mut(self.id).map(|n| {
                n.info
                    .set(wfpsim_core::heap::CHECKSUM_INFO_SLOT, v as usize)
            })
        })
        .py()
    }

    /// The first NB's verdicts; `.per_net_buffer` holds every NB's.
    fn verify_checksums(&self, py: Python<'_>) -> PyResult<ChecksumVerdicts> {
        let nbs = engine::with(|e| e.heap.nbs_of(self.id).map(|v| v.to_vec())).py()?;
        let all = PyList::empty(py);
        let mut first = None;
        for nb in nbs {
            let info = info_for(nb, None)?;
            let v = engine::with(|e| e.heap.verify_nb(nb, info)).py()?;
            first.get_or_insert(v);
            all.append(Py::new(py, verdicts_obj(py, v)?)?)?;
        }
        let first = first
            .ok_or_else(|| raise(ErrorKind::InvalidState, None, "this NBL has no NET_BUFFER"))?;
        let mut out = verdicts_obj(py, first)?;
        out.per_net_buffer = Some(all.unbind());
        Ok(out)
    }

    /// Fixes every NB; returns the first NB's report with `.per_net_buffer` holding every NB's.
    fn fix_checksums(&self, py: Python<'_>) -> PyResult<FixReportPy> {
        let nbs = engine::with(|e| e.heap.nbs_of(self.id).map(|v| v.to_vec())).py()?;
        let all = PyList::empty(py);
        let mut reports = Vec::new();
        for nb in nbs {
            let info = info_for(nb, None)?;
            let r = engine::with(|e| e.heap.fix_nb(nb, info)).py()?;
            reports.push(r);
            all.append(Py::new(py, fix_obj(py, r)?)?)?;
        }
        let first = *reports
            .first()
            .ok_or_else(|| raise(ErrorKind::InvalidState, None, "this NBL has no NET_BUFFER"))?;
        let mut out = fix_obj(py, first)?;
        out.per_net_buffer = Some(all.unbind());
        Ok(out)
    }
}

/// Column arrays of a batch of parse summaries (one entry per NB).
fn summary_columns<'py>(
    py: Python<'py>,
    rows: &[Option<CoreSummary>],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    macro_rules! col {
        ($name:literal, $ty:ty, $f:expr) => {
            let v: Vec<$ty> = rows.iter().map(|r| r.map($f).unwrap_or_default()).collect();
            d.set_item($name, PyArray1::from_vec(py, v))?;
        };
    }
    col!("network_offset", u32, |s: CoreSummary| s.network_offset);
    col!("network_header_len", u32, |s: CoreSummary| s
        .network_header_len);
    col!("transport_offset", u32, |s: CoreSummary| s.transport_offset);
    col!("payload_len", u32, |s: CoreSummary| s.payload_len);
    col!("fragment_offset", u32, |s: CoreSummary| s.fragment_offset);
    col!("fragment_id", u32, |s: CoreSummary| s.fragment_id);
    col!("ip_version", u8, |s: CoreSummary| s.ip_version);
    col!("transport_protocol", u8, |s: CoreSummary| s
        .transport_protocol);
    col!("is_fragment", bool, |s: CoreSummary| s.is_fragment);
    col!("first_fragment", bool, |s: CoreSummary| s.first_fragment);
    col!("more_fragments", bool, |s: CoreSummary| s.more_fragments);
    col!("truncated", bool, |s: CoreSummary| s.truncated);
    let parsed: Vec<bool> = rows.iter().map(|r| r.is_some()).collect();
    d.set_item("parsed", PyArray1::from_vec(py, parsed))?;
    Ok(d)
}

fn errors_of<T>(py: Python<'_>, per: &PerPacket<T>) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for (i, r) in per.results.iter().enumerate() {
        if let Err(e) = r {
            d.set_item(i, e.message.clone())?;
        }
    }
    Ok(d.unbind())
}

/// Verdicts of a whole chain: `ip` and `transport` are uint8 arrays of `wfpsim.Verdict` values,
/// one per NB; `errors` maps an index to the parse error of a malformed packet (its verdicts
/// are NOT_CHECKABLE); `summary` is a dict of numpy columns; `nbl_index` maps NB → NBL.
#[pyclass(frozen, get_all, module = "wfpsim._core")]
pub struct BatchVerdicts {
    ip: Py<PyAny>,
    transport: Py<PyAny>,
    errors: Py<PyDict>,
    summary: Py<PyDict>,
    nbl_index: Py<PyAny>,
}

#[pymethods]
impl BatchVerdicts {
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.ip.bind(py).len()
    }
}

/// Outcome of fixing a chain: per-NB transport action codes (0 untouched, 1 full, 2 seed,
/// 3 cleared) and values, IP actions likewise, and `errors` for malformed packets.
#[pyclass(frozen, get_all, module = "wfpsim._core")]
pub struct BatchFix {
    ip_action: Py<PyAny>,
    transport_action: Py<PyAny>,
    transport_value: Py<PyAny>,
    errors: Py<PyDict>,
    fixed: usize,
}

fn action_code(a: FixAction) -> (u8, u16) {
    match a {
        FixAction::Untouched => (0, 0),
        FixAction::Full(v) => (1, v),
        FixAction::Seed(v) => (2, v),
        FixAction::Cleared => (3, 0),
    }
}

#[pymethods]
impl Chain {
    /// Verifies every NB of the chain in one call, with the GIL released.
    fn verify_checksums(&self, py: Python<'_>) -> PyResult<BatchVerdicts> {
        let per = match self.head {
            Some(h) => engine::with_detached(py, |heap| heap.verify_chain(h)).py()?,
            None => PerPacket {
                nbl_index: Vec::new(),
                results: Vec::new(),
            },
        };
        let nc = packet::Verdict::NotCheckable as u8;
        let ip: Vec<u8> = per
            .results
            .iter()
            .map(|r| r.as_ref().map(|v| v.ip as u8).unwrap_or(nc))
            .collect();
        let tr: Vec<u8> = per
            .results
            .iter()
            .map(|r| r.as_ref().map(|v| v.transport as u8).unwrap_or(nc))
            .collect();
        let rows: Vec<Option<CoreSummary>> = per
            .results
            .iter()
            .map(|r| r.as_ref().ok().map(|v| v.summary))
            .collect();
        Ok(BatchVerdicts {
            ip: PyArray1::from_vec(py, ip).into_any().unbind(),
            transport: PyArray1::from_vec(py, tr).into_any().unbind(),
            errors: errors_of(py, &per)?,
            summary: summary_columns(py, &rows)?.unbind(),
            nbl_index: PyArray1::from_vec(py, per.nbl_index).into_any().unbind(),
        })
    }

    /// Fixes every NB of the chain in one call (offload-aware per NBL), with the GIL released.
    fn fix_checksums(&self, py: Python<'_>) -> PyResult<BatchFix> {
        let per = match self.head {
            Some(h) => engine::with_detached(py, |heap| heap.fix_chain(h)).py()?,
            None => PerPacket {
                nbl_index: Vec::new(),
                results: Vec::new(),
            },
        };
        let mut ip_a = Vec::with_capacity(per.results.len());
        let mut tr_a = Vec::with_capacity(per.results.len());
        let mut tr_v = Vec::with_capacity(per.results.len());
        let mut fixed = 0;
        for r in &per.results {
            let (ia, ta, tv) = match r {
                Ok(rep) => {
                    fixed += 1;
                    let (ia, _) = action_code(rep.ip);
                    let (ta, tv) = action_code(rep.transport);
                    (ia, ta, tv)
                }
                Err(_) => (0, 0, 0),
            };
            ip_a.push(ia);
            tr_a.push(ta);
            tr_v.push(tv);
        }
        Ok(BatchFix {
            ip_action: PyArray1::from_vec(py, ip_a).into_any().unbind(),
            transport_action: PyArray1::from_vec(py, tr_a).into_any().unbind(),
            transport_value: PyArray1::from_vec(py, tr_v).into_any().unbind(),
            errors: errors_of(py, &per)?,
            fixed,
        })
    }

    /// The Internet checksum of every NB's data in one call (GIL released): a uint16 array.
    #[pyo3(signature = (initial=0))]
    fn internet_checksums<'py>(
        &self,
        py: Python<'py>,
        initial: u16,
    ) -> PyResult<Bound<'py, PyArray1<u16>>> {
        let sums = match self.head {
            Some(h) => engine::with_detached(py, |heap| heap.checksum_chain(h, initial)).py()?,
            None => Vec::new(),
        };
        Ok(PyArray1::from_vec(py, sums))
    }

    /// Parse summaries of every NB as a dict of numpy columns (`parsed` False for malformed ones).
    fn parse<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let per = match self.head {
            Some(h) => engine::with_detached(py, |heap| heap.parse_chain(h)).py()?,
            None => PerPacket {
                nbl_index: Vec::new(),
                results: Vec::new(),
            },
        };
        let rows: Vec<Option<CoreSummary>> = per
            .results
            .iter()
            .map(|r| r.as_ref().ok().copied())
            .collect();
        summary_columns(py, &rows)
    }
}
