//! The error of every file reader in the workspace: the file, and what is wrong with it.
//! Displayed as one line, `PATH: problem`.

use std::path::{Path, PathBuf};

/// A problem with one file (missing, unreadable, corrupt, of the wrong shape).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct FileError {
    pub path: PathBuf,
    pub msg: String,
}

impl FileError {
    pub fn new(path: &Path, msg: impl Into<String>) -> Self {
        FileError { path: path.to_path_buf(), msg: msg.into() }
    }
}

/// A setting or combination of settings that cannot work (one line saying which and why).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// Runs `f`, turning a panic into `Err(its message)` without printing it. For third-party code
/// (or model construction from an outside description) that asserts instead of returning an
/// error; the process-wide panic hook is swapped for the call, so use it from one thread.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.map_err(|p| panic_text(p.as_ref()))
}

/// The message a panic was raised with (empty when its payload is not text).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
