//! ssm-core: the state-space model kernel layer (selective scan, diagonal recurrences, FFT
//! convolution, S4D kernels) as burn 0.22 backend extensions, and helpers shared by every
//! domain crate.
//!
//! See ARCHITECTURE.md for the layout of the workspace and the kernel layer.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use ssm_core::kernels::{ScanArgs, selective_scan};
//!
//! let device = Device::flex().autodiff(); // CPU, with gradients
//! let (b, d, l, n) = (2, 8, 16, 4);
//! let r = |s: [usize; 3]| Tensor::<3>::random(s, Distribution::Uniform(-1.0, 1.0), &device).require_grad();
//! let a = Tensor::<2>::random([d, n], Distribution::Uniform(-2.0, -0.5), &device);
//! let u = r([b, d, l]);
//! let out = selective_scan(ScanArgs::new(u.clone(), r([b, d, l]), a, r([b, n, l]), r([b, n, l])).softplus(true));
//! assert_eq!(out.y.dims(), [b, d, l]);
//! assert_eq!(out.last_state.dims(), [b, d, n]);
//! let grads = out.y.sum().backward();
//! assert_eq!(u.grad(&grads).unwrap().dims(), [b, d, l]);
//! ```

// Only for its `x86-v4` feature (burn-flex's matrix products on AVX-512; workspace Cargo.toml).
use gemm as _;

pub mod backbone;
pub mod blocks;
pub mod complex;
pub mod data;
pub mod device;
pub mod einfft;
pub mod error;
pub mod fft;
pub mod fixtures;
pub mod hippo;
pub mod hybrids;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod lti;
pub mod mixers;
pub mod models;
pub mod monarch;
pub mod pathfinder;
pub mod plain;
pub mod plot;
pub mod tasks;
pub mod train;

pub use complex::ComplexTensor;
pub use kernels::{
    ConvArgs, ScanArgs, ScanOutput, causal_conv, linear_recurrence, linear_recurrence_complex, selective_scan,
};
