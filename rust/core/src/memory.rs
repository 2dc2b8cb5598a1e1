//! Packet memory: one reference-counted byte store per buffer, owned by the engine or lent by
//! the caller. An MDL holds an `Arc<Buffer>`, so memory outlives every MDL and every view that
//! describes it, whatever is freed meanwhile (no view can dangle).

use std::any::Any;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, ErrorKind, Result};

/// What keeps a lent buffer's memory valid (e.g. a Python buffer export); dropped with the buffer.
pub type Keepalive = Box<dyn Any + Send + Sync>;

/// Spare byte vectors a producer (a capture reader) reuses: a chain's buffer goes back here
/// when its last MDL is freed, so steady-state replay allocates (and page-faults) nothing.
pub type BufferPool = Arc<Mutex<Vec<Vec<u8>>>>;

/// How many spare vectors a pool keeps.
const POOL_LIMIT: usize = 8;

enum Owner {
    Owned(#[allow(dead_code)] Box<[u8]>),
    Lent(#[allow(dead_code)] Keepalive),
    Pooled(Vec<u8>, Weak<Mutex<Vec<Vec<u8>>>>),
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Owner::Pooled(v, pool) = self {
            if let Some(pool) = pool.upgrade() {
                if let Ok(mut spare) = pool.lock() {
                    if spare.len() < POOL_LIMIT {
                        spare.push(std::mem::take(v));
                    }
                }
            }
        }
    }
}

/// A contiguous byte store. Several MDLs (and clones' MDLs) may describe parts of it; writes
/// through any of them are seen through all, as with real packet memory.
pub struct Buffer {
    ptr: NonNull<u8>,
    len: usize,
    readonly: bool,
    _owner: Owner,
}

// SAFETY: the store is plain bytes; the engine serialises access (one lock around the heap, or
// the caller's own discipline for lent memory, exactly like NDIS drivers sharing packet memory).
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Engine-owned memory holding `bytes`.
    pub fn owned(bytes: Vec<u8>) -> Arc<Buffer> {
        let mut boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        let ptr = NonNull::new(boxed.as_mut_ptr()).unwrap_or(NonNull::dangling());
        Arc::new(Buffer {
            ptr,
            len,
            readonly: false,
            _owner: Owner::Owned(boxed),
        })
    }

    /// Engine-owned memory that returns to `pool` when the last MDL over it is gone.
    pub fn pooled(mut bytes: Vec<u8>, pool: &BufferPool) -> Arc<Buffer> {
        let len = bytes.len();
        let ptr = NonNull::new(bytes.as_mut_ptr()).unwrap_or(NonNull::dangling());
        // Moving the Vec into the owner does not move its heap block: `ptr` stays valid.
        Arc::new(Buffer {
            ptr,
            len,
            readonly: false,
            _owner: Owner::Pooled(bytes, Arc::downgrade(pool)),
        })
    }

    /// Engine-owned zeroed memory (the default retreat allocator, pool data buffers).
    pub fn zeroed(len: usize) -> Arc<Buffer> {
        Self::owned(vec![0; len])
    }

    /// Memory lent by the caller.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid (and not be resized or freed) for as long as `keepalive`
    /// lives; if `readonly` is false it must be writable.
    pub unsafe fn lent(
        ptr: *mut u8,
        len: usize,
        readonly: bool,
        keepalive: Keepalive,
    ) -> Arc<Buffer> {
        let ptr = NonNull::new(ptr).unwrap_or(NonNull::dangling());
        Arc::new(Buffer {
            ptr,
            len,
            readonly,
            _owner: Owner::Lent(keepalive),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Address of the first byte (for alignment rules and identity only).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, start: usize, len: usize) -> Result<()> {
        match start.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::new(
                ErrorKind::InvalidParameter,
                None,
                format!(
                    "range {start}+{len} lies outside a {}-byte buffer",
                    self.len
                ),
            )),
        }
    }

    /// Read access to `len` bytes at `start`.
    ///
    /// The slice aliases memory other MDLs describe; callers must not hold it across engine
    /// calls that could write the same bytes.
    pub fn slice(&self, start: usize, len: usize) -> Result<&[u8]> {
        self.check(start, len)?;
        // SAFETY: bounds checked above; memory valid while `self` lives.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), len) })
    }

    /// Write access to `len` bytes at `start`; an error for read-only (lent `bytes`) memory.
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut(&self, start: usize, len: usize) -> Result<&mut [u8]> {
        if self.readonly {
            return Err(Error::new(
                ErrorKind::InvalidState,
                None,
                "packet memory is read-only (lent from an immutable object such as bytes)",
            ));
        }
        self.check(start, len)?;
        // SAFETY: bounds checked; writable per the constructor's contract. Aliasing is the
        // packet-memory model itself (clones share bytes); the engine never hands out two
        // overlapping mutable slices within one operation.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), len) })
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Buffer({} bytes{})",
            self.len,
            if self.readonly { ", read-only" } else { "" }
        )
    }
}
