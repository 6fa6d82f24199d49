//! The cross-thread examples, run as a user runs them (the built example
//! binary, bounded in time).

mod util;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use util::{example_path, wait_exit, wait_for_line};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs example `name` with `args` to its end; returns its stdout.
fn run(name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(example_path(name));
    cmd.args(args);
    let out = util::run_bounded(cmd, &format!("example {name}"), LIMIT);
    assert!(
        out.status.success(),
        "{name} exited with {}; output:\n{}",
        out.status,
        out.stdout
    );
    out.stdout
}

#[test]
fn threadsafe_takes_about_the_longer_sleep() {
    let out = run("threadsafe", &[]);
    let total: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("total: ")?.strip_suffix(" s")?.parse().ok())
        .unwrap_or_else(|| panic!("no total line in {out:?}"));
    assert!(
        (0.59..0.9).contains(&total),
        "total {total} s: the sleeps overlap (0.9 s in a row)"
    );
    assert!(
        out.contains("slept 0.6 s") && out.contains("slept 0.3 s"),
        "{out}"
    );
}

#[test]
fn queue_bridge_consumes_every_item_with_few_wakes() {
    let out = run("queue_bridge", &[]);
    let wakes: usize = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("1000 items consumed; the producer woke the hub ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no summary line in {out:?}"));
    assert!(wakes < 1000, "bursts coalesce: {wakes} wakes for 1000 items");
}

#[test]
fn multicore_echo_serves_from_both_hubs_and_stops_on_sigint() {
    let (mut child, lines) = util::start_example("multicore_echo", &["127.0.0.1:0", "2"]);
    let (ready, _) = wait_for_line(&lines, "listening on ", LIMIT);
    let addr = ready["listening on ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    for i in 0..100u8 {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&[i]).unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i);
    }
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill with a child's pid and a signal number has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (_, served) = wait_for_line(&lines, "got SIGINT", LIMIT);
    assert!(wait_exit(&mut child.0, LIMIT).success());
    for hub in 0..2 {
        let prefix = format!("hub {hub} served ");
        assert!(
            served.iter().any(|l| l.starts_with(&prefix)),
            "hub {hub} never served: {served:?}"
        );
    }
}
