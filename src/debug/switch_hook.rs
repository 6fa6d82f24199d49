//! A function called on every switch (greenlet's `settrace`).

use std::cell::{Cell, RefCell};

/// A switch hook: called with the id of the green thread that ran last and
/// the id of the one about to run (0 is the OS thread's root, `main`).
pub type SwitchHook = Box<dyn FnMut(u64, u64)>;

thread_local! {
    static HOOK: RefCell<Option<SwitchHook>> = const { RefCell::new(None) };
    /// The green thread that ran last on this OS thread (root: 0).
    static LAST: Cell<u64> = const { Cell::new(0) };
    /// Bumped by every `set_switch_hook`, so that a hook that replaces or
    /// removes itself is not put back after it returns.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Sets this OS thread's switch hook, returning the previous one; `None`
/// removes it. The hook is called on every switch of this OS thread's hub
/// with `(from, to)` green thread ids, as greenlet's `settrace` is, so that
/// tools (profilers, tracers, schedulers' statistics) can be built on it.
///
/// The hub is not a green thread here: every switch goes through it, so a
/// green thread that yields and is resumed next reports `(a, a)`. The hook
/// runs on the hub, between green threads: it must not block (park, sleep,
/// join), and a panic in it is caught and reported, then the hook is
/// removed. With no hook set anywhere in the process, a switch pays one
/// relaxed atomic load for all of this (measured with `cargo bench --bench
/// switch`: no difference above the noise).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// greenhub::debug::set_switch_hook(Some(Box::new(move |from, to| s.borrow_mut().push((from, to)))));
/// let h = greenhub::spawn(|| ());
/// let id = h.id();
/// h.join().unwrap();
/// greenhub::debug::set_switch_hook(None);
/// assert!(seen.borrow().contains(&(0, id)));
/// assert!(seen.borrow().contains(&(id, 0)));
/// ```
pub fn set_switch_hook(hook: Option<SwitchHook>) -> Option<SwitchHook> {
    if hook.is_some() {
        super::activate(super::HOOK);
        LAST.set(crate::greenlet::core::current().id);
    }
    GENERATION.set(GENERATION.get() + 1);
    HOOK.with(|h| std::mem::replace(&mut *h.borrow_mut(), hook))
}

/// The trampoline is about to run `to`.
pub(super) fn switched_to(to: u64) {
    let from = LAST.replace(to);
    let _ = HOOK.try_with(|h| {
        // Taken out while it runs, so that a hook that sets another hook
        // does not find the cell borrowed.
        let Some(mut f) = h.borrow_mut().take() else {
            return;
        };
        let generation = GENERATION.get();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(from, to))) {
            Ok(()) if GENERATION.get() == generation => *h.borrow_mut() = Some(f),
            Ok(()) => {}
            Err(_) => eprintln!("greenhub: the switch hook panicked; it was removed"),
        }
    });
}
