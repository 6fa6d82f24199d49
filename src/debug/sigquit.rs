//! Every hub prints its run info on SIGQUIT, as Go prints every goroutine.

use std::cell::RefCell;
use std::io::{self, Write};

use crate::signal::{self, SignalHandler};

thread_local! {
    /// This hub's SIGQUIT handler, while the dump is on.
    static HANDLER: RefCell<Option<SignalHandler>> = const { RefCell::new(None) };
}

/// From now on, SIGQUIT (Ctrl+\\) makes every hub that has spawned a green
/// thread, and the current one, print its [`run_info`](super::run_info) on
/// stderr, and the process goes on (SIGQUIT's default action, a core dump,
/// is replaced). `GREENHUB_DUMP_ON_SIGQUIT=1` in the environment does the
/// same without a code change.
///
/// Each hub renders its own info, on its own OS thread, as a callback (the
/// signal reaches hubs through greenhub's signal dispatcher and their
/// inboxes): a hub that is stalled (see the [monitor](super::monitor))
/// prints when it next runs its loop.
///
/// # Errors
/// If the signal handler cannot be installed (see
/// [`Signals::new`](crate::signal::Signals::new)).
///
/// ```
/// greenhub::debug::dump_on_sigquit().unwrap();
/// ```
pub fn dump_on_sigquit() -> io::Result<()> {
    super::activate(super::DUMP);
    listen()
}

/// Makes this hub listen, once (called on spawns while the dump is on).
pub(crate) fn ensure_hub_listens() {
    if let Err(e) = listen() {
        eprintln!("greenhub: GREENHUB_DUMP_ON_SIGQUIT: {e}");
    }
}

fn listen() -> io::Result<()> {
    if HANDLER.with(|h| h.borrow().is_some()) {
        return Ok(());
    }
    let handler = signal::on(signal::SIGQUIT, || {
        let text = super::run_info().to_string();
        // One write, so that hubs dumping at once do not interleave lines.
        let _ = io::stderr().lock().write_all(text.as_bytes());
    })?;
    HANDLER.with(|h| *h.borrow_mut() = Some(handler));
    Ok(())
}
