//! `ssm-fuzz`: every kept input (the seeds and each crash found so far, fixed) replays without a
//! panic, and a short run of one target works end to end.

mod common;

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssm-fuzz"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

#[test]
fn every_kept_input_replays_without_a_crash() {
    let out = common::ok(&bin().args(["replay", "--corpus", "apps/fuzz"]).output().unwrap());
    assert_eq!(out.lines().filter(|l| l.contains("inputs replayed")).count(), 11, "{out}");
}

#[test]
fn a_short_run_tries_inputs_and_writes_its_summary() {
    let dir = common::tmp("ssm-fuzz-cli", "run");
    let o = bin().args(["run", "listops", "--seconds", "2", "--out"]).arg(&dir).output().unwrap();
    let stdout = common::ok(&o);
    assert!(stdout.contains("0 panics"), "{stdout}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("listops/summary.json")).unwrap()).unwrap();
    assert!(s["execs"].as_u64().unwrap() > 100, "{s}");
    std::fs::remove_dir_all(&dir).unwrap();
}
