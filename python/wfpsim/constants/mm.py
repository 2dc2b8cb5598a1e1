"""Memory-manager constants: MDL flags (``km/wdm.h``) and allocation alignment (``shared/ntdef.h``).

Values from nbl.md §2.1 and §3.1 (WDK 10.0.16299.0).
"""

from __future__ import annotations

from ._export import public_names

#: ntdef.h, 64-bit targets (8 on 32-bit). The simulator models x64.
MEMORY_ALLOCATION_ALIGNMENT = 16

# --- wdm.h: MDL.MdlFlags (CSHORT) -------------------------------------------------------------
MDL_MAPPED_TO_SYSTEM_VA = 0x0001
MDL_PAGES_LOCKED = 0x0002
MDL_SOURCE_IS_NONPAGED_POOL = 0x0004
MDL_ALLOCATED_FIXED_SIZE = 0x0008
MDL_PARTIAL = 0x0010
MDL_PARTIAL_HAS_BEEN_MAPPED = 0x0020
MDL_IO_PAGE_READ = 0x0040
MDL_WRITE_OPERATION = 0x0080
MDL_LOCKED_PAGE_TABLES = 0x0100
MDL_FREE_EXTRA_PTES = 0x0200
MDL_DESCRIBES_AWE = 0x0400
MDL_IO_SPACE = 0x0800
MDL_NETWORK_HEADER = 0x1000
MDL_MAPPING_CAN_FAIL = 0x2000
MDL_PAGE_CONTENTS_INVARIANT = 0x4000
MDL_INTERNAL = 0x8000

__all__ = public_names(globals())
