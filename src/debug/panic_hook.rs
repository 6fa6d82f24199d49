//! The panic hook that names the green thread that panicked.

use std::io::Write;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::greenlet::core;

/// Makes panics in green threads say which green thread panicked, keeping
/// the panic hook installed now.
///
/// greenhub calls this itself, once, when the process's first hub is
/// created (the first `spawn`, `sleep`, ...). `std::panic::set_hook`
/// *replaces* the hook, so the rule is:
///
/// - a hook you set **before** greenhub's first use is kept: in a green
///   thread greenhub calls it unchanged (your hook can ask
///   [`current_name`](crate::current_name) or
///   `Greenlet::current().id()` which green thread it runs on: the hook runs
///   on the panicking green thread's stack);
/// - std's default hook is replaced, in green threads only, by the same
///   message with the green thread named:
///   `green thread 'panicker' (#12) panicked at src/main.rs:9:13:`;
/// - a hook you set **after** replaces greenhub's: call
///   `install_panic_hook()` again after yours to get both.
///
/// Panics on the root (`main`'s own code) go to the previous hook as they
/// are. Kills and timeouts unwind without the panic hook (they use
/// `resume_unwind`), so they print nothing.
///
/// ```
/// std::panic::set_hook(Box::new(|info| eprintln!("my hook: {info}")));
/// greenhub::debug::install_panic_hook(); // my hook still runs, in and out of green threads
/// let h = greenhub::spawn(|| panic!("boom"));
/// assert!(h.join().is_err());
/// let _ = std::panic::take_hook();
/// ```
pub fn install_panic_hook() {
    let prev = panic::take_hook();
    // `take_hook` left std's default in place: taking it again gives a box of
    // std's default hook, to tell whether `prev` is that one. Two boxes of
    // the same zero-sized function share their vtable; if the comparison
    // ever failed (vtables duplicated across codegen units), `prev` would
    // be treated as a user's hook, which is the safe side: it still runs.
    let probe = panic::take_hook();
    #[allow(ambiguous_wide_pointer_comparisons)]
    let prev_is_default = std::mem::size_of_val(&*prev) == 0
        && std::mem::size_of_val(&*probe) == 0
        && std::ptr::eq(&*prev as *const _, &*probe as *const _);
    drop(probe);
    panic::set_hook(Box::new(move |info| {
        if prev_is_default {
            if let Some(who) = describe_current() {
                return report(&who, info);
            }
        }
        prev(info)
    }));
}

/// `green thread 'name' (#id)` for the running green thread; `None` on the
/// root or once the hub is gone.
pub(crate) fn describe_current() -> Option<String> {
    let p = core::current_ptr();
    if p.is_null() {
        return None;
    }
    let g = core::current();
    Some(describe(g.id, g.name().as_deref()))
}

/// `green thread 'name' (#id)`, or `green thread #id` without a name.
pub(crate) fn describe(id: u64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("green thread '{n}' (#{id})"),
        None => format!("green thread #{id}"),
    }
}

/// std's default message, with the green thread in place of the OS thread.
fn report(who: &str, info: &PanicHookInfo<'_>) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let mut text = match info.location() {
        Some(l) => format!("{who} panicked at {l}:\n{msg}\n"),
        None => format!("{who} panicked:\n{msg}\n"),
    };
    let bt = std::backtrace::Backtrace::capture();
    match bt.status() {
        std::backtrace::BacktraceStatus::Captured => {
            text.push_str(&format!("stack backtrace:\n{bt}\n"));
        }
        _ => {
            if !NOTED.swap(true, Ordering::Relaxed) {
                text.push_str(
                    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
                );
            }
        }
    }
    // One write, so that concurrent panics on other threads do not interleave
    // mid-line; a failed write to stderr has nowhere to be reported.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
