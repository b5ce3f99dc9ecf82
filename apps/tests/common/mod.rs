//! Helpers shared by the CLI tests.
#![allow(dead_code)]

/// A fresh temporary directory path (removed if it exists, not created).
pub fn tmp(prefix: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The stdout of a successful run (panics with its stderr otherwise).
pub fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Exit status 1 and exactly one `error: …` line on stderr, containing `needle`.
pub fn one_error_line(o: &std::process::Output, needle: &str) {
    error_line_with_status(o, 1, needle)
}

/// A command-line (usage) error: exit status 2 and one `error: …` line containing `needle`.
pub fn usage_error_line(o: &std::process::Output, needle: &str) {
    error_line_with_status(o, 2, needle)
}

fn error_line_with_status(o: &std::process::Output, status: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(status), "exit status {:?}", o.status);
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{}", lines[0]);
}
