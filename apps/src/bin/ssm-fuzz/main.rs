//! `ssm-fuzz`: a mutation fuzzer for every reader of outside bytes, on stable Rust.
//!
//! ```text
//! run:    for each target, a worker process loops for --seconds:
//!             pick a kept input, mutate it (mutate.rs), write it where the reader looks,
//!             call the reader as the binaries do (targets.rs) under catch_unwind
//!             a panic → crashes/panic-<hash>; an input whose outcome (Ok, or its error
//!             message with numbers masked) is new joins the kept inputs
//!         a watchdog thread ends the worker on a hang (--hang-seconds) or a resident size over
//!         --max-rss-mib; an allocation over --max-alloc-mib aborts it; the supervisor keeps
//!         the input that killed it and starts a new worker until the time is spent
//! replay: every kept input (apps/fuzz/<target>/: seeds and regressions) once — the test
//! ```
//! Error messages that do not name the input's file are counted as findings too.

mod bundle;
mod mutate;
mod seeds;
mod targets;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use mutate::Mutator;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use targets::{Shape, TARGETS, Target};

#[derive(Parser)]
#[command(
    name = "ssm-fuzz",
    about = "Fuzzes every reader of outside bytes (idx, images, CSV, .ts, WAV, checkpoints, …)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The targets.
    List,
    /// Writes the seed corpora (`<corpus>/<target>/seed-N`), made from code.
    Seeds {
        #[arg(long, default_value = "apps/fuzz")]
        corpus: PathBuf,
    },
    /// Fuzzes each target for --seconds; exits 1 if anything crashed, hung or ran out of memory.
    Run(RunArgs),
    /// Runs every kept input once (seeds and regression inputs); exits 1 on any crash.
    Replay {
        #[arg(long, default_value = "apps/fuzz")]
        corpus: PathBuf,
        /// Targets (default: all).
        targets: Vec<String>,
    },
    /// Packs a folder into one input (to keep a regression input for a folder target).
    Pack { dir: PathBuf, out: PathBuf },
    #[command(hide = true)]
    Worker {
        target: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// Targets (default: all).
    #[arg(num_args = 0..)]
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 600.0)]
    seconds: f64,
    /// Where the seeds and regression inputs are.
    #[arg(long, default_value = "apps/fuzz")]
    corpus: PathBuf,
    /// Where crashes, the work files and summary.json go.
    #[arg(long, default_value = "runs/fuzz")]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One input running longer than this is a hang.
    #[arg(long, default_value_t = 10.0)]
    hang_seconds: f64,
    /// Resident memory above this is a failure.
    #[arg(long, default_value_t = 2048)]
    max_rss_mib: u64,
    /// A single allocation above this aborts (and is a failure).
    #[arg(long, default_value_t = 1024, value_parser = ssm_apps::positive)]
    max_alloc_mib: usize,
    /// Largest input the mutator makes, in bytes.
    #[arg(long, default_value_t = 1 << 16, value_parser = ssm_apps::positive)]
    max_len: usize,
}

fn main() {
    ssm_apps::exit_on_error(run(ssm_apps::parse_with_defaults(&[])));
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::List => TARGETS.iter().for_each(|t| println!("{:14} {}", t.name, t.about)),
        Cmd::Seeds { corpus } => seeds::write_all(&corpus)?,
        Cmd::Run(a) => supervise_all(&a)?,
        Cmd::Replay { corpus, targets } => replay(&corpus, &chosen(&targets)?)?,
        Cmd::Pack { dir, out } => {
            std::fs::write(&out, bundle::pack(&dir)?).with_context(|| format!("{}", out.display()))?
        }
        Cmd::Worker { target, run } => Worker::new(&target, &run)?.fuzz(&run)?,
    }
    Ok(())
}

fn chosen(names: &[String]) -> Result<Vec<&'static Target>> {
    if names.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            targets::find(n).with_context(|| {
                format!(
                    "unknown target '{n}' (known: {})",
                    TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// Every kept input of a target: its seeds and regression inputs.
fn kept_inputs(corpus: &Path, t: &Target) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let dir = corpus.join(t.name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: no inputs for target {} (run `ssm-fuzz seeds`)", dir.display(), t.name))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| Ok((p.clone(), std::fs::read(&p)?))).collect()
}

// ---------------------------------------------------------------------------------------------
// The worker: one process fuzzing one target.

/// What one input did.
enum Outcome {
    Fine(String),
    Panic(String),
}

struct Worker {
    target: &'static Target,
    /// Where the reader looks: the file or folder the input is written to.
    work: PathBuf,
    /// The input being run (kept for the supervisor if the process dies on it).
    current: PathBuf,
    crashes: PathBuf,
    started_ms: Arc<AtomicU64>,
    epoch: Instant,
    panic_message: Arc<Mutex<String>>,
    /// The input being run, for the watchdog (the file may be half-written when it looks).
    input: Arc<Mutex<Vec<u8>>>,
}

impl Worker {
    fn new(name: &str, a: &RunArgs) -> Result<Self> {
        let target = targets::find(name).with_context(|| format!("unknown target '{name}'"))?;
        ssm_apps::limit_allocation_size(a.max_alloc_mib << 20);
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
        let base = a.out.join(target.name);
        let scratch = std::env::temp_dir().join(format!("ssm-fuzz-{}-{}", target.name, std::process::id()));
        let work = match target.shape {
            Shape::File(f) => scratch.join(f),
            Shape::Folder => scratch.join("input"),
        };
        std::fs::create_dir_all(&scratch)?;
        std::fs::create_dir_all(base.join("crashes"))?;
        let panic_message = Arc::new(Mutex::new(String::new()));
        let pm = panic_message.clone();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let msg = ssm_core::error::panic_text(info.payload());
            *pm.lock().unwrap_or_else(|e| e.into_inner()) = format!("{msg}{at}");
        }));
        let w = Self {
            target,
            work,
            current: base.join("current"),
            crashes: base.join("crashes"),
            started_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            panic_message,
            input: Arc::new(Mutex::new(Vec::new())),
        };
        w.watchdog(a);
        Ok(w)
    }

    /// Ends the process on a hang or when memory runs over, keeping the input.
    fn watchdog(&self, a: &RunArgs) {
        let (started, epoch, input, crashes) =
            (self.started_ms.clone(), self.epoch, self.input.clone(), self.crashes.clone());
        let (hang_ms, max_rss) = ((a.hang_seconds * 1000.0) as u64, a.max_rss_mib << 20);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let s = started.load(Ordering::Relaxed);
                let now = epoch.elapsed().as_millis() as u64;
                let (kind, code) = if s > 0 && now - s > hang_ms {
                    ("hang", 3)
                } else if resident_bytes() > max_rss {
                    ("memory", 4)
                } else {
                    continue;
                };
                let input = input.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let file = keep(&crashes, kind, &input, &format!("{kind} (resident {} MiB)", resident_bytes() >> 20));
                eprintln!("{kind}: input kept as {}", file.display());
                std::process::exit(code);
            }
        });
    }

    /// Writes `input` where the reader looks and runs the reader on it.
    fn exec(&self, input: &[u8]) -> Outcome {
        let _ = std::fs::write(&self.current, input);
        *self.input.lock().unwrap_or_else(|e| e.into_inner()) = input.to_vec();
        let scratch = self.work.parent().unwrap();
        let _ = std::fs::remove_dir_all(scratch);
        let _ = std::fs::create_dir_all(scratch);
        let written = match self.target.shape {
            Shape::File(_) => std::fs::write(&self.work, input),
            Shape::Folder => std::fs::create_dir_all(&self.work).and_then(|_| bundle::unpack(input, &self.work)),
        };
        if let Err(e) = written {
            return Outcome::Fine(format!("(input not written: {e})"));
        }
        self.started_ms.store(self.epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let r = std::panic::catch_unwind(|| (self.target.run)(&self.work));
        self.started_ms.store(0, Ordering::Relaxed);
        match r {
            Ok(Ok(())) => Outcome::Fine("ok".into()),
            Ok(Err(e)) => Outcome::Fine(format!("{e:#}")),
            Err(_) => Outcome::Panic(self.panic_message.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }

    /// The outcome's class: the message with the input's path and every number masked.
    fn class(&self, msg: &str) -> (String, bool) {
        let root = self.work.parent().unwrap().to_string_lossy().to_string();
        let named = msg == "ok" || msg.starts_with("(input") || msg.contains(&root);
        let mut out = String::new();
        for c in msg.replace(&root, "<input>").chars().take(160) {
            if c.is_ascii_digit() {
                if !out.ends_with('#') {
                    out.push('#');
                }
            } else {
                out.push(c);
            }
        }
        (out, named)
    }

    fn fuzz(&self, a: &RunArgs) -> Result<()> {
        let mut pool: Vec<Vec<u8>> = kept_inputs(&a.corpus, self.target)?.into_iter().map(|(_, b)| b).collect();
        if pool.is_empty() {
            bail!("no seeds for {} in {}", self.target.name, a.corpus.display());
        }
        let mut rng = Mutator::new(a.seed ^ std::process::id() as u64);
        let mut seen = HashSet::new();
        let (mut execs, mut panics, mut unnamed) = (0u64, 0u64, Vec::<String>::new());
        let (start, mut last_report) = (Instant::now(), Instant::now());
        let mut queue: Vec<Vec<u8>> = pool.clone();
        while start.elapsed().as_secs_f64() < a.seconds {
            let input = queue.pop().unwrap_or_else(|| {
                let (i, j) = (rng.below(pool.len()), rng.below(pool.len()));
                let max = a.max_len.max(2 * pool[i].len());
                rng.mutate(&pool[i], &pool[j], max)
            });
            execs += 1;
            match self.exec(&input) {
                Outcome::Panic(msg) => {
                    panics += 1;
                    if seen.insert(format!("panic {msg}")) {
                        let file = keep(&self.crashes, "panic", &input, &msg);
                        eprintln!("panic: {msg}: input kept as {}", file.display());
                    }
                }
                Outcome::Fine(msg) => {
                    let (class, named) = self.class(&msg);
                    if !named && unnamed.len() < 20 && !unnamed.contains(&class) {
                        unnamed.push(class.clone());
                    }
                    if seen.insert(class) && pool.len() < 4096 {
                        pool.push(input);
                    }
                }
            }
            if last_report.elapsed() > Duration::from_secs(1) {
                last_report = Instant::now();
                report(execs, pool.len(), seen.len(), panics, &unnamed);
            }
        }
        report(execs, pool.len(), seen.len(), panics, &unnamed);
        Ok(())
    }
}

fn report(execs: u64, pool: usize, outcomes: usize, panics: u64, unnamed: &[String]) {
    let r = serde_json::json!({"execs": execs, "pool": pool, "outcomes": outcomes, "panics": panics,
        "unnamed": unnamed, "rss_mib": resident_bytes() >> 20});
    println!("{r}");
}

/// Keeps a failing input as `<dir>/<kind>-<hash>` with its message beside it (`.txt`).
fn keep(dir: &Path, kind: &str, input: &[u8], msg: &str) -> PathBuf {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let file = dir.join(format!("{kind}-{hash:016x}"));
    let _ = std::fs::write(&file, input);
    let _ = std::fs::write(file.with_extension("txt"), msg);
    file
}

fn resident_bytes() -> u64 {
    ssm_apps::proc_status_kib("VmRSS:").unwrap_or(0) * 1024
}

// ---------------------------------------------------------------------------------------------
// The supervisor.

#[derive(Default)]
struct Tally {
    execs: u64,
    outcomes: usize,
    panics: u64,
    deaths: Vec<String>,
    unnamed: Vec<String>,
}

fn supervise_all(a: &RunArgs) -> Result<()> {
    let mut failed = Vec::new();
    for t in chosen(&a.targets)? {
        let tally = supervise(t, a)?;
        let crashes = tally.panics as usize + tally.deaths.len();
        println!(
            "{}: {:.0} s, {} inputs, {} distinct outcomes, {} panics, {} hangs / aborts / over memory, {} error classes not naming the file",
            t.name,
            a.seconds,
            tally.execs,
            tally.outcomes,
            tally.panics,
            tally.deaths.len(),
            tally.unnamed.len()
        );
        for u in &tally.unnamed {
            println!("    unnamed: {u}");
        }
        let summary = serde_json::json!({
            "target": t.name, "seconds": a.seconds, "execs": tally.execs, "outcomes": tally.outcomes,
            "panics": tally.panics, "deaths": tally.deaths, "unnamed_errors": tally.unnamed,
        });
        let path = a.out.join(t.name).join("summary.json");
        ssm_apps::write_json(&path, &summary)?;
        if crashes > 0 {
            failed.push(t.name);
        }
    }
    if !failed.is_empty() {
        bail!("crashes in {} (inputs kept under {}/<target>/crashes)", failed.join(", "), a.out.display());
    }
    Ok(())
}

/// Runs workers for `t` until `a.seconds` are spent, starting a new one after each death.
fn supervise(t: &Target, a: &RunArgs) -> Result<Tally> {
    let start = Instant::now();
    let mut tally = Tally::default();
    let exe = std::env::current_exe()?;
    while start.elapsed().as_secs_f64() + 1.0 < a.seconds {
        let left = a.seconds - start.elapsed().as_secs_f64();
        let mut child = Command::new(&exe)
            .args(["worker", t.name, "--seconds", &left.to_string()])
            .args(["--corpus", &a.corpus.to_string_lossy(), "--out", &a.out.to_string_lossy()])
            .args(["--seed", &(a.seed + tally.deaths.len() as u64).to_string()])
            .args(["--hang-seconds", &a.hang_seconds.to_string(), "--max-rss-mib", &a.max_rss_mib.to_string()])
            .args(["--max-alloc-mib", &a.max_alloc_mib.to_string(), "--max-len", &a.max_len.to_string()])
            .env("POLARS_MAX_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a worker")?;
        let stderr = child.stderr.take().unwrap();
        let err_tail = std::thread::spawn(move || {
            let lines: Vec<String> = BufReader::new(stderr).lines().map_while(|l| l.ok()).collect();
            lines.iter().rev().take(5).rev().cloned().collect::<Vec<_>>().join(" | ")
        });
        let mut last = serde_json::Value::Null;
        for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(|l| l.ok()) {
            last = serde_json::from_str(&line).unwrap_or(last);
        }
        let status = child.wait()?;
        let tail = err_tail.join().unwrap_or_default();
        tally.execs += last["execs"].as_u64().unwrap_or(0);
        tally.panics += last["panics"].as_u64().unwrap_or(0);
        tally.outcomes = tally.outcomes.max(last["outcomes"].as_u64().unwrap_or(0) as usize);
        for u in last["unnamed"].as_array().into_iter().flatten().filter_map(|u| u.as_str()) {
            if !tally.unnamed.iter().any(|x| x == u) {
                tally.unnamed.push(u.to_string());
            }
        }
        if status.success() {
            break;
        }
        let kept = match status.code() {
            Some(3 | 4) => tail.clone(), // the watchdog kept the input and said where
            _ => {
                let input = std::fs::read(a.out.join(t.name).join("current")).unwrap_or_default();
                let file = keep(&a.out.join(t.name).join("crashes"), "abort", &input, &tail);
                format!("{status}: {tail} (input kept as {})", file.display())
            }
        };
        eprintln!("{}: worker died: {kept}", t.name);
        tally.deaths.push(kept);
        if tally.deaths.len() > 50 {
            break;
        }
    }
    Ok(tally)
}

// ---------------------------------------------------------------------------------------------

fn replay(corpus: &Path, targets: &[&'static Target]) -> Result<()> {
    let a = RunArgs::parse_from(["run", "--corpus", &corpus.to_string_lossy()]);
    let mut failures = Vec::new();
    for t in targets {
        let out = std::env::temp_dir().join(format!("ssm-fuzz-replay-{}", std::process::id()));
        let w = Worker::new(t.name, &RunArgs { out: out.clone(), ..a.clone() })?;
        let inputs = kept_inputs(corpus, t)?;
        for (path, bytes) in &inputs {
            if let Outcome::Panic(msg) = w.exec(bytes) {
                failures.push(format!("{}: panic: {msg}", path.display()));
            }
        }
        println!("{}: {} inputs replayed", t.name, inputs.len());
        let _ = std::fs::remove_dir_all(&out);
    }
    if !failures.is_empty() {
        bail!("{} inputs crash a reader:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}
