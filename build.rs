//! Links libkqueue for the `kqueue-on-linux` feature; does nothing otherwise.
//!
//! Plain `pkg-config` rather than the `pkg-config` crate: one invocation
//! needs no build-dependency, so default builds compile and download
//! nothing extra for a test-only feature.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let wanted = env::var_os("CARGO_FEATURE_KQUEUE_ON_LINUX").is_some();
    if !wanted || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let output = Command::new("pkg-config").args(["--libs", "libkqueue"]).output();
    let libs = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => panic!(
            "the kqueue-on-linux feature needs libkqueue, which pkg-config does not find: {}\
             build and install https://github.com/mheily/libkqueue (cmake), or drop the feature",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the kqueue-on-linux feature needs pkg-config to find libkqueue: {e}"),
    };
    for flag in libs.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
}
