//! Pieces the ssm binaries share.

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use ssm_core::device::device_by_name;

/// `--device` and `--threads`, common to the domain apps.
#[derive(Args, Debug, Clone)]
pub struct Machine {
    /// Device: cpu, cuda or vulkan (the GPU ones need the matching cargo feature).
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
        device_by_name(&self.device).map_err(anyhow::Error::msg)
    }
}

/// Median wall-clock seconds of `reps` calls of `f`, after one untimed warm-up call.
pub fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
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

/// Ends a binary on error: one `error:` line (the whole context chain) and exit status 1.
pub fn exit_on_error(r: Result<()>) {
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
