//! A slab with generation counters: handles are (index, generation), so a handle to a freed
//! object is detected (use after free, double free) instead of reaching a recycled slot.

use crate::error::{Error, ErrorKind, Result};

/// Index + generation, packed into one `u64` for Python (`gen << 32 | index`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Handle {
    pub index: u32,
    pub gen: u32,
}

impl Handle {
    pub fn to_raw(self) -> u64 {
        ((self.gen as u64) << 32) | self.index as u64
    }
    pub fn from_raw(raw: u64) -> Handle {
        Handle {
            index: raw as u32,
            gen: (raw >> 32) as u32,
        }
    }
}

struct Slot<T> {
    gen: u32,
    value: Option<T>,
}

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
    what: &'static str,
}

impl<T> Slab<T> {
    pub fn new(what: &'static str) -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            what,
        }
    }

    pub fn insert(&mut self, value: T) -> Handle {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            Handle {
                index,
                gen: slot.gen,
            }
        } else {
            let index = self.slots.len() as u32;
            // Generation starts at 1 so that a zeroed raw handle is never valid.
            self.slots.push(Slot {
                gen: 1,
                value: Some(value),
            });
            Handle { index, gen: 1 }
        }
    }

    fn stale(&self, h: Handle) -> Error {
        Error::new(
            ErrorKind::UseAfterFree,
            None,
            format!(
                "use after free: this {} was freed (handle {:#x} is stale)",
                self.what,
                h.to_raw()
            ),
        )
    }

    pub fn get(&self, h: Handle) -> Result<&T> {
        match self.slots.get(h.index as usize) {
            Some(Slot {
                gen,
                value: Some(v),
            }) if *gen == h.gen => Ok(v),
            _ => Err(self.stale(h)),
        }
    }

    pub fn get_mut(&mut self, h: Handle) -> Result<&mut T> {
        let ok = matches!(self.slots.get(h.index as usize), Some(Slot { gen, value: Some(_) }) if *gen == h.gen);
        if !ok {
            return Err(self.stale(h));
        }
        match self
            .slots
            .get_mut(h.index as usize)
            .and_then(|s| s.value.as_mut())
        {
            Some(v) => Ok(v),
            None => Err(Error::new(ErrorKind::UseAfterFree, None, "use after free")),
        }
    }

    pub fn contains(&self, h: Handle) -> bool {
        self.get(h).is_ok()
    }

    /// Removes the object; freeing a stale handle is a double free.
    pub fn remove(&mut self, h: Handle) -> Result<T> {
        let what = self.what;
        match self.slots.get_mut(h.index as usize) {
            Some(slot) if slot.gen == h.gen && slot.value.is_some() => {
                slot.gen = slot.gen.wrapping_add(1).max(1);
                self.free.push(h.index);
                self.live -= 1;
                Ok(slot.value.take().expect("checked above"))
            }
            _ => Err(Error::new(
                ErrorKind::DoubleFree,
                None,
                format!(
                    "double free: this {what} was already freed (handle {:#x})",
                    h.to_raw()
                ),
            )),
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| {
                (
                    Handle {
                        index: i as u32,
                        gen: s.gen,
                    },
                    v,
                )
            })
        })
    }
}
