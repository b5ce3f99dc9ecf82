//! Explicit device selection. `Device::default()` silently picks CUDA whenever that feature is
//! compiled in, so everything in ssm chooses its device by name (`--device cpu|cuda|vulkan`).

use burn::tensor::Device;

/// A device that cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device '{0}' needs a build with `--features {0}`")]
    NotCompiled(&'static str),
    #[error("unknown device '{0}' (expected cpu, cuda or vulkan)")]
    Unknown(String),
}

/// A device by name: `cpu` (burn-flex), `cuda` (feature `cuda`), `vulkan` (feature `vulkan`).
pub fn device_by_name(name: &str) -> Result<Device, DeviceError> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0usize)),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(Default::default())),
        "cuda" => Err(DeviceError::NotCompiled("cuda")),
        "vulkan" => Err(DeviceError::NotCompiled("vulkan")),
        other => Err(DeviceError::Unknown(other.into())),
    }
}
