//! Real sync clients cooperate after `monkey::patch_all()`: ureq GETs, the
//! redis crate against a real redis-server (port in `GREENHUB_REDIS_PORT`,
//! started by `.ci/test`), and a C function built by the cc crate.
#![cfg(feature = "monkey")]

mod monkey_util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use monkey_util::{patch, Ticker, MAX_GAP};

/// A std server in a green thread: each connection gets `reply` after
/// reading one line (an HTTP request's first line is enough) and `delay`.
fn slow_server(delay: Duration, reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    greenhub::spawn(move || loop {
        let Ok((conn, _)) = listener.accept() else { return };
        greenhub::spawn(move || {
            let mut r = BufReader::new(&conn);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
                if reply.starts_with(b"pong") {
                    break;
                }
            }
            std::thread::sleep(delay);
            let _ = (&conn).write_all(reply);
        });
    });
    port
}

#[test]
fn four_ureq_gets_overlap() {
    patch();
    let port = slow_server(
        Duration::from_millis(300),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    );
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            greenhub::spawn(move || {
                let mut r = ureq::get(&format!("http://127.0.0.1:{port}/")).call().unwrap();
                r.body_mut().read_to_string().unwrap()
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), "ok");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "4 GETs of 300 ms took {took:?}"
    );
    assert!(ticker.finish() < MAX_GAP);
}

#[test]
fn a_c_library_cooperates() {
    patch();
    let dir = std::env::temp_dir().join(format!("greenhub-monkey-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The C compiler cc finds; a shared library, loaded with dlopen (its
    // calls to connect/send/recv bind to the executable's definitions).
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .opt_level(0)
        .host(&target)
        .target(&target)
        .get_compiler();
    let so = dir.join("libmonkeyc.so");
    let status = std::process::Command::new(compiler.path())
        .args(["-shared", "-fPIC", "-O2", "-D_FORTIFY_SOURCE=2", "-o"])
        .arg(&so)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/monkey_c/client.c"))
        .status()
        .unwrap();
    assert!(status.success());
    let path = std::ffi::CString::new(so.to_str().unwrap()).unwrap();
    // SAFETY: loads a library we just built; looks up a function of the
    // stated signature.
    // SAFETY: loads a library we just built.
    let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!lib.is_null());
    let port = slow_server(Duration::from_millis(300), b"pong\n");
    for name in [c"c_roundtrip", c"c_roundtrip_fortified"] {
        // SAFETY: looks up a function of the library with this signature.
        let f: extern "C" fn(u16, *mut u8, i32) -> i32 = unsafe {
            let sym = libc::dlsym(lib, name.as_ptr());
            assert!(!sym.is_null());
            std::mem::transmute(sym)
        };
        let ticker = Ticker::start();
        let start = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                greenhub::spawn(move || {
                    let mut buf = [0u8; 16];
                    let n = f(port, buf.as_mut_ptr(), buf.len() as i32);
                    assert_eq!(n, 5);
                    buf[..5].to_vec()
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), b"pong\n");
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(900),
            "{name:?}: 4 C round trips of 300 ms took {took:?}"
        );
        assert!(ticker.finish() < MAX_GAP);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_blpop_overlaps() {
    let Ok(port) = std::env::var("GREENHUB_REDIS_PORT") else {
        println!("skipped: GREENHUB_REDIS_PORT is not set (.ci/test starts redis-server)");
        return;
    };
    patch();
    let url = format!("redis://127.0.0.1:{port}/");
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            greenhub::spawn(move || {
                let client = redis::Client::open(url).unwrap();
                let mut con = client.get_connection().unwrap();
                let key = format!("greenhub-monkey-{}-{i}", std::process::id());
                let r: Option<(String, String)> =
                    redis::cmd("BLPOP").arg(&key).arg(0.3).query(&mut con).unwrap();
                assert!(r.is_none());
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert!(ticker.finish() < MAX_GAP);
}

/// Where a child test process reports `patch_all`'s answer.
const CHILD_ENV: &str = "GREENHUB_MONKEY_PATCH_CHILD";

#[test]
fn an_ld_preload_interposer_does_not_displace_greenhubs_symbols() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child, run with LD_PRELOAD: report and stop.
        match greenhub::monkey::patch_all() {
            Ok(()) => println!("PATCH-RESULT ok"),
            Err(e) => println!("PATCH-RESULT err {} | {e}", e.symbol()),
        }
        return;
    }
    // A library that defines `recv`, preloaded: the executable's own
    // definitions still come first in the dynamic linker's search, so
    // patch_all finds greenhub's `recv` and succeeds.
    let dir = std::env::temp_dir().join(format!("greenhub-monkey-preload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("pre.c");
    std::fs::write(
        &src,
        "#include <sys/types.h>\n#include <sys/socket.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n\
         ssize_t recv(int fd, void *b, size_t n, int f) { return syscall(SYS_recvfrom, fd, b, n, f, 0, 0); }\n",
    )
    .unwrap();
    let so = dir.join("libpre.so");
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .opt_level(0)
        .host(&target)
        .target(&target)
        .get_compiler();
    let built = std::process::Command::new(compiler.path())
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .unwrap();
    assert!(built.success());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_ld_preload_interposer_does_not_displace_greenhubs_symbols",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .env("LD_PRELOAD", &so)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("PATCH-RESULT"))
        .unwrap_or_else(|| panic!("child said {stdout}"));
    assert_eq!(line, "PATCH-RESULT ok");
}
