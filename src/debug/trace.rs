//! Feature `tracing`: the current span belongs to a green thread.
//!
//! A tracing subscriber keeps one stack of entered spans per OS thread, so
//! without help a span entered by green thread A would still be current
//! when B runs. On a switch from A to B, the spans on the stack (A's) are
//! exited, innermost first, and remembered as A's; B's remembered spans are
//! entered again, outermost first. This is what `tracing::Instrumented`
//! does for a future around each poll, done with span ids through
//! `Dispatch::exit`/`enter` since `Entered` guards cannot be stored.
//!
//! Layers see these as span exits and enters (a span's busy time then
//! counts only the time its green thread ran). The swap is lazy: a green
//! thread that yields and is resumed next costs nothing here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use tracing::span::Id;
use tracing::{dispatcher, Span};

use crate::greenlet::gref::GRef;

thread_local! {
    /// The green thread whose spans are on this OS thread's span stack.
    static ON_STACK: Cell<u64> = const { Cell::new(0) };
    /// The entered spans of green threads that are not running, outermost first.
    static SAVED: RefCell<HashMap<u64, Vec<Id>>> = RefCell::new(HashMap::new());
    /// The span greenhub made for a green thread spawned inside a span,
    /// kept open until it ends.
    static OWN: RefCell<HashMap<u64, Span>> = RefCell::new(HashMap::new());
}

/// More than any real nesting: a subscriber whose `current_span` ignores
/// exits must not make the swap loop forever.
const MAX_DEPTH: usize = 256;

/// The trampoline is about to run green thread `to`.
pub(super) fn switch_to(to: u64) {
    let Ok(from) = ON_STACK.try_with(|c| c.replace(to)) else {
        return;
    };
    if from == to {
        return;
    }
    let stack = exit_all();
    let _ = SAVED.try_with(|saved| {
        let mut saved = saved.borrow_mut();
        if !stack.is_empty() {
            saved.insert(from, stack);
        }
        if let Some(theirs) = saved.remove(&to) {
            dispatcher::get_default(|d| theirs.iter().for_each(|id| d.enter(id)));
        }
    });
}

/// Exits every span on the OS thread's stack; returns them outermost first.
fn exit_all() -> Vec<Id> {
    if !dispatcher::has_been_set() {
        return Vec::new();
    }
    dispatcher::get_default(|d| {
        let mut stack = Vec::new();
        while let Some(id) = d.current_span().id().cloned() {
            if stack.len() == MAX_DEPTH {
                break;
            }
            d.exit(&id);
            stack.push(id);
        }
        stack.reverse();
        stack
    })
}

/// A green thread was created: inside a span, it gets a span of its own,
/// a child of that one, entered when it first runs.
pub(super) fn created(g: &GRef) {
    if !dispatcher::has_been_set() || Span::current().is_none() {
        return;
    }
    let name = g.name();
    let span = tracing::info_span!("green_thread", id = g.id, name = name.as_deref());
    if let Some(id) = span.id() {
        let _ = SAVED.try_with(|s| s.borrow_mut().insert(g.id, vec![id]));
        let _ = OWN.try_with(|o| o.borrow_mut().insert(g.id, span));
    }
}

/// A green thread ended: its spans leave the stack, its own span closes.
pub(super) fn ended(id: u64) {
    if ON_STACK.try_with(Cell::get) == Ok(id) {
        drop(exit_all());
    }
    let _ = SAVED.try_with(|s| s.borrow_mut().remove(&id));
    if let Ok(Some(span)) = OWN.try_with(|o| o.borrow_mut().remove(&id)) {
        drop(span);
    }
}
