//! Timestamp units. Records carry nanoseconds since the epoch as `i64` (±292 years around
//! 1970), computed with integer arithmetic only, so µs, ns and every decimal pcapng resolution
//! up to 10^-9 are exact; finer or binary resolutions round toward negative infinity (a
//! 2^-n fraction of a second is an integer number of ns only for n <= 9).

/// A pcapng `if_tsresol`: timestamps count units of 10^-n or 2^-n seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// 10^-n s (`if_tsresol` byte n, top bit clear); 6 = µs (the pcapng default), 9 = ns.
    Decimal(u8),
    /// 2^-n s (`if_tsresol` byte 0x80 | n).
    Binary(u8),
}

impl TsResolution {
    pub const MICROS: TsResolution = TsResolution::Decimal(6);
    pub const NANOS: TsResolution = TsResolution::Decimal(9);

    /// Decodes the option byte.
    pub const fn from_option(byte: u8) -> TsResolution {
        if byte & 0x80 != 0 {
            TsResolution::Binary(byte & 0x7F)
        } else {
            TsResolution::Decimal(byte)
        }
    }

    /// The option byte.
    pub const fn to_option(self) -> u8 {
        match self {
            TsResolution::Decimal(n) => n & 0x7F,
            TsResolution::Binary(n) => 0x80 | (n & 0x7F),
        }
    }

    /// Units per second, when it fits in a `u64` (10^19 and 2^63 are the largest).
    pub fn units_per_sec(self) -> Option<u64> {
        match self {
            TsResolution::Decimal(n) => 10u64.checked_pow(u32::from(n)),
            TsResolution::Binary(n) => 1u64.checked_shl(u32::from(n)).filter(|_| n < 64),
        }
    }

    /// Nanoseconds since the epoch for a raw timestamp of `units` plus `offset_secs` (pcapng
    /// `if_tsoffset`). `None` when the resolution is not representable or the result does not
    /// fit an `i64`.
    pub fn to_ns(self, units: u64, offset_secs: i64) -> Option<i64> {
        let offset_ns = i128::from(offset_secs) * 1_000_000_000;
        let ns: i128 = match self {
            // Fast path: decimal resolutions up to ns are a single multiplication.
            TsResolution::Decimal(n) if n <= 9 => {
                i128::from(units) * i128::from(10u64.pow(9 - u32::from(n)))
            }
            _ => {
                let per_sec = u128::from(self.units_per_sec()?);
                let units = u128::from(units);
                let whole = units / per_sec;
                let frac = (units % per_sec) * 1_000_000_000 / per_sec;
                i128::try_from(whole * 1_000_000_000 + frac).ok()?
            }
        };
        i64::try_from(ns + offset_ns).ok()
    }

    /// The raw unit count for `ns`, only when it is exact and non-negative (the writer never
    /// rounds silently).
    pub fn from_ns(self, ns: i64) -> Option<u64> {
        let ns = u64::try_from(ns).ok()?;
        match self {
            TsResolution::Decimal(n) if n <= 9 => {
                let div = 10u64.pow(9 - u32::from(n));
                (ns % div == 0).then_some(ns / div)
            }
            _ => {
                let per_sec = u128::from(self.units_per_sec()?);
                let num = u128::from(ns) * per_sec;
                if num % 1_000_000_000 != 0 {
                    return None;
                }
                u64::try_from(num / 1_000_000_000).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary() {
        assert_eq!(
            TsResolution::MICROS.to_ns(1_500_000, 0),
            Some(1_500_000_000)
        );
        assert_eq!(TsResolution::NANOS.to_ns(7, -1), Some(-999_999_993));
        assert_eq!(TsResolution::Decimal(0).to_ns(3, 10), Some(13_000_000_000));
        // 2^-10 s = 976562.5 ns: floor.
        assert_eq!(TsResolution::Binary(10).to_ns(1, 0), Some(976_562));
        assert_eq!(
            TsResolution::Binary(10).to_ns(1024 * 5 + 512, 0),
            Some(5_500_000_000)
        );
        assert_eq!(TsResolution::Binary(9).to_ns(1, 0), Some(1_953_125));
        assert_eq!(TsResolution::Decimal(12).to_ns(1_234_567, 0), Some(1_234));
        assert_eq!(TsResolution::Binary(64).to_ns(1, 0), None);
        assert_eq!(TsResolution::Decimal(20).to_ns(1, 0), None);
        assert_eq!(TsResolution::NANOS.to_ns(u64::MAX, 0), None);
        assert_eq!(TsResolution::from_option(0x8A), TsResolution::Binary(10));
        assert_eq!(TsResolution::Binary(10).to_option(), 0x8A);
    }

    #[test]
    fn from_ns_is_exact_only() {
        assert_eq!(TsResolution::MICROS.from_ns(1_000_000_000), Some(1_000_000));
        assert_eq!(TsResolution::MICROS.from_ns(1_000_000_001), None);
        assert_eq!(TsResolution::NANOS.from_ns(-1), None);
        assert_eq!(TsResolution::Binary(9).from_ns(1_953_125), Some(1));
        assert_eq!(TsResolution::Binary(10).from_ns(976_562), None);
    }
}
