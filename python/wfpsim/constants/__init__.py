"""Every non-status WDK constant of the spec, with its real Windows value.

One home per concept, re-exported here flat (WDK names are global identifiers):

* :mod:`.net` — ``AF_*``, ``IPPROTO``, ``COMPARTMENT_ID``, ``NET_IF*`` (ws2def.h, ntdef.h, ifdef.h)
* :mod:`.mm` — ``MDL_*`` flags, ``MEMORY_ALLOCATION_ALIGNMENT`` (wdm.h, ntdef.h)
* :mod:`.ndis` — NBL flags and masks, ``NDIS_NET_BUFFER_LIST_INFO`` slots, clone flags, pool
  parameters, protocol ids, LSO info (ndis.h, ntddndis.h)
* :mod:`.fwp` — ``FWP_*`` / ``FWPS_*`` flags and enums (fwpsk.h, fwpstypes.h, fwptypes.h)
* :mod:`.layers` — ``FWPS_BUILTIN_LAYERS`` and the ``FWPS_FIELDS_*`` index enums (fwpsk.h)

Status codes (``STATUS_*``, ``NDIS_STATUS_*``) live in :mod:`wfpsim.status`.
"""

from __future__ import annotations

from . import fwp, layers, mm, ndis, net

__all__: list[str] = []

for _module in (net, mm, ndis, fwp, layers):
    for _name in _module.__all__:
        _value = getattr(_module, _name)
        if globals().get(_name, _value) is not _value:
            raise ImportError(f"{_name} is defined by two constants modules")
        globals()[_name] = _value
    __all__ += _module.__all__
del _module, _name, _value
