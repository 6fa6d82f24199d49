//! Feature `tracing`: spans are current per green thread. Run with
//! `cargo test --features tracing --test tracing`.
#![cfg(feature = "tracing")]

use std::io;
use std::sync::{Arc, Mutex};

use tracing::info;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Collects what the fmt layer writes.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

/// Runs `f` with a registry + fmt layer writing into a buffer; returns the lines.
fn traced(f: impl FnOnce()) -> Vec<String> {
    let buf = Buf::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(buf.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false),
    );
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn line<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:#?}"))
}

#[test]
fn a_span_entered_in_a_green_thread_is_current_only_there() {
    let lines = traced(|| {
        let a = greenhub::spawn(|| {
            let span = tracing::info_span!("span_of_a", req = 1);
            let _entered = span.enter();
            info!("A before");
            greenhub::yield_now();
            greenhub::yield_now();
            info!("A after");
        });
        let b = greenhub::spawn(|| {
            info!("B without a span");
            let span = tracing::info_span!("span_of_b", req = 2);
            let _entered = span.enter();
            greenhub::yield_now();
            info!("B in its span");
        });
        greenhub::join_all([&a, &b]);
        info!("main after");
    });
    assert!(
        line(&lines, "A before").contains("span_of_a{req=1}"),
        "{lines:#?}"
    );
    let b0 = line(&lines, "B without a span");
    assert!(!b0.contains("span_of_a"), "A's span leaked into B: {lines:#?}");
    let b1 = line(&lines, "B in its span");
    assert!(
        b1.contains("span_of_b{req=2}") && !b1.contains("span_of_a"),
        "{lines:#?}"
    );
    let a1 = line(&lines, "A after");
    assert!(
        a1.contains("span_of_a{req=1}") && !a1.contains("span_of_b"),
        "{lines:#?}"
    );
    assert!(!line(&lines, "main after").contains("span_of"), "{lines:#?}");
}

#[test]
fn the_root_keeps_its_span_across_switches() {
    let lines = traced(|| {
        let span = tracing::info_span!("main_span");
        let _entered = span.enter();
        let h = greenhub::spawn(|| {
            greenhub::yield_now();
        });
        greenhub::sleep(std::time::Duration::from_millis(1));
        h.join().unwrap();
        info!("main again");
    });
    assert!(line(&lines, "main again").contains("main_span"), "{lines:#?}");
}

#[test]
fn a_green_thread_spawned_in_a_span_gets_its_own() {
    let lines = traced(|| {
        let span = tracing::info_span!("request", id = 7);
        let h = span.in_scope(|| {
            greenhub::Builder::new()
                .name("worker")
                .spawn(|| info!("working"))
                .unwrap()
        });
        let gid = h.id();
        h.join().unwrap();
        info!("spawned #{gid}");
        // Spawned outside any span: no span of its own.
        greenhub::spawn(|| info!("plain")).join().unwrap();
    });
    let gid = line(&lines, "spawned #").rsplit('#').next().unwrap().to_owned();
    let w = line(&lines, "working");
    let expected = format!("request{{id=7}}:green_thread{{id={gid} name=\"worker\"}}");
    assert!(w.contains(&expected), "{w} lacks {expected}");
    assert!(!line(&lines, "plain").contains("green_thread"), "{lines:#?}");
}
