//! The blocking monitor: one watchdog thread that notices a hub that has
//! not switched for longer than a threshold, and says which green thread
//! holds it (gevent's `max_blocking_time` monitor).
//!
//! Off by default. On with `GREENHUB_MONITOR=1` in the environment (read
//! once, when the first hub is created; `GREENHUB_MAX_BLOCKING_MS` sets the
//! threshold, 100 ms by default), or with [`start`].
//!
//! # How it works
//!
//! While the monitor is on, each hub publishes, on every switch, a switch
//! count and which green thread runs (three relaxed stores to memory only
//! that hub writes); going to sleep in the poller it publishes "idle". The
//! watchdog wakes every quarter of the threshold and looks at each hub: one
//! whose count has not moved for the threshold, and which is not idle, is
//! stalled, and is reported once for that stall, on stderr or to the
//! callback of [`Config::on_report`]. With the monitor off a switch pays
//! one relaxed load for all of this.
//!
//! The report gives the hub's OS thread, the green thread (id, name, spawn
//! site) and how long so far, as measured by the watchdog (within a
//! quarter of the threshold). It has no backtrace; see
//! [the module docs](crate::debug#the-blocking-monitor) for why, and for
//! what the monitor cannot see.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::greenlet::gref::GRef;

/// `running` while the hub's own code runs (between green threads).
pub(crate) const HUB: u64 = u64::MAX - 1;
/// `running` while the hub sleeps in the poller.
pub(crate) const IDLE: u64 = u64::MAX;

/// The default threshold.
pub const DEFAULT_MAX_BLOCKING: Duration = Duration::from_millis(100);

/// A callback that receives reports instead of stderr.
type Callback = Arc<dyn Fn(&Report) + Send + Sync>;

/// How the monitor runs: the threshold, and where reports go.
///
/// ```
/// use std::time::Duration;
/// let config = greenhub::debug::monitor::Config::new()
///     .max_blocking_time(Duration::from_millis(50))
///     .on_report(|report| eprintln!("stalled: {report}"));
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct Config {
    max_blocking: Duration,
    callback: Option<Callback>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_blocking", &self.max_blocking)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

impl Config {
    /// The threshold [`DEFAULT_MAX_BLOCKING`] (100 ms); reports on stderr.
    pub fn new() -> Config {
        Config {
            max_blocking: DEFAULT_MAX_BLOCKING,
            callback: None,
        }
    }

    /// The default config with `GREENHUB_MAX_BLOCKING_MS` applied.
    pub(crate) fn from_env() -> Config {
        let mut c = Config::new();
        if let Some(ms) = std::env::var("GREENHUB_MAX_BLOCKING_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            c.max_blocking = Duration::from_millis(ms.max(1));
        }
        c
    }

    /// How long a hub may go without switching before it is reported
    /// (at least 1 ms).
    pub fn max_blocking_time(mut self, d: Duration) -> Config {
        self.max_blocking = d.max(Duration::from_millis(1));
        self
    }

    /// Sends reports to `f` (called on the watchdog thread) instead of
    /// stderr.
    pub fn on_report(mut self, f: impl Fn(&Report) + Send + Sync + 'static) -> Config {
        self.callback = Some(Arc::new(f));
        self
    }
}

/// One stall: which hub, which green thread, since when.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The name of the hub's OS thread, if it has one.
    pub thread_name: Option<String>,
    /// The hub's OS thread.
    pub thread_id: ThreadId,
    /// The green thread that holds the hub: `Some(0)` for the OS thread's
    /// own code (`main`), `None` for the hub's own work (a callback).
    pub green_thread: Option<u64>,
    /// Its name, if it has one (and was spawned while the monitor was on).
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawned_at: Option<&'static Location<'static>>,
    /// How long the hub has not switched, so far.
    pub blocked_for: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greenhub monitor: the hub of thread '{}' ({:?}) has not switched for {} ms:\n  ",
            self.thread_name.as_deref().unwrap_or("<unnamed>"),
            self.thread_id,
            self.blocked_for.as_millis()
        )?;
        match self.green_thread {
            None => f.write_str("the hub itself (a callback, or the hub's own work) has been running")?,
            Some(0) => f.write_str("the OS thread's own code (main green thread, #0) has been running")?,
            Some(id) => {
                f.write_str(&super::panic_hook::describe(id, self.name.as_deref()))?;
                if let Some(site) = self.spawned_at {
                    write!(f, ", spawned at {site},")?;
                }
                f.write_str(" has been running all that time")?;
            }
        }
        f.write_str(
            "\n  (it computes, or it blocks the OS thread: std::thread::sleep, a std Mutex, \
             file or foreign I/O)",
        )
    }
}

/// What a hub publishes for the watchdog.
struct HubSlot {
    /// Bumped on every switch (and idle change); written only by the hub.
    seq: AtomicU64,
    /// The green thread running (id), or `HUB`/`IDLE`.
    running: AtomicU64,
    /// Its spawn site, or null.
    site: AtomicPtr<Location<'static>>,
    /// Live green threads when the root last resumed: a root that runs its
    /// own code for long is a stall only if others are waiting to run.
    others: AtomicU64,
    thread_name: Option<String>,
    thread_id: ThreadId,
    /// The watchdog's view: the count last seen, since when, reported yet.
    watch: Mutex<(u64, Instant, bool)>,
}

struct Shared {
    config: Mutex<Config>,
    hubs: Mutex<Vec<Weak<HubSlot>>>,
    names: Mutex<HashMap<u64, Arc<str>>>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        config: Mutex::new(Config::new()),
        hubs: Mutex::new(Vec::new()),
        names: Mutex::new(HashMap::new()),
    })
}

thread_local! {
    static SLOT: OnceCell<Arc<HubSlot>> = const { OnceCell::new() };
}

/// Starts the blocking monitor for every hub of the process (or changes
/// its config if it runs already). Hubs are watched from their next switch
/// on.
///
/// ```no_run
/// use std::time::Duration;
/// use greenhub::debug::monitor;
///
/// monitor::start(monitor::Config::new().max_blocking_time(Duration::from_millis(50)));
/// greenhub::spawn(|| std::thread::sleep(Duration::from_millis(200))).join().unwrap();
/// // stderr: "greenhub monitor: the hub of thread 'main' (...) has not switched for 50 ms: ..."
/// ```
pub fn start(config: Config) {
    static WATCHDOG: OnceLock<()> = OnceLock::new();
    *shared().config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    super::activate(super::MONITOR);
    WATCHDOG.get_or_init(|| {
        std::thread::Builder::new()
            .name("greenhub-monitor".into())
            .spawn(watchdog)
            .map(drop)
            .unwrap_or_else(|e| eprintln!("greenhub monitor: could not start its thread: {e}"))
    });
}

/// Whether the monitor is on.
///
/// ```
/// let _on: bool = greenhub::debug::monitor::is_running();
/// ```
pub fn is_running() -> bool {
    super::active(super::MONITOR)
}

/// Publishes who runs now on this hub (called by the switch hooks).
pub(crate) fn running(id: u64, site: Option<&'static Location<'static>>) {
    let _ = SLOT.try_with(|s| {
        let s = s.get_or_init(register);
        if id == 0 {
            s.others.store(super::registry::count() as u64, Ordering::Relaxed);
        }
        s.running.store(id, Ordering::Relaxed);
        let site = site.map_or(std::ptr::null_mut(), |l| l as *const _ as *mut _);
        s.site.store(site, Ordering::Relaxed);
        // Release: a watchdog that sees this count sees the stores above.
        let n = s.seq.load(Ordering::Relaxed);
        s.seq.store(n.wrapping_add(1), Ordering::Release);
    });
}

fn register() -> Arc<HubSlot> {
    let t = std::thread::current();
    let slot = Arc::new(HubSlot {
        seq: AtomicU64::new(0),
        running: AtomicU64::new(HUB),
        site: AtomicPtr::new(std::ptr::null_mut()),
        others: AtomicU64::new(0),
        thread_name: t.name().map(str::to_owned),
        thread_id: t.id(),
        watch: Mutex::new((u64::MAX, Instant::now(), false)),
    });
    let mut hubs = shared().hubs.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|w| w.strong_count() > 0);
    hubs.push(Arc::downgrade(&slot));
    slot
}

/// Remembers a named green thread's name for reports.
pub(crate) fn note_name(g: &GRef) {
    if let Some(name) = g.name() {
        let mut names = shared().names.lock().unwrap_or_else(|e| e.into_inner());
        names.insert(g.id, name.into());
    }
}

pub(crate) fn forget_name(id: u64) {
    let mut names = shared().names.lock().unwrap_or_else(|e| e.into_inner());
    names.remove(&id);
}

fn watchdog() {
    loop {
        let (threshold, callback) = {
            let c = shared().config.lock().unwrap_or_else(|e| e.into_inner());
            (c.max_blocking, c.callback.clone())
        };
        std::thread::sleep((threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(250)));
        let hubs: Vec<Arc<HubSlot>> = {
            let mut hubs = shared().hubs.lock().unwrap_or_else(|e| e.into_inner());
            hubs.retain(|w| w.strong_count() > 0);
            hubs.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        for hub in hubs {
            if let Some(report) = check(&hub, now, threshold) {
                match &callback {
                    Some(f) => f(&report),
                    None => eprintln!("{report}"),
                }
            }
        }
    }
}

/// Looks at one hub; a report if it is newly found stalled.
fn check(hub: &HubSlot, now: Instant, threshold: Duration) -> Option<Report> {
    let seq = hub.seq.load(Ordering::Acquire);
    let running = hub.running.load(Ordering::Relaxed);
    let site = hub.site.load(Ordering::Relaxed);
    let mut watch = hub.watch.lock().unwrap_or_else(|e| e.into_inner());
    if seq != watch.0 {
        *watch = (seq, now, false);
        return None;
    }
    let blocked_for = now.duration_since(watch.1);
    let idle_root = running == 0 && hub.others.load(Ordering::Relaxed) == 0;
    if watch.2 || running == IDLE || idle_root || blocked_for < threshold {
        return None;
    }
    watch.2 = true;
    let green_thread = (running != HUB).then_some(running);
    let name = green_thread.and_then(|id| {
        let names = shared().names.lock().unwrap_or_else(|e| e.into_inner());
        names.get(&id).map(|n| n.to_string())
    });
    // SAFETY: a non-null site was stored from a `&'static Location`.
    let spawned_at = (!site.is_null()).then(|| unsafe { &*site });
    Some(Report {
        thread_name: hub.thread_name.clone(),
        thread_id: hub.thread_id,
        green_thread,
        name,
        spawned_at,
        blocked_for,
    })
}
