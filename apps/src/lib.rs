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
