// depthpilot: vendored from zmq-sys 0.12.0 (crates.io), changed ONLY here: upstream calls
// `with_libsodium(None)`, which builds libzmq without CURVE; this build script finds the
// system libsodium (Debian `libsodium-dev`, installed by `scripts/setup`) and passes it, so
// libzmq is built with ZMQ_USE_LIBSODIUM and ZMQ_HAVE_CURVE (`zmq::has("curve")` is true).
// See VENDORED.md.

use std::path::PathBuf;
use std::process::Command;

/// `pkg-config --variable=NAME libsodium`, if pkg-config and libsodium's .pc file exist.
fn pkg_config_var(name: &str) -> Option<PathBuf> {
    let out = Command::new("pkg-config")
        .args([&format!("--variable={name}"), "libsodium"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| PathBuf::from(text))
}

/// libsodium's (lib dir, include dir): `SODIUM_LIB_DIR` and `SODIUM_INCLUDE_DIR` if set,
/// else pkg-config. Panics with what to install when neither finds a static libsodium.
fn libsodium() -> (PathBuf, PathBuf) {
    println!("cargo:rerun-if-env-changed=SODIUM_LIB_DIR");
    println!("cargo:rerun-if-env-changed=SODIUM_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let lib = std::env::var_os("SODIUM_LIB_DIR")
        .map(PathBuf::from)
        .or_else(|| pkg_config_var("libdir"));
    let include = std::env::var_os("SODIUM_INCLUDE_DIR")
        .map(PathBuf::from)
        .or_else(|| pkg_config_var("includedir"));
    match (lib, include) {
        (Some(lib), Some(include))
            if lib.join("libsodium.a").is_file() && include.join("sodium.h").is_file() =>
        {
            (lib, include)
        }
        // (Edition 2015: a lone literal is not a format string, so format first.)
        (lib, include) => panic!(
            "{}",
            format!(
                "zmq-sys (vendored by depthpilot): libzmq needs libsodium for CURVE, and no \
             static libsodium was found (lib dir {lib:?} needs libsodium.a, include dir \
             {include:?} needs sodium.h). Install it with `scripts/setup` (Debian package \
             libsodium-dev), or set SODIUM_LIB_DIR and SODIUM_INCLUDE_DIR.",
                lib = lib,
                include = include
            )
        ),
    }
}

pub fn configure() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");

    let (lib, include) = libsodium();
    // As a path dependency (not a registry one) this crate's build-script warnings are shown
    // on every cargo build of the workspace: silence libzmq's C++ compiler warnings (upstream's
    // own, unchanged code) so they do not bury ours. `cc` reads CXXFLAGS.
    let flags = std::env::var("CXXFLAGS").unwrap_or_default();
    std::env::set_var("CXXFLAGS", format!("{} -w", flags).trim());
    // zeromq-src prints this search path with `{:?}` (quoted); say it plainly as well.
    println!("cargo:rustc-link-search=native={}", lib.display());
    zeromq_src::Build::new()
        .with_libsodium(Some(zeromq_src::LibLocation::new(lib, include)))
        .build();
}

fn main() {
    configure()
}
