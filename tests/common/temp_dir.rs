//! Shared by the `e2e` and `realtime` test harnesses (each includes it with `#[path]`).

use std::path::PathBuf;

/// A fresh temporary directory for one test, removed with everything in it when the test ends
/// (dropped), pass or fail, so that test runs do not fill the disk.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temporary directory for one test (see [`TempDir`]).
/// `tag` names the harness and the test, e.g. `test-matrix`.
pub fn temp_dir_tagged(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("depthpilot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}
