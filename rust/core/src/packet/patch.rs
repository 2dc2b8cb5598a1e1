//! Small writes collected first and applied in one pass over the pieces, so an operation
//! either fails before touching the packet or writes everything, and a NAT rewrite costs one
//! traversal instead of one per field.

use crate::bytes::Segmented;
use crate::wire::field::too_short;
use crate::Result;

const MAX_WRITES: usize = 4;
const MAX_BYTES: usize = 16;

#[derive(Clone, Copy)]
struct Write {
    at: usize,
    len: usize,
    bytes: [u8; MAX_BYTES],
}

pub(crate) struct Patch {
    writes: [Write; MAX_WRITES],
    n: usize,
}

impl Patch {
    pub(crate) fn new() -> Self {
        Patch {
            writes: [Write {
                at: 0,
                len: 0,
                bytes: [0; MAX_BYTES],
            }; MAX_WRITES],
            n: 0,
        }
    }

    /// Queues `bytes` (at most 16) for offset `at`; extra writes beyond four are a bug in the
    /// caller and are dropped (debug builds assert).
    #[inline]
    pub(crate) fn put(&mut self, at: usize, bytes: &[u8]) {
        debug_assert!(self.n < MAX_WRITES && bytes.len() <= MAX_BYTES);
        if let Some(w) = self.writes.get_mut(self.n) {
            let len = bytes.len().min(MAX_BYTES);
            w.at = at;
            w.len = len;
            for (d, s) in w.bytes.iter_mut().zip(bytes) {
                *d = *s;
            }
            self.n += 1;
        }
    }

    #[inline]
    pub(crate) fn put16(&mut self, at: usize, v: u16) {
        self.put(at, &v.to_be_bytes());
    }

    /// Applies every queued write; fails if any byte lies past the data (callers read the same
    /// offsets first, so this does not happen for well-formed calls).
    pub(crate) fn apply<S: Segmented + ?Sized>(&self, data: &mut S) -> Result<()> {
        let writes = self.writes.get(..self.n).unwrap_or_default();
        let need: usize = writes.iter().map(|w| w.len).sum();
        let last = writes.iter().map(|w| w.at + w.len).max().unwrap_or(0);
        let mut pos = 0;
        let mut done = 0;
        data.visit_mut(&mut |piece| {
            let end = pos + piece.len();
            if pos == 0 && last <= end {
                // Everything lies in the first piece: whole-field copies, no per-byte checks.
                for w in writes {
                    done += w.write_whole(piece);
                }
                return false;
            }
            for w in writes {
                let (lo, hi) = (w.at.max(pos), (w.at + w.len).min(end));
                for k in lo..hi {
                    if let (Some(d), Some(s)) = (piece.get_mut(k - pos), w.bytes.get(k - w.at)) {
                        *d = *s;
                        done += 1;
                    }
                }
            }
            pos = end;
            pos < last
        });
        if done == need {
            Ok(())
        } else {
            Err(too_short("rewritten fields", last, data.total_len(), 0))
        }
    }
}

impl Write {
    /// Copies the field into `piece` (which starts at offset 0) with a fixed-size move for the
    /// usual widths; returns the bytes written.
    #[inline(always)]
    fn write_whole(&self, piece: &mut [u8]) -> usize {
        fn fixed<const N: usize>(piece: &mut [u8], at: usize, src: &[u8; MAX_BYTES]) -> usize {
            let dst = piece.get_mut(at..at + N).map(<&mut [u8; N]>::try_from);
            match (dst, src.first_chunk::<N>()) {
                (Some(Ok(d)), Some(s)) => {
                    *d = *s;
                    N
                }
                _ => 0,
            }
        }
        match self.len {
            1 => fixed::<1>(piece, self.at, &self.bytes),
            2 => fixed::<2>(piece, self.at, &self.bytes),
            4 => fixed::<4>(piece, self.at, &self.bytes),
            16 => fixed::<16>(piece, self.at, &self.bytes),
            n => {
                let dst = piece.get_mut(self.at..self.at + n);
                match (dst, self.bytes.get(..n)) {
                    (Some(d), Some(s)) => {
                        d.copy_from_slice(s);
                        n
                    }
                    _ => 0,
                }
            }
        }
    }
}
