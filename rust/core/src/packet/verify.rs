//! Checksum verdicts for a packet as it lies (`checksums.md §1–§5`, §7; the capture corpus's
//! verdict rules in `shared/data/pcaps/MANIFEST.md`).

use super::layout::{layout, Layout};
use super::summary::ParseSummary;
use crate::bytes::Segmented;
use crate::checksum::{ones_add, ones_sum_segmented, ChecksumInfo};
use crate::wire::ip::protocol;
use crate::wire::reader::Reader;
use crate::Result;

/// What a checksum field says about its packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Verdict {
    /// The one's-complement sum over the covered bytes, field included, is `0xFFFF`.
    Valid = 0,
    /// Wrong (including a zero field where zero is not allowed, and anything other than the
    /// seed when transmit offload is requested).
    Invalid = 1,
    /// Left for the NIC: a TCP/UDP field holding the folded, uncomplemented pseudo-header sum
    /// (TX checksum offload, Linux CHECKSUM_PARTIAL), or an IPv4 header whose checksum the
    /// transmit info asks the NIC to compute.
    OffloadPartial = 2,
    /// No checksum to check: UDP over IPv4 with field 0 (or over IPv6 on an opted-in
    /// zero-checksum port), and the IPv6 "header checksum", which does not exist.
    Absent = 3,
    /// Cannot be checked from these bytes: the datagram is cut short, a fragment (first or
    /// not), ESP-encrypted, its IP lengths are inconsistent, or the protocol has no checksum
    /// this crate computes (IGMP, SCTP, GRE, ...).
    NotCheckable = 4,
}

/// The verdicts for the outer IP header and the transport header that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicts {
    pub ip: Verdict,
    pub transport: Verdict,
    pub summary: ParseSummary,
}

/// Receiver policy knobs.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions<'a> {
    /// UDP ports (source or destination) for which a zero UDP checksum over IPv6 is accepted
    /// (RFC 6935/6936 tunnel mode). Empty by default: zero is invalid over IPv6.
    pub udp6_zero_checksum_ports: &'a [u16],
}

/// [`verify_at`] for data that starts with the IP header, with default options.
pub fn verify<S: Segmented + ?Sized>(data: &S, info: ChecksumInfo) -> Result<Verdicts> {
    verify_at(data, 0, info, &VerifyOptions::default())
}

/// Verdicts for the IP packet at `ip_offset` of `data`.
///
/// `info` is read through its **Transmit** view: when it requests TCP/UDP checksum offload
/// for this packet, the field must hold the pseudo-header seed (→ `OffloadPartial`; anything
/// else, even a full valid checksum, is `Invalid` because the NIC would corrupt it); when it
/// requests IPv4 header offload, an unfinished header checksum is `OffloadPartial`. Pass
/// [`ChecksumInfo::NONE`] for received packets and captures; a seed-valued field is then
/// still recognised as `OffloadPartial`, as in the capture corpus.
///
/// Fails only when the IP header itself is malformed or cut short (fewer than 20/40 bytes,
/// bad version or IHL, misplaced hop-by-hop header).
pub fn verify_at<S: Segmented + ?Sized>(
    data: &S,
    ip_offset: usize,
    info: ChecksumInfo,
    options: &VerifyOptions<'_>,
) -> Result<Verdicts> {
    let lay = layout(data, ip_offset)?;
    let r = Reader::new(data);
    Ok(Verdicts {
        ip: ip_verdict(data, &lay, info),
        transport: transport_verdict(data, &r, &lay, info, options),
        summary: lay.summary,
    })
}

fn ip_verdict<S: Segmented + ?Sized>(data: &S, lay: &Layout, info: ChecksumInfo) -> Verdict {
    if lay.v6 {
        return Verdict::Absent;
    }
    if !lay.ip_header_present {
        return Verdict::NotCheckable;
    }
    match ones_sum_segmented(data, lay.base, lay.ip_hlen) {
        Ok(0xFFFF) => Verdict::Valid,
        Ok(_) if info.ip_header_offloaded() => Verdict::OffloadPartial,
        Ok(_) => Verdict::Invalid,
        Err(_) => Verdict::NotCheckable,
    }
}

fn transport_verdict<S: Segmented + ?Sized>(
    data: &S,
    r: &Reader<'_, S>,
    lay: &Layout,
    info: ChecksumInfo,
    options: &VerifyOptions<'_>,
) -> Verdict {
    let (Some(l4), Some(len), Some(field_at)) = (lay.l4, lay.l4_len, lay.checksum_field(r.len()))
    else {
        return Verdict::NotCheckable;
    };
    if !lay.whole {
        return Verdict::NotCheckable;
    }
    let Some(field) = r.u16(field_at) else {
        return Verdict::NotCheckable;
    };
    let proto = lay.l4_proto;
    let pseudo = match lay.pseudo_sum(r, len) {
        Some(p) => p,
        None if proto == protocol::ICMP => 0,
        None => return Verdict::NotCheckable,
    };
    if info.transport_offloaded(lay.v6, proto) {
        return if field == pseudo {
            Verdict::OffloadPartial
        } else {
            Verdict::Invalid
        };
    }
    if proto == protocol::UDP && field == 0 {
        if !lay.v6 {
            return Verdict::Absent;
        }
        let ports = [r.u16(l4), r.u16(l4 + 2)];
        let opted_in = ports
            .iter()
            .flatten()
            .any(|p| options.udp6_zero_checksum_ports.contains(p));
        return if opted_in {
            Verdict::Absent
        } else {
            Verdict::Invalid
        };
    }
    let Ok(sum) = ones_sum_segmented(data, l4, len) else {
        return Verdict::NotCheckable;
    };
    if ones_add(pseudo, sum) == 0xFFFF {
        Verdict::Valid
    } else if matches!(proto, protocol::TCP | protocol::UDP) && field == pseudo {
        Verdict::OffloadPartial
    } else {
        Verdict::Invalid
    }
}
