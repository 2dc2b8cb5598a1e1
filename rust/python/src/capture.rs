//! Capture files and native pipelines from Python (issue 6): a reader that yields chains of
//! NBLs batch by batch, a writer that takes chains, and the Rust pipeline stages.

use std::fs::File;
use std::io::BufWriter;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wfpsim_core::capture::{
    CaptureError, CaptureFormat, CaptureReader as CoreReader, LinkType, PcapPrecision, PcapWriter,
    PcapngWriter,
};
use wfpsim_core::packet::Endpoint;
use wfpsim_core::pipeline::{Stage, StageStats, VERDICT_NAMES};
use wfpsim_core::replay::RecordWriter;
use wfpsim_core::ErrorKind;

use crate::engine::{self, caller_site};
use crate::errors::{error_class, raise, IntoPyResult};
use crate::objects::Chain;

/// `wfpsim.CaptureError` with `.record` and `.offset` set (the damaged record and its byte offset).
fn capture_error(e: CaptureError) -> PyErr {
    Python::attach(|py| {
        let cls = match error_class(py, "CaptureError") {
            Ok(c) => c,
            Err(err) => return err,
        };
        match cls.call1((e.message.clone(), None::<u32>)) {
            Ok(exc) => {
                let _ = exc.setattr("record", e.record);
                let _ = exc.setattr("offset", e.offset);
                PyErr::from_value(exc)
            }
            Err(err) => err,
        }
    })
}

/// Reads a pcap or pcapng file as chains of NBLs, one chain per batch, with bounded memory.
/// Iterating yields `Chain`s; the caller frees each (or uses `with chain:`). On damage, the
/// packets before it come first, then `CaptureError` naming the record and byte offset.
#[pyclass(module = "wfpsim._core")]
pub struct CaptureReader {
    inner: Option<CoreReader<File>>,
    /// Batch buffers coming back from freed chains, reused for the next batches.
    pool: wfpsim_core::memory::BufferPool,
    batch_packets: usize,
    batch_bytes: usize,
}

#[pymethods]
impl CaptureReader {
    #[new]
    #[pyo3(signature = (path, batch_packets=65536, batch_bytes=1 << 20))]
    fn new(path: std::path::PathBuf, batch_packets: usize, batch_bytes: usize) -> PyResult<Self> {
        if batch_packets == 0 || batch_bytes == 0 {
            return Err(raise(
                ErrorKind::InvalidParameter,
                None,
                "batch_packets and batch_bytes must be positive",
            ));
        }
        let inner = CoreReader::open(&path).map_err(capture_error)?;
        Ok(CaptureReader {
            inner: Some(inner),
            pool: Default::default(),
            batch_packets,
            batch_bytes,
        })
    }

    /// The next batch as a chain, or None at the end of the file.
    fn next_chain(&mut self, py: Python<'_>) -> PyResult<Option<Chain>> {
        let Some(reader) = self.inner.as_mut() else {
            return Ok(None);
        };
        let (bp, bb) = (self.batch_packets, self.batch_bytes);
        let spare: Vec<Vec<u8>> = self
            .pool
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for buf in spare {
            reader.give_buffer(buf);
        }
        let batch = py
            .detach(|| reader.next_batch(bp, bb))
            .map_err(capture_error)?;
        let Some(batch) = batch else { return Ok(None) };
        if batch.is_empty() {
            return Ok(Some(Chain { head: None }));
        }
        let site = caller_site(py);
        let pool = self.pool.clone();
        let nbls = engine::with(|e| e.heap.chain_from_batch(batch, Some(&pool), site)).py()?;
        Ok(Some(Chain {
            head: nbls.first().copied(),
        }))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Chain>> {
        self.next_chain(py)
    }

    /// "pcap" or "pcapng".
    #[getter]
    fn format(&self) -> Option<&'static str> {
        self.inner.as_ref().map(|r| match r.format() {
            CaptureFormat::Pcap(_) => "pcap",
            CaptureFormat::Pcapng => "pcapng",
        })
    }

    /// True for a pcap file with nanosecond timestamps (pcapng: per interface, always exact).
    #[getter]
    fn nanosecond(&self) -> bool {
        matches!(self.inner.as_ref().map(|r| r.format()), Some(CaptureFormat::Pcap(h)) if h.nanos)
    }

    #[getter]
    fn records_read(&self) -> u64 {
        self.inner.as_ref().map(|r| r.records_read()).unwrap_or(0)
    }

    /// Bytes consumed from the file so far.
    #[getter]
    fn position(&self) -> u64 {
        self.inner.as_ref().map(|r| r.position()).unwrap_or(0)
    }

    fn close(&mut self) {
        self.inner = None;
    }
}

/// Writes chains to a pcap (nanosecond) or pcapng file. A pcap holds one link type: the first
/// record's; a record of another link type is refused with an error that says to use pcapng.
#[pyclass(module = "wfpsim._core")]
pub struct CaptureWriter {
    file: Option<BufWriter<File>>,
    writer: Option<RecordWriter<BufWriter<File>>>,
    pcapng: bool,
    snaplen: u32,
    written: u64,
}

impl CaptureWriter {
    fn ensure(&mut self, link_type: u32) -> PyResult<&mut RecordWriter<BufWriter<File>>> {
        if self.writer.is_none() {
            let file = self.file.take().ok_or_else(|| {
                raise(
                    ErrorKind::InvalidState,
                    None,
                    "the capture writer is closed",
                )
            })?;
            let w = if self.pcapng {
                RecordWriter::Pcapng(
                    PcapngWriter::with_defaults(
                        file,
                        self.snaplen,
                        wfpsim_core::capture::TsResolution::Decimal(9),
                    )
                    .map_err(capture_error)?,
                )
            } else {
                RecordWriter::Pcap(
                    PcapWriter::new(file, LinkType(link_type), self.snaplen, PcapPrecision::Nano)
                        .map_err(capture_error)?,
                )
            };
            self.writer = Some(w);
        }
        self.writer.as_mut().ok_or_else(|| {
            raise(
                ErrorKind::InvalidState,
                None,
                "the capture writer is closed",
            )
        })
    }
}

#[pymethods]
impl CaptureWriter {
    #[new]
    #[pyo3(signature = (path, format="pcap", snaplen=262144))]
    fn new(path: std::path::PathBuf, format: &str, snaplen: u32) -> PyResult<Self> {
        let pcapng = match format {
            "pcap" => false,
            "pcapng" => true,
            _ => {
                return Err(raise(
                    ErrorKind::InvalidParameter,
                    None,
                    format!("format must be 'pcap' or 'pcapng', not {format:?}"),
                ))
            }
        };
        let file = File::create(&path).map_err(|e| {
            raise(
                ErrorKind::Io,
                None,
                format!("cannot create {}: {e}", path.display()),
            )
        })?;
        Ok(CaptureWriter {
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            writer: None,
            pcapng,
            snaplen,
            written: 0,
        })
    }

    /// Writes every NB of the chain as one record (its NBL's link type, timestamp, original
    /// length); returns how many.
    #[pyo3(signature = (chain, delivered_only=false))]
    fn write_chain(
        &mut self,
        py: Python<'_>,
        chain: &Bound<'_, Chain>,
        delivered_only: bool,
    ) -> PyResult<u64> {
        let Some(head) = chain.get().head else {
            return Ok(0);
        };
        let first_link = engine::with(|e| e.heap.nbl(head).map(|n| n.meta.link_type)).py()?;
        let writer = self.ensure(first_link)?;
        let n = engine::with_detached(py, |heap| {
            heap.for_each_record(head, delivered_only, &mut |meta, data| {
                writer.write(meta, data)
            })
        })
        .py()?;
        self.written += n;
        Ok(n)
    }

    #[getter]
    fn records_written(&self) -> u64 {
        self.written
    }

    /// Flushes and closes the file (also on leaving a `with` block).
    fn close(&mut self) -> PyResult<()> {
        let result = match self.writer.take() {
            Some(RecordWriter::Pcap(w)) => w.finish().map(|_| ()),
            Some(RecordWriter::Pcapng(w)) => w.finish().map(|_| ()),
            None => Ok(()),
        };
        self.file = None;
        result.map_err(capture_error)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }
}

fn endpoint(which: &str) -> PyResult<Endpoint> {
    match which {
        "src" | "source" => Ok(Endpoint::Source),
        "dst" | "destination" => Ok(Endpoint::Destination),
        _ => Err(raise(
            ErrorKind::InvalidParameter,
            None,
            format!("endpoint must be 'src' or 'dst', not {which:?}"),
        )),
    }
}

fn mac(v: &[u8]) -> PyResult<[u8; 6]> {
    <[u8; 6]>::try_from(v).map_err(|_| {
        raise(
            ErrorKind::InvalidParameter,
            None,
            "a MAC address is 6 bytes",
        )
    })
}

/// Native pipeline stages, built from `(name, params)` tuples (see `wfpsim.pipeline` for the
/// string syntax): strip-link, push-eth, vlan-pop, vlan-push, nat-addr, nat-port, ttl,
/// fix-checksums, verify-checksums.
#[pyclass(frozen, module = "wfpsim._core")]
pub struct NativePipeline {
    stages: Vec<Stage>,
    names: Vec<String>,
}

#[pymethods]
impl NativePipeline {
    #[new]
    fn new(stages: Vec<(String, Bound<'_, PyDict>)>) -> PyResult<Self> {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for (name, p) in stages {
            let get = |k: &str| p.get_item(k).ok().flatten();
            let stage = match name.as_str() {
                "strip-link" => Stage::StripLink,
                "push-eth" => Stage::PushEthernet {
                    src: mac(&get("src")
                        .map(|v| v.extract::<Vec<u8>>())
                        .transpose()?
                        .unwrap_or(vec![2, 0, 0, 0, 0, 1]))?,
                    dst: mac(&get("dst")
                        .map(|v| v.extract::<Vec<u8>>())
                        .transpose()?
                        .unwrap_or(vec![2, 0, 0, 0, 0, 2]))?,
                },
                "vlan-pop" => Stage::VlanPop,
                "vlan-push" => Stage::VlanPush {
                    tci: get("tci").map(|v| v.extract()).transpose()?.unwrap_or(0),
                },
                "nat-addr" => Stage::NatAddress {
                    which: endpoint(
                        &get("which")
                            .map(|v| v.extract::<String>())
                            .transpose()?
                            .unwrap_or("src".into()),
                    )?,
                    from: get("from").map(|v| v.extract::<Vec<u8>>()).transpose()?,
                    to: get("to")
                        .ok_or_else(|| {
                            raise(ErrorKind::InvalidParameter, None, "nat-addr needs 'to'")
                        })?
                        .extract()?,
                },
                "nat-port" => Stage::NatPort {
                    which: endpoint(
                        &get("which")
                            .map(|v| v.extract::<String>())
                            .transpose()?
                            .unwrap_or("src".into()),
                    )?,
                    from: get("from").map(|v| v.extract()).transpose()?,
                    to: get("to")
                        .ok_or_else(|| {
                            raise(ErrorKind::InvalidParameter, None, "nat-port needs 'to'")
                        })?
                        .extract()?,
                },
                "ttl" => Stage::DecrementTtl,
                "fix-checksums" => Stage::FixChecksums,
                "verify-checksums" => Stage::VerifyChecksums,
                other => {
                    return Err(raise(
                        ErrorKind::InvalidParameter,
                        None,
                        format!("unknown native stage {other:?}"),
                    ))
                }
            };
            out.push(stage);
            names.push(name);
        }
        Ok(NativePipeline { stages: out, names })
    }

    /// Runs every stage over the chain with the GIL released; returns one stats dict per stage.
    fn run<'py>(
        &self,
        py: Python<'py>,
        chain: &Bound<'py, Chain>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let mut stats: Vec<StageStats> = Vec::new();
        if let Some(head) = chain.get().head {
            let stages = &self.stages;
            let st = &mut stats;
            engine::with_detached(py, move |heap| heap.run_pipeline(head, stages, st)).py()?;
        } else {
            stats.resize(self.stages.len(), StageStats::default());
        }
        stats
            .iter()
            .zip(&self.names)
            .map(|(s, name)| {
                let d = PyDict::new(py);
                d.set_item("stage", name)?;
                d.set_item("applied", s.applied)?;
                d.set_item("skipped", s.skipped)?;
                d.set_item("errors", s.errors)?;
                d.set_item("first_error", s.first_error.clone())?;
                if name == "verify-checksums" {
                    let t = PyDict::new(py);
                    let ip = PyDict::new(py);
                    for (i, n) in VERDICT_NAMES.iter().enumerate() {
                        t.set_item(n, s.verdicts[i])?;
                        ip.set_item(n, s.verdicts[5 + i])?;
                    }
                    d.set_item("transport_verdicts", t)?;
                    d.set_item("ip_verdicts", ip)?;
                }
                Ok(d)
            })
            .collect()
    }

    fn __len__(&self) -> usize {
        self.stages.len()
    }
}

/// Decodes a link header: `(ip_offset, ip_version)` when the frame carries IPv4/IPv6, else None.
#[pyfunction]
pub fn network_layer(link_type: u32, frame: &[u8]) -> Option<(usize, u8)> {
    use wfpsim_core::capture::{network_layer as decode, IpVersion};
    decode(LinkType(link_type), frame)
        .ip()
        .map(|(v, off)| (off, if v == IpVersion::V4 { 4 } else { 6 }))
}

/// Native inject + complete of every NBL of `chain` (the replay fast path; see
/// `wfpsim.replay_inject`). `path` is network-send, network-receive, forward, mac-send or
/// mac-receive; `tags` are the injection-history ids for IPv4 (and MAC) and IPv6 packets.
#[pyfunction]
#[pyo3(signature = (chain, path, mtu, tag_v4, tag_v6))]
pub fn inject_chain<'py>(
    py: Python<'py>,
    chain: &Bound<'py, Chain>,
    path: &str,
    mtu: u32,
    tag_v4: usize,
    tag_v6: usize,
) -> PyResult<Bound<'py, PyDict>> {
    use wfpsim_core::pipeline::{InjectPath, InjectStats};
    let path = match path {
        "network-send" => InjectPath::NetworkSend,
        "network-receive" => InjectPath::NetworkReceive,
        "forward" => InjectPath::Forward,
        "mac-send" => InjectPath::MacSend,
        "mac-receive" => InjectPath::MacReceive,
        other => {
            return Err(raise(
                ErrorKind::InvalidParameter,
                None,
                format!("unknown inject path {other:?}"),
            ))
        }
    };
    let st = match chain.get().head {
        Some(h) => {
            engine::with_detached(py, |heap| heap.inject_chain(h, path, mtu, [tag_v4, tag_v6]))
                .py()?
        }
        None => InjectStats::default(),
    };
    let d = PyDict::new(py);
    d.set_item("injected", st.injected)?;
    d.set_item("rejected", st.rejected)?;
    d.set_item("completed", st.completed)?;
    d.set_item("failed", st.failed)?;
    d.set_item("bytes", st.bytes)?;
    d.set_item("first_rejection", st.first_rejection)?;
    Ok(d)
}
