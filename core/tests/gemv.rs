//! The few-row decoding kernel equals burn's matmul (f32 and f64, both weight layouts, ragged
//! sizes), and falls back to matmul under autodiff.

mod common;
use burn::tensor::{DType, Device, Tensor};
use common::*;
use ssm_core::kernels::matmul_rows;

#[test]
fn matmul_rows_equals_matmul() {
    let dev = Device::flex();
    let mut r = rng(7);
    for &(m, k, n) in &[(1, 768, 3072), (3, 77, 1000), (1, 5, 1), (16, 33, 513)] {
        for transposed in [false, true] {
            let x = rand_t(&mut r, [m, k], -1.0, 1.0, &dev);
            let w = if transposed {
                rand_t(&mut r, [n, k], -1.0, 1.0, &dev)
            } else {
                rand_t(&mut r, [k, n], -1.0, 1.0, &dev)
            };
            let want = if transposed { x.clone().matmul(w.clone().transpose()) } else { x.clone().matmul(w.clone()) };
            assert_close(
                &format!("f64 {m}×{k}×{n} t={transposed}"),
                &matmul_rows(x.clone(), w.clone(), transposed),
                &want,
                1e-12,
            );
            let (x32, w32) = (x.cast(DType::F32), w.cast(DType::F32));
            let got = matmul_rows(x32, w32, transposed).cast(DType::F64);
            assert_close(&format!("f32 {m}×{k}×{n} t={transposed}"), &got, &want, 1e-5);
        }
    }
}

#[test]
fn matmul_rows_under_autodiff_has_gradients() {
    let dev = Device::flex().autodiff();
    let x: Tensor<2> = Tensor::ones([1, 4], &dev).require_grad();
    let w: Tensor<2> = Tensor::ones([4, 3], &dev);
    let g = matmul_rows(x.clone(), w, false).sum().backward();
    assert_eq!(vals(&x.grad(&g).unwrap()), vec![3.0; 4]);
}
