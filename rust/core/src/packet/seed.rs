//! The pseudo-header sum of a packet's upper layer, read from the packet itself.

use super::layout::layout;
use crate::bytes::Segmented;
use crate::status::STATUS_NOT_SUPPORTED;
use crate::wire::reader::Reader;
use crate::{Error, ErrorKind, Result};

/// The folded pseudo-header sum for the upper-layer protocol of the packet at the start of
/// `data`: final destination and Home Address rules applied, length from the IP header.
/// With `include_length` false the length is left out, as for an LSO/USO seed (§7.3).
///
/// Fails for protocols without a pseudo-header (ICMPv4, no upper layer reached) and when the
/// IP lengths do not give the upper-layer length.
pub fn pseudo_header_sum<S: Segmented + ?Sized>(data: &S, include_length: bool) -> Result<u16> {
    let lay = layout(data, 0)?;
    let r = Reader::new(data);
    let len = match (include_length, lay.l4_len) {
        (false, _) => Some(0),
        (true, len) => len,
    };
    match (lay.l4, len) {
        (Some(_), Some(len)) => lay.pseudo_sum(&r, len).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                Some(STATUS_NOT_SUPPORTED),
                format!(
                    "protocol {} over IPv{} has no pseudo-header",
                    lay.l4_proto, lay.summary.ip_version
                ),
            )
        }),
        _ => Err(Error::malformed(format!(
            "no upper-layer header with a known length in this IPv{} packet",
            lay.summary.ip_version
        ))),
    }
}
