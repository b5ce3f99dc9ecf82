//! Explicit device selection. `Device::default()` silently picks CUDA whenever that feature is
//! compiled in, so everything in ssm chooses its device by name (`--device cpu|cuda|vulkan`).

use burn::tensor::Device;

/// A device by name: `cpu` (burn-flex), `cuda` (feature `cuda`), `vulkan` (feature `vulkan`).
pub fn device_by_name(name: &str) -> Result<Device, String> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0usize)),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(Default::default())),
        "cuda" => Err("device 'cuda' needs a build with `--features cuda`".into()),
        "vulkan" => Err("device 'vulkan' needs a build with `--features vulkan`".into()),
        other => Err(format!("unknown device '{other}' (expected cpu, cuda or vulkan)")),
    }
}
