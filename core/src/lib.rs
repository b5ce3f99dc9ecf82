//! ssm-core: the state-space model kernel layer (selective scan, diagonal recurrences, FFT
//! convolution, S4D kernels) as burn 0.22 backend extensions, and helpers shared by every
//! domain crate.
//!
//! See ARCHITECTURE.md for the layout of the workspace and the kernel layer.

pub mod complex;
pub mod device;
pub mod fixtures;
pub mod kernels;

pub use complex::ComplexTensor;
pub use kernels::{
    ConvArgs, ScanArgs, ScanOutput, causal_conv, linear_recurrence, linear_recurrence_complex, selective_scan,
};
