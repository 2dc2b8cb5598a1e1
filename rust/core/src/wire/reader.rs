//! Small reads from [`Segmented`] data: borrowed from the first piece when the bytes lie there
//! (the common case), otherwise copied into a caller-provided stack buffer.

use crate::bytes::Segmented;

pub(crate) struct Reader<'a, S: ?Sized> {
    data: &'a S,
    first: &'a [u8],
    len: usize,
}

impl<'a, S: Segmented + ?Sized> Reader<'a, S> {
    #[inline]
    pub(crate) fn new(data: &'a S) -> Self {
        Reader {
            data,
            first: data.first_piece(),
            len: data.total_len(),
        }
    }

    /// Total bytes available.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `N` bytes at `off`, or `None` if they run past the data.
    #[inline]
    pub(crate) fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        // A fixed-size conversion compiles to plain loads (a slice copy would call memmove).
        if let Some(Ok(a)) = self.first.get(off..end).map(<[u8; N]>::try_from) {
            return Some(a);
        }
        let mut out = [0u8; N];
        if end > self.len {
            return None;
        }
        (self.data.read_at(off, &mut out) == N).then_some(out)
    }

    #[inline]
    pub(crate) fn u8(&self, off: usize) -> Option<u8> {
        if let Some(&b) = self.first.get(off) {
            return Some(b);
        }
        self.array::<1>(off).map(|[b]| b)
    }

    #[inline]
    pub(crate) fn u16(&self, off: usize) -> Option<u16> {
        self.array(off).map(u16::from_be_bytes)
    }

    #[inline]
    pub(crate) fn u32(&self, off: usize) -> Option<u32> {
        self.array(off).map(u32::from_be_bytes)
    }

    /// `len` bytes at `off` as one slice, or `None` if they run past the data or exceed `N`.
    #[inline]
    pub(crate) fn bytes<'b, const N: usize>(
        &'b self,
        off: usize,
        len: usize,
        buf: &'b mut [u8; N],
    ) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        let end = off.checked_add(len)?;
        if let Some(s) = self.first.get(off..end) {
            return Some(s);
        }
        let dst = buf.get_mut(..len)?;
        if end > self.len || self.data.read_at(off, dst) != len {
            return None;
        }
        Some(dst)
    }
}
