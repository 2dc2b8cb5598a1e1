//! Bytes as they really lie: one packet spread over several pieces (an NB's used data across
//! its MDLs). Checksums, header views and rewrites work over this trait so that no packet is
//! copied into a contiguous buffer first.

use smallvec::SmallVec;

/// A packet's bytes in one or more contiguous pieces, in order.
///
/// Offsets are relative to the first byte of the first piece. Pieces may have any length,
/// including zero, and may start at any (odd) address.
pub trait Segmented {
    /// Total number of bytes over all pieces.
    fn total_len(&self) -> usize;

    /// Calls `f` with each non-empty piece in order; stops early when `f` returns `false`.
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool);

    /// Calls `f` with each non-empty piece, writable, in order; stops early on `false`.
    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut [u8]) -> bool);

    /// The first piece, if it is non-empty: the fast path for headers that lie in one MDL.
    fn first_piece(&self) -> &[u8];

    /// Copies up to `out.len()` bytes starting at `offset` into `out`; returns how many.
    fn read_at(&self, offset: usize, out: &mut [u8]) -> usize {
        let mut skip = offset;
        let mut done = 0;
        self.visit(&mut |piece| {
            if skip >= piece.len() {
                skip -= piece.len();
                return true;
            }
            let avail = &piece[skip..];
            skip = 0;
            let n = avail.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&avail[..n]);
            done += n;
            done < out.len()
        });
        done
    }

    /// Writes `data` at `offset`; returns how many bytes fitted before the end.
    fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let mut skip = offset;
        let mut done = 0;
        self.visit_mut(&mut |piece| {
            if skip >= piece.len() {
                skip -= piece.len();
                return true;
            }
            let avail = &mut piece[skip..];
            skip = 0;
            let n = avail.len().min(data.len() - done);
            avail[..n].copy_from_slice(&data[done..done + n]);
            done += n;
            done < data.len()
        });
        done
    }
}

impl Segmented for [u8] {
    fn total_len(&self) -> usize {
        self.len()
    }
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        if !self.is_empty() {
            f(self);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut [u8]) -> bool) {
        if !self.is_empty() {
            f(self);
        }
    }
    fn first_piece(&self) -> &[u8] {
        self
    }
}

impl Segmented for Vec<u8> {
    fn total_len(&self) -> usize {
        self.len()
    }
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        self.as_slice().visit(f)
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut [u8]) -> bool) {
        self.as_mut_slice().visit_mut(f)
    }
    fn first_piece(&self) -> &[u8] {
        self
    }
}

/// A packet made of borrowed, writable pieces: what an NB view hands to checksum and header
/// code. Two pieces are stored inline, so the common one- or two-MDL packet allocates nothing.
#[derive(Default)]
pub struct Pieces<'a> {
    pieces: SmallVec<[&'a mut [u8]; 2]>,
}

impl<'a> Pieces<'a> {
    pub fn new(pieces: impl IntoIterator<Item = &'a mut [u8]>) -> Self {
        Pieces {
            pieces: pieces.into_iter().collect(),
        }
    }
    pub fn push(&mut self, piece: &'a mut [u8]) {
        self.pieces.push(piece);
    }
}

/// Read-only pieces (verification, export). `visit_mut` sees nothing: writes are impossible
/// by construction, and only read-only operations are handed this type.
#[derive(Default)]
pub struct PiecesRef<'a> {
    pieces: SmallVec<[&'a [u8]; 2]>,
}

impl<'a> PiecesRef<'a> {
    pub fn new(pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        PiecesRef {
            pieces: pieces.into_iter().collect(),
        }
    }
    pub fn push(&mut self, piece: &'a [u8]) {
        self.pieces.push(piece);
    }
}

impl Segmented for PiecesRef<'_> {
    fn total_len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        for p in &self.pieces {
            if !p.is_empty() && !f(p) {
                return;
            }
        }
    }
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&mut [u8]) -> bool) {}
    fn first_piece(&self) -> &[u8] {
        self.pieces
            .iter()
            .find(|p| !p.is_empty())
            .copied()
            .unwrap_or(&[])
    }
}

impl Segmented for Pieces<'_> {
    fn total_len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }
    fn visit(&self, f: &mut dyn FnMut(&[u8]) -> bool) {
        for p in &self.pieces {
            if !p.is_empty() && !f(p) {
                return;
            }
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut [u8]) -> bool) {
        for p in self.pieces.iter_mut() {
            if !p.is_empty() && !f(p) {
                return;
            }
        }
    }
    fn first_piece(&self) -> &[u8] {
        self.pieces
            .iter()
            .find(|p| !p.is_empty())
            .map(|p| &p[..])
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write_across_pieces() {
        let mut a = [1u8, 2, 3];
        let mut b: [u8; 0] = [];
        let mut c = [4u8, 5, 6, 7];
        let mut p = Pieces::new(vec![&mut a[..], &mut b[..], &mut c[..]]);
        assert_eq!(p.total_len(), 7);
        let mut out = [0u8; 4];
        assert_eq!(p.read_at(2, &mut out), 4);
        assert_eq!(out, [3, 4, 5, 6]);
        assert_eq!(p.write_at(5, &[9, 9, 9]), 2);
        let mut all = [0u8; 7];
        p.read_at(0, &mut all);
        assert_eq!(all, [1, 2, 3, 4, 5, 9, 9]);
        assert_eq!(p.first_piece(), &[1, 2, 3]);
    }
}
