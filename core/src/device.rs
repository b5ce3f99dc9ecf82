//! Explicit device selection. `Device::default()` silently picks CUDA whenever that feature is
//! compiled in, so everything in ssm chooses its device by name:
//!
//! | name | device |
//! |---|---|
//! | `cpu` | burn-flex on this machine's cores |
//! | `cuda`, `cuda:N` | the CUDA GPU with index N (0 by default; feature `cuda`) |
//! | `vulkan` | the adapter wgpu ranks best (feature `vulkan`: burn's wgpu backend, WGSL shaders; Vulkan on Linux) |
//! | `vulkan:N` | the Nth discrete GPU |
//! | `vulkan:cpu` | a Vulkan driver that runs on the CPU (Mesa's lavapipe: GPU code paths without a GPU) |
//!
//! [`open_device`] also checks that the device answers, so a missing GPU is one clear error
//! before any work, not a panic deep inside the first tensor operation.

use crate::error::catch_quietly;
use burn::tensor::{Device, Tensor};

/// A device that cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device '{0}' needs a build with `--features {1}`")]
    NotCompiled(String, &'static str),
    #[error("unknown device '{0}' (expected cpu, cuda, cuda:N, vulkan, vulkan:N or vulkan:cpu)")]
    Unknown(String),
    #[error("device '{0}' is not available on this machine: {1}")]
    Absent(String, String),
}

/// A device by name (see the module's table); nothing is started yet.
pub fn device_by_name(name: &str) -> Result<Device, DeviceError> {
    let unknown = || DeviceError::Unknown(name.into());
    let (kind, which) = match name.split_once(':') {
        Some((k, w)) => (k, Some(w)),
        None => (name, None),
    };
    let index = |w: &str| w.parse::<usize>().map_err(|_| unknown());
    match (kind, which) {
        (k, None) if is_cpu(k) => Ok(Device::flex()),
        ("cuda", w) => {
            let _i = w.map(index).transpose()?.unwrap_or(0);
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(_i));
            #[cfg(not(feature = "cuda"))]
            Err(DeviceError::NotCompiled(name.into(), "cuda"))
        }
        ("vulkan", w) => {
            let _kind = vulkan_kind(w).ok_or_else(unknown)?;
            #[cfg(feature = "vulkan")]
            return Ok(Device::wgpu(_kind));
            #[cfg(not(feature = "vulkan"))]
            Err(DeviceError::NotCompiled(name.into(), "vulkan"))
        }
        _ => Err(unknown()),
    }
}

/// Whether `name` is burn-flex on this machine's cores (`cpu`, or its alias `flex`).
pub fn is_cpu(name: &str) -> bool {
    matches!(name, "cpu" | "flex")
}

/// The wgpu adapter a `vulkan[:…]` name asks for.
fn vulkan_kind(which: Option<&str>) -> Option<burn::tensor::DeviceKind> {
    use burn::tensor::DeviceKind;
    Some(match which {
        None => DeviceKind::DefaultDevice,
        Some("cpu") => DeviceKind::Cpu,
        Some(n) => DeviceKind::DiscreteGpu(n.parse().ok()?),
    })
}

/// [`device_by_name`], then one small tensor round trip on it: a device that is named right but
/// absent (no such GPU, no driver) becomes [`DeviceError::Absent`].
pub fn open_device(name: &str) -> Result<Device, DeviceError> {
    let device = device_by_name(name)?;
    if !is_cpu(name) {
        catch_quietly(|| Tensor::<1>::ones([4], &device).sum().into_scalar::<f32>())
            .map_err(|why| DeviceError::Absent(name.into(), format!("a first tensor operation failed ({why})")))?;
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_and_bad_ones_named() {
        assert!(device_by_name("cpu").is_ok());
        for bad in ["gpu", "cpu:1", "vulkan:x", "cuda:-1", "cuda:", ""] {
            let e = device_by_name(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("expected"), "{bad}: {e}");
        }
        #[cfg(not(feature = "vulkan"))]
        for name in ["vulkan", "vulkan:1", "vulkan:cpu"] {
            let e = device_by_name(name).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("--features vulkan") && e.contains(name), "{e}");
        }
        #[cfg(not(feature = "cuda"))]
        for name in ["cuda", "cuda:3"] {
            let e = device_by_name(name).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("--features cuda") && e.contains(name), "{e}");
        }
    }

    /// With the `vulkan` feature, an adapter index far past any machine's is a clear error.
    #[cfg(feature = "vulkan")]
    #[test]
    fn an_absent_gpu_is_one_clear_error() {
        let e = open_device("vulkan:99").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("'vulkan:99' is not available"), "{e}");
    }
}
