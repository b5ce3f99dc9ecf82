//! The app toolkit every ssm binary shares: the global allocator, the machine flags, the
//! training flags, mixer selection from the registry, per-app flag defaults, the metrics
//! writer and the single-line error exit.

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser};
use ssm_core::backbone::{BackboneConfig, LayerTemplate, parse_layout};
use ssm_core::device::{device_by_name, open_device};
use ssm_core::layers::MoeConfig;
use ssm_core::mixers::{DEFAULT_MIXER, MIXER_NAMES, MixerConfig};
use ssm_core::train::{TrainConfig, write_atomic};
use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One allocator for every binary (they all link this library): mimalloc, with an optional
/// ceiling on the size of one allocation (see [`limit_allocation_size`]).
#[global_allocator]
static GLOBAL: Allocator = Allocator;

static ALLOCATION_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Makes every later allocation larger than `bytes` fail (the process then aborts with
/// "memory allocation of N bytes failed", or a `try_reserve` returns an error). `ssm-fuzz`
/// uses it so that an input claiming 2^40 elements is caught instead of swapping the machine.
pub fn limit_allocation_size(bytes: usize) {
    ALLOCATION_LIMIT.store(bytes, Ordering::Relaxed);
}

struct Allocator;

// SAFETY: every call is forwarded to mimalloc unchanged, or answered with null (an allocation
// failure, which callers must handle) when the size is over the limit.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

unsafe extern "C" {
    // mimalloc's own option setter (the `mimalloc` crate links mimalloc v2)
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_arena_eager_commit` in mimalloc v2's `mi_option_e` (include/mimalloc.h).
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// Commits mimalloc's arenas on demand instead of eagerly, unless `MIMALLOC_ARENA_EAGER_COMMIT`
/// is set (the environment wins). Not for calling: [`lazy_arenas!`] runs it before `main`.
///
/// Eagerly committed arenas are backed by transparent huge pages: every fresh large
/// intermediate of a prefill is faulted in and zero-filled 2 MiB at a time, and a decoder's
/// footprint grows by the unused rest of each huge page. The weights a decoder streams ask for
/// huge pages themselves (`ssm_core::kernels::gemv_cpu::advise_huge_pages`). Training binaries
/// keep the default: there the eager huge pages measured faster (S4ND's `ssm-vision bench`).
pub extern "C" fn commit_arenas_lazily() {
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: mi_option_set takes no pointers and may be called at any time.
        unsafe { mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
    }
}

/// In a binary that decodes language models: [`commit_arenas_lazily`] as an ELF constructor,
/// which runs before `main` (mimalloc reserves its first arena while the runtime starts).
#[macro_export]
macro_rules! lazy_arenas {
    () => {
        #[cfg(target_os = "linux")]
        #[used]
        #[unsafe(link_section = ".init_array")]
        static COMMIT_ARENAS_LAZILY: extern "C" fn() = $crate::commit_arenas_lazily;
    };
}

/// A size flag's value parser: a whole number of at least 1 (a zero batch, width or length is a
/// usage error, not a panic deep inside a kernel).
pub fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A probability flag's value parser (dropout): a number in [0, 1).
pub fn probability(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be at least 0 and below 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--device` and `--threads`, common to the domain apps.
#[derive(Args, Debug, Clone)]
pub struct Machine {
    /// Device: cpu, cuda[:N], vulkan[:N] or vulkan:cpu (the GPU ones need the matching cargo
    /// feature; the device is checked before any work).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Machine {
    /// Sets up the thread pool and returns the chosen device.
    pub fn device(&self) -> Result<Device> {
        if let Some(t) = self.threads {
            rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("thread pool")?;
        }
        Ok(open_device(&self.device)?)
    }
}

/// The training flags every training command takes. Each app sets its own defaults with
/// [`parse_with_defaults`] (they show in `--help`).
#[derive(Args, Debug, Clone)]
pub struct TrainFlags {
    /// Optimiser steps (where the app has no default, it derives them from --epochs).
    #[arg(long, value_parser = positive)]
    pub steps: Option<usize>,
    /// Evaluations (and checkpoints) per run.
    #[arg(long, default_value_t = 5, value_parser = positive)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = positive)]
    pub batch: usize,
    /// Peak learning rate (AdamW, linear warm-up then cosine decay).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Training-time budget in seconds: the step count is fitted to it.
    #[arg(long)]
    pub time_budget: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Output directory (checkpoints, metrics.json, plots).
    #[arg(long, default_value = "runs/out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub machine: Machine,
    /// Data-parallel training on these devices (comma-separated, e.g. cuda:0,cuda:1): a replica
    /// and a micro-batch of --batch per device each step, gradients averaged on the first.
    /// One machine only.
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    pub devices: Vec<String>,
}

impl TrainFlags {
    /// The device (the first of `--devices`), once `--out` is known to be creatable (see
    /// [`check_out`]) and every device of `--devices` has answered.
    pub fn device(&self) -> Result<Device> {
        check_out(&self.out)?;
        let device = self.machine.device()?;
        let mut all = self.devices.iter().map(|n| open_device(n)).collect::<Result<Vec<_>, _>>()?;
        Ok(if all.is_empty() { device } else { all.swap_remove(0) })
    }

    /// The step count: `--steps`, else `derived()`.
    pub fn steps_or(&self, derived: impl FnOnce() -> usize) -> usize {
        self.steps.unwrap_or_else(derived)
    }

    /// The runner's settings for `steps` steps written to `out` (warm-up: 5 % of the steps, at
    /// most 200).
    pub fn config_in(&self, steps: usize, out: &Path) -> TrainConfig {
        TrainConfig {
            steps,
            epochs: self.epochs,
            lr: self.lr,
            warmup_steps: (steps / 20).clamp(1, 200),
            weight_decay: self.weight_decay,
            seed: self.seed,
            out: Some(out.to_path_buf()),
            resume: self.resume,
            time_budget: self.time_budget,
            // Parsed and opened by `device()`, which every training command calls first.
            replicas: self.devices.iter().skip(1).filter_map(|n| device_by_name(n).ok()).collect(),
            ..TrainConfig::default()
        }
    }

    /// [`TrainFlags::config_in`] `--out`.
    pub fn config(&self, steps: usize) -> TrainConfig {
        self.config_in(steps, &self.out)
    }
}

/// A `--mixer` value parser over the registry's names.
pub fn mixer_names() -> PossibleValuesParser {
    PossibleValuesParser::new(MIXER_NAMES)
}

/// `--mixer NAME` and `--mixer-opt key=value` (repeatable).
#[derive(Args, Debug, Clone)]
pub struct MixerArgs {
    /// Sequence mixer (any registered family).
    #[arg(long, default_value = DEFAULT_MIXER, value_parser = mixer_names())]
    pub mixer: String,
    /// A mixer setting, `key=value` (e.g. d_state=32); repeatable. Unknown keys list the known.
    #[arg(long = "mixer-opt", value_name = "KEY=VALUE")]
    pub mixer_opt: Vec<String>,
}

impl MixerArgs {
    /// The chosen mixer's configuration at width `d_model`, with the options applied.
    pub fn config(&self, d_model: usize) -> Result<MixerConfig> {
        Ok(MixerConfig::with_options(&self.mixer, d_model, &self.mixer_opt)?)
    }
}

/// The stack of layers: one family (`--mixer`) or a hybrid layout (`--layout`), with the
/// channel mixers' sizes.
#[derive(Args, Debug, Clone)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub mixer: MixerArgs,
    /// A hybrid stack instead of one family: items `MIXER[+mlp|+moe|+none][*N]`, comma-separated,
    /// cycled to --layers (e.g. "mamba*3,attention"; see ARCHITECTURE.md).
    #[arg(long)]
    pub layout: Option<String>,
    /// Hidden width of the MLP after each mixer (default: 4·width, and only in blocks that
    /// have one: attention's, or `+mlp` items); given alone, every layer gets an MLP.
    #[arg(long)]
    pub mlp: Option<usize>,
    /// Experts of `+moe` layers.
    #[arg(long, default_value_t = 4, value_parser = positive)]
    pub moe_experts: usize,
    /// Experts each token is routed to.
    #[arg(long, default_value_t = 2, value_parser = positive)]
    pub moe_top_k: usize,
}

impl LayoutArgs {
    /// The backbone of `depth` layers at width `d_model`.
    pub fn backbone(&self, d_model: usize, depth: usize) -> Result<BackboneConfig> {
        let mut t = LayerTemplate::new(d_model);
        t.mixer_options = self.mixer.mixer_opt.clone();
        t.mlp_hidden = self.mlp.unwrap_or(4 * d_model);
        t.moe = MoeConfig::new(self.moe_experts, self.moe_top_k, 2 * d_model);
        let layout = match (&self.layout, self.mlp) {
            (Some(l), _) => l.clone(),
            (None, Some(_)) => format!("{}+mlp", self.mixer.mixer),
            (None, None) => self.mixer.mixer.clone(),
        };
        if self.moe_top_k == 0 || self.moe_top_k > self.moe_experts {
            anyhow::bail!("--moe-top-k {} must be between 1 and --moe-experts {}", self.moe_top_k, self.moe_experts);
        }
        Ok(parse_layout(&layout, Some(depth), &t)?)
    }
}

/// Parses the command line of `C` after setting per-app defaults: `(subcommand, [(arg, value)])`
/// with `""` for the top-level command.
pub fn parse_with_defaults<C: Parser>(defaults: &[(&str, &[(&'static str, &'static str)])]) -> C {
    parse_command(command_with_defaults::<C>(defaults)).0
}

/// `C`'s clap command with per-app defaults set (see [`parse_with_defaults`]), for an app that
/// changes more before parsing with [`parse_command`].
pub fn command_with_defaults<C: Parser>(defaults: &[(&str, &[(&'static str, &'static str)])]) -> clap::Command {
    let mut cmd = C::command();
    for (sub, args) in defaults {
        let apply = |mut c: clap::Command| {
            for (id, value) in args.iter() {
                c = c.mut_arg(*id, |a| a.default_value(*value));
            }
            c
        };
        cmd = if sub.is_empty() { apply(cmd) } else { cmd.mut_subcommand(*sub, apply) };
    }
    cmd
}

/// Parses the command line with `cmd`: the arguments and clap's matches (which say where each
/// value came from); a usage error exits as one line.
pub fn parse_command<C: Parser>(cmd: clap::Command) -> (C, clap::ArgMatches) {
    let parsed = cmd.try_get_matches().and_then(|m| C::from_arg_matches(&m).map(|c| (c, m)));
    parsed.unwrap_or_else(|e| usage_error(e))
}

/// Help and version as clap prints them; any other command-line error as one `error:` line
/// (exit status 2).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind::{DisplayHelp, DisplayHelpOnMissingArgumentOrSubcommand, DisplayVersion};
    if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
        e.exit()
    }
    let text = e.render().to_string();
    let skip = |l: &&str| l.is_empty() || l.starts_with("Usage:") || l.starts_with("For more information");
    let line: Vec<&str> = text.lines().map(str::trim).filter(|l| !skip(l)).collect();
    eprintln!("{}", line.join(" "));
    std::process::exit(2)
}

/// `--model DIR [--seed K]` with the machine flags: a trained run directory that holds one
/// folder per seed (`seed-K/`, see [`seed_dir`]).
#[derive(Args, Debug)]
pub struct RunDirArgs {
    /// A `train --out` directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Which seed's model (default: the first trained).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub machine: Machine,
}

/// The folder of seed `seed`'s run under a multi-seed run directory `out`.
pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (m, var.sqrt())
}

/// Merges `fields` into `out/metrics.json` (creating it), atomically.
pub fn update_metrics(out: &Path, fields: serde_json::Value) -> Result<()> {
    let path = out.join("metrics.json");
    let mut m: serde_json::Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}: not JSON", path.display()))?,
        Err(_) => serde_json::json!({}),
    };
    if let (Some(m), serde_json::Value::Object(f)) = (m.as_object_mut(), fields) {
        m.extend(f);
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&m)?)?;
    Ok(())
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)?;
    Ok(())
}

/// A `/proc/self/status` field in KiB (`"VmRSS:"`, `"VmHWM:"` …); `None` off Linux.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Median wall-clock seconds of `reps` calls of `f`, after one untimed warm-up call.
pub fn median_secs(reps: usize, f: impl FnMut()) -> f64 {
    median_secs_warm(reps, true, f)
}

/// Median wall-clock seconds of `reps` calls of `f`, after an untimed warm-up call if `warm`.
pub fn median_secs_warm(reps: usize, warm: bool, mut f: impl FnMut()) -> f64 {
    if warm {
        f();
    }
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let s = std::time::Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Fails when the output folder `out` could not be created or written (a file stands on its
/// path, or the nearest existing folder is read-only), before any work is done; creates nothing.
pub fn check_out(out: &Path) -> Result<()> {
    let Some((at, meta)) = out.ancestors().find_map(|a| std::fs::metadata(a).ok().map(|m| (a, m))) else {
        return Ok(()); // a relative path in the working folder
    };
    if !meta.is_dir() {
        anyhow::bail!("{}: cannot create the output folder: {} is a file", out.display(), at.display());
    }
    if meta.permissions().readonly() {
        anyhow::bail!("{}: cannot create the output folder: {} is read-only", out.display(), at.display());
    }
    Ok(())
}

/// Ends a binary on error: one `error:` line (the whole context chain, on one line even when a
/// library's message spans several) and exit status 1.
pub fn exit_on_error(r: Result<()>) {
    if let Err(e) = r {
        let msg = format!("{e:#}");
        eprintln!("error: {}", msg.split_whitespace().collect::<Vec<_>>().join(" "));
        std::process::exit(1);
    }
}
