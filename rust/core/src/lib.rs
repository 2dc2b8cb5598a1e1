//! wfpsim-core: the NDIS `NET_BUFFER_LIST` engine and everything that runs per packet.
//!
//! Pure Rust, no Python: the pyo3 crate in `rust/python` is a thin skin over this.
//! Spec references (`nbl.md §7.1`) point into `shared/spec/`.

pub mod bytes;
pub mod capture;
pub mod checksum;
pub mod error;
pub mod heap;
pub mod memory;
pub mod packet;
pub mod pipeline;
pub mod replay;
pub mod status;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
pub use heap::{Heap, MdlId, NbId, NblId};
