//! Reading test fixtures: the fixture root and safetensors files as burn tensors.
//!
//! Tests find fixtures under `$SSM_FIXTURES` (default `../shared/fixtures`, relative to the
//! workspace root). When the directory is missing — a user's clone without `shared/` — tests
//! print why and skip; with `SSM_REQUIRE_FIXTURES=1` (CI) they fail instead.

use crate::error::FileError;
use burn::tensor::{DType, Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

/// The fixture root: `$SSM_FIXTURES`, else `<workspace>/../shared/fixtures`.
pub fn fixture_root() -> PathBuf {
    if let Ok(p) = std::env::var("SSM_FIXTURES") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ws.join("../shared/fixtures")
}

/// The device the device-aware test suites run on: `$SSM_TEST_DEVICE` (a `--device` name,
/// default `cpu`). CI also runs them with `vulkan:cpu` (Mesa's lavapipe), so the GPU code paths
/// are exercised without a GPU.
///
/// # Panics
/// When the named device cannot be had (with the reason).
pub fn test_device() -> Device {
    let name = test_device_name();
    crate::device::open_device(&name).unwrap_or_else(|e| panic!("SSM_TEST_DEVICE: {e}"))
}

/// `$SSM_TEST_DEVICE`, default `cpu`.
pub fn test_device_name() -> String {
    std::env::var("SSM_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// Whether the test device computes in f64 (burn-flex does; wgpu devices do not).
pub fn test_device_has_f64() -> bool {
    crate::device::is_cpu(&test_device_name())
}

/// `root/rel` when it exists; otherwise prints a skip reason and returns `None`.
///
/// # Panics
/// When the fixture is missing and `SSM_REQUIRE_FIXTURES=1` (CI must really compare).
pub fn fixture_or_skip(rel: &str) -> Option<PathBuf> {
    present_or_skip(fixture_root().join(rel))
}

/// A shared data set `../shared/data/<rel>` (beside the fixture root), under the same rule as
/// [`fixture_or_skip`].
pub fn data_or_skip(rel: &str) -> Option<PathBuf> {
    present_or_skip(fixture_root().join("../data").join(rel))
}

fn present_or_skip(p: PathBuf) -> Option<PathBuf> {
    if p.exists() {
        return Some(p);
    }
    let why = format!("{} not found (set SSM_FIXTURES to the fixture root)", p.display());
    if std::env::var("SSM_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
        panic!("{why}; SSM_REQUIRE_FIXTURES=1 forbids skipping");
    }
    eprintln!("SKIP: {why}");
    None
}

/// A tensor's values as f32, for comparisons in tests.
pub fn values_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    crate::plain::host(t)
}

/// A tensor's values as f64, for comparisons in tests.
pub fn values_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().expect("f64 values")
}

/// The largest absolute element-wise difference of two equally long slices (infinite where
/// either holds a NaN, so a NaN never passes a tolerance).
pub fn max_abs_diff<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter().zip(b).fold(0.0, |m, (x, y)| {
        let d = ((*x).into() - (*y).into()).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    })
}

/// A safetensors file held in memory.
pub struct SafeFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl SafeFile {
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e.to_string()))?;
        SafeTensors::deserialize(&bytes).map_err(|e| FileError::new(path, format!("not a safetensors file: {e}")))?;
        Ok(Self { path: path.to_path_buf(), bytes })
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated in open")
    }

    pub fn names(&self) -> Vec<String> {
        self.st().names().into_iter().map(String::from).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.st().tensor(name).is_ok()
    }

    /// Values as f64 with the shape.
    pub fn values(&self, name: &str) -> Result<(Vec<f64>, Vec<usize>), FileError> {
        let st = self.st();
        let t = st.tensor(name).map_err(|e| FileError::new(&self.path, format!("tensor {name}: {e}")))?;
        let data = t.data();
        let v: Vec<f64> = match t.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            Dtype::I32 => data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            d => return Err(FileError::new(&self.path, format!("tensor {name}: unsupported dtype {d:?}"))),
        };
        Ok((v, t.shape().to_vec()))
    }

    /// A tensor of rank `D` on `device` (f32, or f64 when `f64` is set).
    pub fn tensor<const D: usize>(&self, name: &str, device: &Device, f64: bool) -> Result<Tensor<D>, FileError> {
        let (v, shape) = self.values(name)?;
        if shape.len() != D {
            return Err(FileError::new(&self.path, format!("tensor {name} has shape {shape:?}, expected rank {D}")));
        }
        if f64 {
            Ok(Tensor::from_data(TensorData::new(v, shape), (device, DType::F64)))
        } else {
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            Ok(Tensor::from_data(TensorData::new(v, shape), (device, DType::F32)))
        }
    }
}
