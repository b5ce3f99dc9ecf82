//! Shared test helpers: seeded random tensors, comparisons, finite differences.
#![allow(dead_code)]

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform values in [lo, hi) as an f64 tensor (f64 keeps finite differences accurate).
pub fn rand_t<const D: usize>(r: &mut StdRng, shape: [usize; D], lo: f64, hi: f64, dev: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| r.random_range(lo..hi)).collect();
    Tensor::from_data(TensorData::new(v, shape.to_vec()), (dev, DType::F64))
}

pub fn vals<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    ssm_core::fixtures::values_f64(t.clone())
}

/// max |a − b| / max |b| (relative to the reference's scale).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch {} vs {}", a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    // a NaN on either side is an infinite error, never a pass
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| if (x - y).is_nan() { f64::INFINITY } else { m.max((x - y).abs()) })
        / scale
}

pub fn assert_close<const D: usize>(what: &str, got: &Tensor<D>, want: &Tensor<D>, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let e = rel_err(&vals(got), &vals(want));
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

/// Central finite difference of a scalar function at `k` random coordinates of `x`, compared
/// with the analytic gradient `g`. Fails on a wrong sign or a missing term.
pub fn check_fd<const D: usize>(
    what: &str,
    x: &Tensor<D>,
    g: &Tensor<D>,
    f: &dyn Fn(Tensor<D>) -> f64,
    r: &mut StdRng,
    k: usize,
) {
    let base = vals(x);
    let gv = vals(g);
    let shape = x.dims();
    let dev = x.device();
    let n = base.len();
    let idx: Vec<usize> = if n <= k { (0..n).collect() } else { (0..k).map(|_| r.random_range(0..n)).collect() };
    let scale = gv.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-8);
    for i in idx {
        let eps = 1e-6 * base[i].abs().max(1.0);
        let mut p = base.clone();
        p[i] += eps;
        let mut m = base.clone();
        m[i] -= eps;
        let tp = Tensor::<D>::from_data(TensorData::new(p, shape.to_vec()), (&dev, DType::F64));
        let tm = Tensor::<D>::from_data(TensorData::new(m, shape.to_vec()), (&dev, DType::F64));
        let fd = (f(tp) - f(tm)) / (2.0 * eps);
        let err = (fd - gv[i]).abs() / scale;
        assert!(err < 1e-5, "{what}[{i}]: finite difference {fd:e} vs analytic {:e} (scaled error {err:e})", gv[i]);
    }
}

/// Σ w ⊙ t as f64.
pub fn dot<const D: usize>(t: Tensor<D>, w: &Tensor<D>) -> f64 {
    vals(&(t * w.clone()).sum())[0]
}
