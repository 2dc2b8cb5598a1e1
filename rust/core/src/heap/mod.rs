//! The NDIS object heap: MDLs, NET_BUFFERs, NET_BUFFER_LISTs and pools, addressed by
//! generational handles (`nbl.md §1`). All buffer semantics live in the submodules:
//! `nb` (retreat/advance, data access), `nbl` (allocation, clone, free, references),
//! `batch` (chains of many NBLs in one call).

mod batch;
mod mdl;
mod nb;
mod nbl;
mod packets;
mod slab;

pub use batch::ChainExport;
pub use nb::{DataBuffer, RetreatNeed};
pub use packets::{PerPacket, CHECKSUM_INFO_SLOT};
pub use slab::Handle;

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, ErrorKind, Result};
use crate::memory::Buffer;
use slab::Slab;

macro_rules! typed_handle {
    ($name:ident, $what:literal) => {
        #[doc = concat!("Handle of a ", $what, " (a pointer, in WDK terms).")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub struct $name(pub Handle);
        impl $name {
            pub fn to_raw(self) -> u64 {
                self.0.to_raw()
            }
            pub fn from_raw(raw: u64) -> Self {
                $name(Handle::from_raw(raw))
            }
        }
    };
}
typed_handle!(MdlId, "MDL");
typed_handle!(NbId, "NET_BUFFER");
typed_handle!(NblId, "NET_BUFFER_LIST");
typed_handle!(PoolId, "pool");

/// Number of `NetBufferListInfo` slots (x64, NDIS ≥ 6.82: `MaxNetBufferListInfo`, `nbl.md §4.5`).
pub const MAX_NET_BUFFER_LIST_INFO: usize = 27;
/// `WfpNetBufferListInfo`: reserved for WFP; the simulator keeps its injection history id here.
pub const WFP_INFO_SLOT: usize = 10;
/// `NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS` (`nbl.md §5`).
pub const NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS: u32 = 0x2;
/// `MDL_SOURCE_IS_NONPAGED_POOL`: every simulated buffer is mapped, nonpaged memory.
pub const MDL_SOURCE_IS_NONPAGED_POOL: u16 = 0x0004;
/// Largest `DataLength` an NB can carry (`ULONG`, invariant I5).
pub const MAX_DATA_LENGTH: u64 = 0xFFFF_FFFF;

/// A short list of handles kept inline (NBs of an NBL, MDLs of a chain).
pub type SmallIds<T> = SmallVec<[T; 4]>;

/// Where an allocation was made (an interned Python stack line); 0 = unknown.
pub type SiteId = u32;

/// Who allocated an MDL, which decides who may free it (`nbl.md §7.2`, §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdlOrigin {
    /// NdisAllocateMdl by the caller: only NdisFreeMdl frees it.
    Caller,
    /// Allocated by a retreat with NDIS's default allocator: an advance with FreeMdl frees it.
    RetreatDefault,
    /// Allocated by a retreat through the caller's AllocateMdlHandler: the FreeMdlHandler frees it.
    RetreatHandler,
    /// Made by a clone to describe the original's memory: freed with the clone.
    Clone,
    /// Made by the engine for an NB it built (pool DataSize buffers, batch-built chains):
    /// freed with that NB.
    NbOwned,
}

#[derive(Debug)]
pub struct Mdl {
    pub buffer: Arc<Buffer>,
    /// Offset of the MDL's first byte inside `buffer`.
    pub start: usize,
    pub byte_count: u32,
    pub next: Option<MdlId>,
    pub flags: u16,
    pub origin: MdlOrigin,
    /// The NB an engine-made MDL belongs to (freed with it); None for the caller's MDLs.
    pub owner_nb: Option<NbId>,
    pub site: SiteId,
}

/// Who owns an NB, which decides how it is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NbOwner {
    /// NdisAllocateNetBuffer: freed with NdisFreeNetBuffer.
    Standalone,
    /// Preallocated with an NBL: freed with that NBL.
    Preallocated(NblId),
    /// Made by a clone: freed with the clone NBL.
    Clone(NblId),
}

#[derive(Debug)]
pub struct NetBuffer {
    pub next: Option<NbId>,
    pub mdl_chain: Option<MdlId>,
    pub current_mdl: Option<MdlId>,
    pub current_mdl_offset: u32,
    pub data_offset: u32,
    pub data_length: u64,
    pub checksum_bias: u16,
    pub pool: Option<PoolId>,
    pub owner: NbOwner,
    pub site: SiteId,
}

/// How an NBL came to be, which decides the free function it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NblKind {
    /// NdisAllocateNetBufferList / ...AndNetBufferList / FwpsAllocateNetBufferAndNetBufferList0.
    Plain,
    /// NdisAllocateCloneNetBufferList with these flags (caller maintains Parent/ChildRefCount).
    NdisClone { flags: u32 },
    /// FwpsAllocateCloneNetBufferList0 (sets Parent, increments the parent's ChildRefCount).
    WfpClone,
}

/// One `NET_BUFFER_LIST_CONTEXT` block (`nbl.md §4.6`): used context grows toward the front.
#[derive(Debug)]
pub struct ContextBlock {
    pub data: Arc<Buffer>,
    pub size: u16,
    pub offset: u16,
    /// Pushed by NdisAllocateNetBufferListContext (released by the matching free).
    pub pushed: bool,
}

/// `NetBufferListInfo[]`: 27 pointer-sized OOB slots, stored only once one is written (most
/// NBLs never carry any, and the inline array would triple an NBL's size).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfoSlots(Option<Box<[usize; MAX_NET_BUFFER_LIST_INFO]>>);

impl InfoSlots {
    pub fn get(&self, index: usize) -> usize {
        self.0
            .as_ref()
            .and_then(|s| s.get(index).copied())
            .unwrap_or(0)
    }
    /// Writes a slot; indexes past MaxNetBufferListInfo are ignored (callers check them).
    pub fn set(&mut self, index: usize, value: usize) {
        if index >= MAX_NET_BUFFER_LIST_INFO || (value == 0 && self.0.is_none()) {
            return;
        }
        self.0
            .get_or_insert_with(|| Box::new([0; MAX_NET_BUFFER_LIST_INFO]))[index] = value;
    }
    pub fn all(&self) -> [usize; MAX_NET_BUFFER_LIST_INFO] {
        self.0
            .as_deref()
            .copied()
            .unwrap_or([0; MAX_NET_BUFFER_LIST_INFO])
    }
}

/// Replay metadata carried from capture input to output (not a WDK field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts_ns: i64,
    pub orig_len: u32,
    /// The full pcap link-type field (FCS bits included).
    pub link_type: u32,
    pub interface_id: u32,
}

#[derive(Debug)]
pub struct NetBufferList {
    pub next: Option<NblId>,
    pub first_nb: Option<NbId>,
    pub parent: Option<NblId>,
    pub child_ref_count: i32,
    pub status: u32,
    pub nbl_flags: u32,
    pub flags: u32,
    pub info: InfoSlots,
    /// Context blocks, head first.
    pub context: Vec<ContextBlock>,
    pub prealloc_nb: Option<NbId>,
    pub kind: NblKind,
    pub pool: Option<PoolId>,
    /// WFP references (FwpsReferenceNetBufferList0) outstanding.
    pub wfp_refs: u32,
    pub intend_to_modify: bool,
    pub meta: PacketMeta,
    pub site: SiteId,
}

/// Pool parameters (`nbl.md §6.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    NetBufferList {
        protocol_id: u8,
        allocate_net_buffer: bool,
        context_size: u16,
        data_size: u32,
        tag: u32,
    },
    NetBuffer {
        data_size: u32,
        tag: u32,
    },
}

/// One line of the leak report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    pub kind: &'static str,
    pub handle: u64,
    pub site: String,
    pub detail: String,
}

/// The object heap. Every operation validates its handles; nothing panics on bad input.
pub struct Heap {
    pub(crate) mdls: Slab<Mdl>,
    pub(crate) nbs: Slab<NetBuffer>,
    pub(crate) nbls: Slab<NetBufferList>,
    pools: Slab<Pool>,
    sites: Vec<String>,
    site_index: std::collections::HashMap<String, SiteId>,
    /// Fault injection: fail this many upcoming allocations with "resources" (`nbl.md §2.1` [emu]).
    pub fail_allocations: u32,
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap {
            mdls: Slab::new("MDL"),
            nbs: Slab::new("NET_BUFFER"),
            nbls: Slab::new("NET_BUFFER_LIST"),
            pools: Slab::new("pool"),
            sites: vec!["<unknown>".to_string()],
            site_index: Default::default(),
            fail_allocations: 0,
        }
    }

    /// Interns an allocation site ("file.py:42 in func") for the leak report.
    pub fn intern_site(&mut self, site: &str) -> SiteId {
        if let Some(&id) = self.site_index.get(site) {
            return id;
        }
        let id = self.sites.len() as SiteId;
        self.sites.push(site.to_string());
        self.site_index.insert(site.to_string(), id);
        id
    }

    pub fn site(&self, id: SiteId) -> &str {
        self.sites
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("<unknown>")
    }

    /// Consumes one injected allocation fault, if any is armed.
    pub(crate) fn take_fault(&mut self) -> bool {
        if self.fail_allocations > 0 {
            self.fail_allocations -= 1;
            true
        } else {
            false
        }
    }

    pub fn live_counts(&self) -> (usize, usize, usize) {
        (self.mdls.live(), self.nbs.live(), self.nbls.live())
    }

    // ---- pools ----

    pub fn alloc_pool(&mut self, pool: Pool) -> Result<PoolId> {
        if let Pool::NetBufferList {
            allocate_net_buffer: false,
            data_size,
            ..
        } = pool
        {
            if data_size != 0 {
                return Err(Error::invalid(
                    crate::status::STATUS_INVALID_PARAMETER,
                    "NET_BUFFER_LIST_POOL_PARAMETERS: DataSize != 0 requires fAllocateNetBuffer = TRUE",
                ));
            }
        }
        Ok(PoolId(self.pools.insert(pool)))
    }

    pub fn free_pool(&mut self, id: PoolId) -> Result<()> {
        let in_use = self.nbls.iter().any(|(_, n)| n.pool == Some(id))
            || self.nbs.iter().any(|(_, n)| n.pool == Some(id));
        if in_use {
            return Err(Error::state(
                None,
                "pool still has NET_BUFFER_LISTs or NET_BUFFERs allocated from it",
            ));
        }
        self.pools.remove(id.0).map(|_| ())
    }

    pub fn pool(&self, id: PoolId) -> Result<Pool> {
        self.pools.get(id.0).copied()
    }

    // ---- lookups ----

    pub fn mdl(&self, id: MdlId) -> Result<&Mdl> {
        self.mdls.get(id.0)
    }
    pub fn mdl_mut(&mut self, id: MdlId) -> Result<&mut Mdl> {
        self.mdls.get_mut(id.0)
    }
    pub fn nb(&self, id: NbId) -> Result<&NetBuffer> {
        self.nbs.get(id.0)
    }
    pub fn nb_mut(&mut self, id: NbId) -> Result<&mut NetBuffer> {
        self.nbs.get_mut(id.0)
    }
    pub fn nbl(&self, id: NblId) -> Result<&NetBufferList> {
        self.nbls.get(id.0)
    }
    pub fn nbl_mut(&mut self, id: NblId) -> Result<&mut NetBufferList> {
        self.nbls.get_mut(id.0)
    }
    pub fn mdl_alive(&self, id: MdlId) -> bool {
        self.mdls.contains(id.0)
    }
    pub fn nb_alive(&self, id: NbId) -> bool {
        self.nbs.contains(id.0)
    }
    pub fn nbl_alive(&self, id: NblId) -> bool {
        self.nbls.contains(id.0)
    }

    /// NBs of an NBL in order (walks `Next`; a cycle is reported, not looped on). Inline
    /// storage: the common one-NB NBL allocates nothing.
    pub fn nbs_of(&self, nbl: NblId) -> Result<SmallIds<NbId>> {
        let mut out = SmallIds::new();
        let mut cur = self.nbl(nbl)?.first_nb;
        while let Some(nb) = cur {
            if out.len() > self.nbs.live() {
                return Err(Error::state(
                    None,
                    "NET_BUFFER chain has a cycle (NB.Next loops)",
                ));
            }
            out.push(nb);
            cur = self.nb(nb)?.next;
        }
        Ok(out)
    }

    /// NBLs of a chain starting at `head`, in order (walks `Next`).
    pub fn chain_of(&self, head: NblId) -> Result<Vec<NblId>> {
        let mut out = Vec::new();
        let mut cur = Some(head);
        while let Some(nbl) = cur {
            if out.len() > self.nbls.live() {
                return Err(Error::state(
                    None,
                    "NET_BUFFER_LIST chain has a cycle (NBL.Next loops)",
                ));
            }
            cur = self.nbl(nbl)?.next;
            out.push(nbl);
        }
        Ok(out)
    }

    /// Every NBL, NB and MDL still allocated, with where it was allocated.
    pub fn leak_report(&self) -> Vec<Leak> {
        let mut out = Vec::new();
        for (h, n) in self.nbls.iter() {
            out.push(Leak {
                kind: "NET_BUFFER_LIST",
                handle: h.to_raw(),
                site: self.site(n.site).to_string(),
                detail: format!(
                    "{:?}, ChildRefCount {}, WFP references {}",
                    n.kind, n.child_ref_count, n.wfp_refs
                ),
            });
        }
        for (h, n) in self.nbs.iter() {
            if matches!(n.owner, NbOwner::Standalone) {
                out.push(Leak {
                    kind: "NET_BUFFER",
                    handle: h.to_raw(),
                    site: self.site(n.site).to_string(),
                    detail: format!("DataOffset {}, DataLength {}", n.data_offset, n.data_length),
                });
            }
        }
        for (h, m) in self.mdls.iter() {
            if matches!(
                m.origin,
                MdlOrigin::Caller | MdlOrigin::RetreatHandler | MdlOrigin::RetreatDefault
            ) {
                out.push(Leak {
                    kind: "MDL",
                    handle: h.to_raw(),
                    site: self.site(m.site).to_string(),
                    detail: format!("{:?}, ByteCount {}", m.origin, m.byte_count),
                });
            }
        }
        out
    }
}

pub(crate) fn resources(what: &str) -> Error {
    Error::new(
        ErrorKind::Resources,
        Some(crate::status::STATUS_INSUFFICIENT_RESOURCES),
        format!("{what}: allocation failed"),
    )
}
