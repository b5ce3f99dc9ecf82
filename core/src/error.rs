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
