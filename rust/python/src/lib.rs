//! `wfpsim._core`: the thin pyo3 skin over `wfpsim-core`. It converts types and errors and
//! releases the GIL around long work; every rule lives in the core crate.

mod capture;
mod checksums;
mod engine;
mod errors;
mod memory;
mod objects;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPyResult;

/// Every NBL, NB and MDL still allocated, with the Python line that allocated it.
#[pyfunction]
fn leak_report(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let leaks = engine::with(|e| e.heap.leak_report());
    leaks
        .into_iter()
        .map(|l| {
            let d = PyDict::new(py);
            d.set_item("kind", l.kind)?;
            d.set_item("handle", l.handle)?;
            d.set_item("site", l.site)?;
            d.set_item("detail", l.detail)?;
            Ok(d)
        })
        .collect()
}

/// (MDLs, NET_BUFFERs, NET_BUFFER_LISTs) currently allocated.
#[pyfunction]
fn live_counts() -> (usize, usize, usize) {
    engine::with(|e| e.heap.live_counts())
}

/// Fault injection: make the next `count` engine allocations fail with "resources".
#[pyfunction]
fn fail_allocations(count: u32) {
    engine::with(|e| e.heap.fail_allocations = count)
}

/// Record the Python line of every single allocation for the leak report (on by default).
#[pyfunction]
fn set_site_tracking(enabled: bool) {
    engine::with(|e| e.track_sites = enabled)
}

/// Re-validates an NB's MDL chain capacity (used by tests of invariants).
#[pyfunction]
fn chain_capacity(mdl: &Bound<'_, objects::Mdl>) -> PyResult<u64> {
    let id = mdl.get().id;
    engine::with(|e| e.heap.chain_capacity(Some(id))).py()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<objects::Mdl>()?;
    m.add_class::<objects::NetBuffer>()?;
    m.add_class::<objects::NetBufferList>()?;
    m.add_class::<objects::Chain>()?;
    m.add_class::<objects::Pool>()?;
    m.add_class::<memory::PacketView>()?;
    m.add_class::<capture::CaptureReader>()?;
    m.add_class::<capture::CaptureWriter>()?;
    m.add_class::<capture::NativePipeline>()?;
    m.add_class::<checksums::ParseSummary>()?;
    m.add_class::<checksums::ChecksumVerdicts>()?;
    m.add_class::<checksums::FixReportPy>()?;
    m.add_class::<checksums::BatchVerdicts>()?;
    m.add_class::<checksums::BatchFix>()?;
    m.add_function(wrap_pyfunction!(checksums::internet_checksum, m)?)?;
    m.add_function(wrap_pyfunction!(checksums::ones_sum, m)?)?;
    m.add_function(wrap_pyfunction!(checksums::pseudo_header_sum, m)?)?;
    m.add_function(wrap_pyfunction!(checksums::checksum_update16, m)?)?;
    m.add_function(wrap_pyfunction!(checksums::checksum_update32, m)?)?;
    m.add_function(wrap_pyfunction!(checksums::checksum_info_layout, m)?)?;
    m.add_function(wrap_pyfunction!(capture::network_layer, m)?)?;
    m.add_function(wrap_pyfunction!(capture::inject_chain, m)?)?;
    m.add_function(wrap_pyfunction!(leak_report, m)?)?;
    m.add_function(wrap_pyfunction!(live_counts, m)?)?;
    m.add_function(wrap_pyfunction!(fail_allocations, m)?)?;
    m.add_function(wrap_pyfunction!(set_site_tracking, m)?)?;
    m.add_function(wrap_pyfunction!(chain_capacity, m)?)?;
    Ok(())
}
