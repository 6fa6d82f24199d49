//! `run_info`: every live green thread of the current hub, and what it
//! waits on (gevent's `print_run_info`).

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::time::Instant;

use super::WaitTag;
use crate::greenlet::core::{self, Kind, State};
use crate::hub::{self, timers::Action};

/// A snapshot of the current hub: its figures and every live green thread.
/// Its `Display` is the report (see [the module docs](crate::debug#run-info)
/// for how to read it); the fields are there for tools.
///
/// ```
/// let worker = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(5)));
/// greenhub::yield_now();
/// let info = greenhub::debug::run_info();
/// assert!(info.timers >= 1); // the sleep's
/// assert!(info.green_threads.iter().any(|g| g.id == worker.id()));
/// worker.kill();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunInfo {
    /// The hub's OS thread's name.
    pub thread_name: Option<String>,
    /// Turns of the hub's loop so far.
    pub turns: u64,
    /// Green threads and callbacks queued to run.
    pub ready: usize,
    /// Pending timers (sleeps, deadlines, timeouts, timed callbacks).
    pub timers: usize,
    /// Registered fds.
    pub fds: usize,
    /// Green threads parked on an fd.
    pub fds_waited: usize,
    /// Stacks handed out to green threads.
    pub stacks_in_use: usize,
    /// Stacks kept for reuse.
    pub stacks_pooled: usize,
    /// The live green threads, the root (`#0`) first, then by id.
    pub green_threads: Vec<GreenThreadInfo>,
}

/// One green thread in a [`RunInfo`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GreenThreadInfo {
    /// Its id (0: the OS thread's root, `main`).
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawned_at: Option<&'static Location<'static>>,
    /// What it does: `running`, `ready`, `parked: <what it waits on>`,
    /// `waiting for a switch`, `not started`.
    pub state: String,
}

/// Every live green thread of this OS thread's hub, with what each waits
/// on, and the hub's figures.
///
/// ```
/// use std::time::Duration;
/// let sleeper = greenhub::Builder::new()
///     .name("sleeper")
///     .spawn(|| greenhub::sleep(Duration::from_secs(5)))
///     .unwrap();
/// greenhub::yield_now(); // let it park
/// let info = greenhub::debug::run_info();
/// let text = info.to_string();
/// assert!(text.contains("'sleeper'"), "{text}");
/// assert!(text.contains("parked: sleep"), "{text}");
/// sleeper.kill();
/// ```
pub fn run_info() -> RunInfo {
    let me = core::current();
    let greens: Vec<_> = crate::greenlet::gref::live_records()
        .into_iter()
        .filter(|g| !g.is_dead() && !g.is_root())
        .collect();
    // What each parked green thread's timer says (deadline), and whom each
    // joiner waits for, found where the hub and the records keep them.
    let mut deadlines: HashMap<u64, Instant> = HashMap::new();
    let mut clock_ms = 0;
    let figures = hub::with(|h| {
        clock_ms = h.clock_ms();
        for (at, action) in h.timers.borrow().iter() {
            if let Action::Wake(w) = action {
                if w.is_waiting() {
                    deadlines.entry(w.green_thread_id()).or_insert(at);
                }
            }
        }
        h.figures()
    });
    let mut joins: HashMap<u64, u64> = HashMap::new();
    for g in &greens {
        for joiner in g.joiner_ids() {
            joins.entry(joiner).or_insert(g.id);
        }
    }
    let now = Instant::now();
    let root = hub::root();
    let mut green_threads: Vec<GreenThreadInfo> = std::iter::once(&root)
        .chain(greens.iter())
        .map(|g| {
            let state = if core::is_current(g) {
                "running".to_string()
            } else {
                match g.state.get() {
                    State::Running => "running".to_string(),
                    State::Scheduled => "ready".to_string(),
                    State::Parked => {
                        let tag = WaitTag(g.wait_tag.get());
                        let mut s = format!("parked: {}", tag.describe());
                        if tag == WaitTag::JOIN {
                            if let Some(t) = joins.get(&g.id) {
                                s.push_str(&format!(" of #{t}"));
                            }
                        }
                        let waited = clock_ms.wrapping_sub(g.parked_at.get());
                        s.push_str(&format!(" for {waited} ms"));
                        if let Some(d) = deadlines.get(&g.id) {
                            let left = d.saturating_duration_since(now);
                            s.push_str(&format!(", wakes in {} ms", left.as_millis()));
                        }
                        s
                    }
                    State::Suspended if !g.is_started() => "not started".to_string(),
                    State::Suspended => "waiting for a switch".to_string(),
                    State::Dead => "dead".to_string(),
                }
            };
            GreenThreadInfo {
                id: g.id,
                name: if g.kind == Kind::Root {
                    Some("main".into())
                } else {
                    g.name()
                },
                spawned_at: g.site.get(),
                state,
            }
        })
        .collect();
    green_threads[1..].sort_by_key(|g| g.id);
    drop(me);
    let (stacks_in_use, stacks_pooled) = crate::stack::stats();
    RunInfo {
        thread_name: std::thread::current().name().map(str::to_owned),
        turns: figures.turns,
        ready: figures.ready,
        timers: figures.timers,
        fds: figures.fds,
        fds_waited: figures.fds_waited,
        stacks_in_use,
        stacks_pooled,
        green_threads,
    }
}

impl fmt::Display for RunInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "hub of thread '{}': {} turns, {} ready, {} timers, {} fds registered ({} waited on), \
             stacks: {} in use, {} pooled",
            self.thread_name.as_deref().unwrap_or("<unnamed>"),
            self.turns,
            self.ready,
            self.timers,
            self.fds,
            self.fds_waited,
            self.stacks_in_use,
            self.stacks_pooled
        )?;
        for g in &self.green_threads {
            write!(f, "  #{}", g.id)?;
            match (&g.name, g.id) {
                (Some(n), 0) => write!(f, " {n}")?,
                (Some(n), _) => write!(f, " '{n}'")?,
                (None, _) => {}
            }
            if let Some(site) = g.spawned_at {
                write!(f, " spawned at {site}")?;
            }
            writeln!(f, ": {}", g.state)?;
        }
        Ok(())
    }
}
