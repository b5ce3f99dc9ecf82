//! Durable runs: a training process killed with SIGKILL mid-run, then `--resume`d, ends with the
//! same per-step losses as an uninterrupted run of the same seed — the checkpoint it resumes
//! from is complete (model, optimizer and step written together), and the data order depends
//! only on the step. A run whose loss or gradient turns NaN stops there, naming the step, with
//! its last checkpoint intact, and `--resume` continues from it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEPS: usize = 600;

fn train(text: &Path, out: &Path, resume: bool) -> Command {
    train_for(text, out, resume, STEPS, 30)
}

fn train_for(text: &Path, out: &Path, resume: bool, steps: usize, epochs: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssm-language"));
    c.args(["train", "--text"]).arg(text);
    c.args(["--d-model", "16", "--layers", "1", "--context", "16", "--batch", "4", "--threads", "1"]);
    c.args(["--steps", &steps.to_string(), "--epochs", &epochs.to_string()]);
    c.args(["--eval-windows", "4", "--sample-chars", "0", "--out"]);
    c.arg(out).stdout(Stdio::null()).stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

/// (step, loss) of every step, from the final checkpoint's run state.
fn losses(out: &Path) -> Vec<(usize, f64)> {
    let text = std::fs::read_to_string(out.join("checkpoint/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["losses"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap())).collect()
}

/// The step of the checkpoint in `out`, if one is complete.
fn checkpoint_step(out: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(out.join("checkpoint/state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64().map(|s| s as usize)
}

#[test]
fn killed_run_resumes_to_the_uninterrupted_losses() {
    let dir = common::tmp("ssm-durable", "kill");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    let body: String = (0..600).map(|i| format!("line {} says {} to {}\n", i % 17, i % 5, i % 11)).collect();
    std::fs::write(&text, body).unwrap();

    let (a, b) = (dir.join("uninterrupted"), dir.join("killed"));
    let status = train(&text, &a, false).status().unwrap();
    assert!(status.success());

    // kill -9 once a checkpoint past the first epoch is on disk, mid-run
    let mut child = train(&text, &b, false).spawn().unwrap();
    let start = Instant::now();
    let killed_at = loop {
        if let Some(step) = checkpoint_step(&b).filter(|&s| s >= 2 * STEPS / 30) {
            child.kill().unwrap(); // SIGKILL on Unix
            break step;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed, not finished");
    let left = checkpoint_step(&b).expect("a complete checkpoint survives the kill");
    assert!(left >= killed_at && left < STEPS, "checkpoint at step {left} after the kill at {killed_at}");

    let out = train(&text, &b, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("resuming from step {left}")));
    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), STEPS);
    assert_eq!(la.iter().map(|p| p.0).collect::<Vec<_>>(), lb.iter().map(|p| p.0).collect::<Vec<_>>());
    let worst = la.iter().zip(&lb).map(|(x, y)| (x.1 - y.1).abs()).fold(0f64, f64::max);
    assert!(worst <= 1e-6, "resumed losses differ from the uninterrupted run's by up to {worst:e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diverging_run_stops_at_the_step_and_resumes_from_its_last_checkpoint() {
    let dir = common::tmp("ssm-durable", "nan");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    std::fs::write(&text, "the quick brown fox jumps over the lazy dog. ".repeat(200)).unwrap();
    let out = dir.join("run");
    let run = |lr: &str, resume: bool| {
        // a checkpoint every 10 steps
        train_for(&text, &out, resume, 400, 40).args(["--lr", lr]).output().unwrap()
    };
    // learning rate 50: the loss turns NaN a few steps after the first checkpoint
    let o = run("50", false);
    assert_eq!(o.status.code(), Some(1));
    let all = String::from_utf8_lossy(&o.stderr);
    let err = all.lines().last().unwrap(); // after the progress lines: one error line
    assert!(err.starts_with("error: training diverged at step ") && !all.contains("panicked"), "{all}");
    let step: usize = err.split("at step ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    let kept = checkpoint_step(&out).expect("the last good checkpoint is kept");
    assert!(kept < step && err.contains(&format!("step {kept}) is kept")), "{err}");
    assert!(losses(&out).iter().all(|(_, l)| l.is_finite()));

    let o = run("0.01", true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("resuming from step {kept}")));
    let l = losses(&out);
    assert_eq!(l.len(), 400);
    assert!(l.iter().all(|(_, l)| l.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}
