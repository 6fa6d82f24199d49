//! [`GRef`]: the reference-counted handle to a green thread's record, like
//! `Rc<Inner>` but allocated from a per-OS-thread free list.
//!
//! Spawning a million green threads is a million records. From malloc each
//! cost about 350 instructions to allocate and free (glibc's `_int_malloc`
//! from a fresh heap, `_int_free` and `malloc_consolidate`), a quarter of a
//! spawn+join; here a record is popped from an intrusive free list or bumped
//! out of a 256-record chunk. Records are 120 bytes (count included). The
//! slab also lists every live record, for `debug::run_info`. Chunks
//! are kept for reuse, like malloc's heap, and freed at thread exit if no
//! record is still alive.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem::offset_of;
use std::ops::Deref;
use std::ptr::{self, NonNull};

use super::core::Inner;

/// A record and its reference count. `repr(C)`, so the record's address
/// maps back to the box's (see `from_inner`).
#[repr(C)]
struct GBox {
    count: Cell<usize>,
    inner: Inner,
}

/// Records per chunk.
const CHUNK: usize = 256;

struct Slab {
    /// Freed records, linked through their first word.
    free: *mut GBox,
    /// The unused tail of the newest chunk, `left` records long.
    next: *mut GBox,
    left: usize,
    /// Every chunk, to free at thread exit.
    chunks: Vec<NonNull<GBox>>,
    live: usize,
}

impl Slab {
    fn take(&mut self) -> NonNull<GBox> {
        self.live += 1;
        if let Some(p) = NonNull::new(self.free) {
            // SAFETY: a freed record's first word holds the next free
            // record (written by `give`), and the record is ours: freed
            // records belong to this slab until handed out again.
            self.free = unsafe { p.as_ptr().cast::<*mut GBox>().read() };
            return p;
        }
        if self.left == 0 {
            let layout = Layout::array::<GBox>(CHUNK).expect("a chunk's size fits");
            // SAFETY: the layout has a non-zero size.
            let chunk = unsafe { alloc::alloc(layout) }.cast::<GBox>();
            let Some(chunk) = NonNull::new(chunk) else {
                alloc::handle_alloc_error(layout)
            };
            self.chunks.push(chunk);
            (self.next, self.left) = (chunk.as_ptr(), CHUNK);
        }
        // SAFETY: `next` points into the newest chunk with `left` > 0
        // records unused, so it is in bounds and non-null; one past its end
        // is at most the chunk's end.
        let p = unsafe { NonNull::new_unchecked(self.next) };
        // SAFETY: as above, stepping within (or to the end of) the chunk.
        self.next = unsafe { self.next.add(1) };
        self.left -= 1;
        p
    }

    /// # Safety
    /// `p` came from `take` of this slab and its record has been dropped.
    unsafe fn give(&mut self, p: NonNull<GBox>) {
        self.live -= 1;
        // SAFETY: the record is dead (caller), its memory is ours and at
        // least a pointer in size and alignment.
        unsafe { p.as_ptr().cast::<*mut GBox>().write(self.free) };
        // SAFETY: as above; the id field lies past the first word, so the
        // free-list link is kept. Marks the slot free for `live_records`.
        unsafe { ptr::addr_of_mut!((*p.as_ptr()).inner.id).write(FREED) };
        self.free = p.as_ptr();
    }

    /// Every record handed out and not yet given back, in slab order.
    fn live(&self) -> impl Iterator<Item = NonNull<GBox>> + '_ {
        let last = self.chunks.len().saturating_sub(1);
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(i, chunk)| {
                // Only the newest chunk has an unused tail (`left` records).
                let used = if i == last { CHUNK - self.left } else { CHUNK };
                // SAFETY: `j < used <= CHUNK`: within the chunk's allocation.
                (0..used).map(move |j| unsafe { NonNull::new_unchecked(chunk.as_ptr().add(j)) })
            })
            .filter(|p| {
                // The slot is in a chunk and was handed out (it is below the
                // unused tail): it holds either a record or, once given back,
                // the free mark written by `give`.
                // SAFETY: reading the id field's 8 bytes of such a slot
                // through a raw pointer creates no reference to a dead record.
                let id = unsafe { ptr::addr_of!((*p.as_ptr()).inner.id).read() };
                id != FREED
            })
    }
}

/// The id a record slot carries once its record is given back: no green
/// thread has it (ids count up from 1; the root's is 0).
const FREED: u64 = u64::MAX;

/// A new reference to every record of this OS thread still alive (ended
/// green threads whose handles are held included), for `debug::run_info`:
/// the slab knows them all, so listing costs spawns nothing.
pub(crate) fn live_records() -> Vec<GRef> {
    SLAB.with(|s| {
        s.borrow()
            .live()
            .map(|ptr| {
                let r = GRef { ptr };
                let c = &r.gbox().count;
                c.set(c.get() + 1);
                r
            })
            .collect()
    })
}

/// How many records of this OS thread are alive.
pub(crate) fn live_count() -> usize {
    SLAB.try_with(|s| s.borrow().live).unwrap_or(0)
}

impl Drop for Slab {
    fn drop(&mut self) {
        // Records still alive (green threads left suspended at thread exit)
        // keep every chunk: which chunk holds them is not tracked.
        if self.live != 0 {
            return;
        }
        let layout = Layout::array::<GBox>(CHUNK).expect("a chunk's size fits");
        for chunk in self.chunks.drain(..) {
            // SAFETY: each chunk came from `alloc::alloc` with this layout,
            // and no record in it is alive.
            unsafe { alloc::dealloc(chunk.as_ptr().cast(), layout) };
        }
    }
}

thread_local! {
    static SLAB: RefCell<Slab> = const {
        RefCell::new(Slab { free: ptr::null_mut(), next: ptr::null_mut(), left: 0, chunks: Vec::new(), live: 0 })
    };
}

/// A counted reference to a green thread's record. `!Send`, like `Rc`.
pub(crate) struct GRef {
    ptr: NonNull<GBox>,
}

impl GRef {
    pub(crate) fn new(inner: Inner) -> GRef {
        let ptr = SLAB.with(|s| s.borrow_mut().take());
        // SAFETY: `take` hands out memory for one GBox that nothing uses.
        unsafe {
            ptr.as_ptr().write(GBox {
                count: Cell::new(1),
                inner,
            })
        };
        GRef { ptr }
    }

    fn gbox(&self) -> &GBox {
        // SAFETY: a GRef keeps its box alive (count >= 1).
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn as_ptr(this: &GRef) -> *const Inner {
        &this.gbox().inner
    }

    pub(crate) fn ptr_eq(a: &GRef, b: &GRef) -> bool {
        a.ptr == b.ptr
    }

    pub(crate) fn strong_count(this: &GRef) -> usize {
        this.gbox().count.get()
    }

    /// Gives up this reference as a pointer to the record (see `from_raw`).
    pub(crate) fn into_raw(this: GRef) -> *const Inner {
        let p = GRef::as_ptr(&this);
        std::mem::forget(this);
        p
    }

    fn from_inner(p: *const Inner) -> NonNull<GBox> {
        let p = p
            .cast::<u8>()
            .wrapping_sub(offset_of!(GBox, inner))
            .cast::<GBox>()
            .cast_mut();
        NonNull::new(p).expect("greenhub: a record pointer is never null")
    }

    /// Takes back a reference given up by `into_raw`.
    ///
    /// # Safety
    /// `p` came from `into_raw` and is taken back once.
    pub(crate) unsafe fn from_raw(p: *const Inner) -> GRef {
        GRef {
            ptr: GRef::from_inner(p),
        }
    }

    /// A new reference to the record at `p`.
    ///
    /// # Safety
    /// `p` points to the record of a live `GRef` (from `as_ptr`).
    pub(crate) unsafe fn clone_raw(p: *const Inner) -> GRef {
        let r = GRef {
            ptr: GRef::from_inner(p),
        };
        let c = &r.gbox().count;
        c.set(c.get() + 1);
        r
    }
}

impl Clone for GRef {
    fn clone(&self) -> GRef {
        let c = &self.gbox().count;
        c.set(c.get() + 1);
        GRef { ptr: self.ptr }
    }
}

impl Drop for GRef {
    /// Inline: the switch path drops several references per hand-off, and
    /// all but the last are a decrement (a call each cost ~6% of a channel
    /// hand-off's instructions).
    #[inline]
    fn drop(&mut self) {
        let c = &self.gbox().count;
        let left = c.get() - 1;
        c.set(left);
        if left == 0 {
            self.drop_last();
        }
    }
}

impl GRef {
    /// Frees the record: `self` was its last reference.
    #[inline(never)]
    fn drop_last(&mut self) {
        // SAFETY: the count reached zero, so this was the last reference:
        // the record is dropped once, and nothing reads it afterwards.
        unsafe { ptr::drop_in_place(&mut (*self.ptr.as_ptr()).inner) };
        let ptr = self.ptr;
        // At thread exit, once the slab is gone, the memory is left alone:
        // the slab frees chunks only when no record is alive.
        // SAFETY: `ptr` came from this thread's slab (`GRef` is !Send) and
        // its record was just dropped.
        let _ = SLAB.try_with(|s| unsafe { s.borrow_mut().give(ptr) });
    }
}

impl Deref for GRef {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.gbox().inner
    }
}

impl fmt::Debug for GRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
