//! The Python classes over engine handles. Each holds only a handle; the same handle always
//! maps to the same Python object (see `engine`), so `is` compares like a C pointer.
//! Fields keep their WDK names (`nb.DataOffset`); Pythonic verbs sit beside them (`nb.retreat`).

mod chain;
mod mdl;
mod nb;
mod nbl;
mod pool;

pub use chain::Chain;
pub use mdl::Mdl;
pub use nb::NetBuffer;
pub use nbl::NetBufferList;
pub use pool::Pool;
