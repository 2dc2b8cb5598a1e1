//! The byte source under a reader: bulk reads into a caller's buffer, remembering end of file
//! and any I/O error so that the reader can first deliver the packets it already has.

use std::io::{ErrorKind, Read};

pub(crate) struct Source<R> {
    pub(crate) inner: R,
    pub(crate) eof: bool,
    /// An I/O error met while filling; reported after the bytes read before it are parsed.
    pub(crate) error: Option<std::io::Error>,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(inner: R) -> Self {
        Source {
            inner,
            eof: false,
            error: None,
        }
    }

    /// Reads until `buf[..*len]` holds `target` bytes or the source ends. `buf.len()` is the
    /// initialised part of the vector: growing it zeroes only the new part, so a recycled
    /// buffer is refilled without a memset.
    pub(crate) fn fill(&mut self, buf: &mut Vec<u8>, len: &mut usize, target: usize) {
        if buf.len() < target {
            buf.resize(target, 0);
        }
        while *len < target && !self.eof {
            let Some(space) = buf.get_mut(*len..target) else {
                return;
            };
            match self.inner.read(space) {
                Ok(0) => self.eof = true,
                // min(): a misbehaving reader that claims more than it was given cannot push
                // `len` past the buffer.
                Ok(n) => *len += n.min(target - *len),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                }
            }
        }
    }
}
