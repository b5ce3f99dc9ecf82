//! N-D FFT convolution, separable convolution and DFTs of any length against direct sums.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ssm_core::fft::{circular_kernel, conv_fft_len, dft, fft_conv_nd, idft, separable_conv_nd, two_sided_kernel};
use ssm_core::fixtures::{max_abs_diff as max_diff, values_f32 as vals};

fn dev() -> Device {
    Device::flex()
}

#[test]
fn dft_matches_the_direct_sum_for_any_length() {
    for n in [5usize, 6, 8, 16] {
        let re = Tensor::<2>::random([3, n], Distribution::Normal(0.0, 1.0), &dev());
        let im = Tensor::<2>::random([3, n], Distribution::Normal(0.0, 1.0), &dev());
        let (xr, xi) = (vals(re.clone()), vals(im.clone()));
        let (fr, fi) = dft(re.clone(), im.clone(), 1);
        let (fr, fi) = (vals(fr), vals(fi));
        for r in 0..3 {
            for k in 0..n {
                let (mut sr, mut si) = (0f64, 0f64);
                for j in 0..n {
                    let a = -2.0 * std::f64::consts::PI * (k * j) as f64 / n as f64;
                    let (xre, xim) = (xr[r * n + j] as f64, xi[r * n + j] as f64);
                    sr += xre * a.cos() - xim * a.sin();
                    si += xre * a.sin() + xim * a.cos();
                }
                assert!((sr - fr[r * n + k] as f64).abs() < 1e-4 && (si - fi[r * n + k] as f64).abs() < 1e-4, "n={n}");
            }
        }
        // and the inverse undoes it
        let (br, bi) = idft(
            Tensor::<2>::from_data(TensorData::new(fr, [3, n]), &dev()),
            Tensor::<2>::from_data(TensorData::new(fi, [3, n]), &dev()),
            1,
        );
        assert!(max_diff(&vals(br), &xr) < 1e-4 && max_diff(&vals(bi), &xi) < 1e-4, "n={n}");
    }
}

/// Direct 2-D linear convolution with a two-sided kernel k[c, m1 + X1 − 1, m2 + X2 − 1].
fn direct_conv2d(u: &[f32], k: &[f32], b: usize, c: usize, x1: usize, x2: usize) -> Vec<f32> {
    let (w1, w2) = (2 * x1 - 1, 2 * x2 - 1);
    let mut y = vec![0f32; b * c * x1 * x2];
    for bi in 0..b {
        for ci in 0..c {
            for i in 0..x1 {
                for j in 0..x2 {
                    let mut s = 0f64;
                    for p in 0..x1 {
                        for q in 0..x2 {
                            let (m1, m2) = (i + x1 - 1 - p, j + x2 - 1 - q);
                            s += k[(ci * w1 + m1) * w2 + m2] as f64 * u[((bi * c + ci) * x1 + p) * x2 + q] as f64;
                        }
                    }
                    y[((bi * c + ci) * x1 + i) * x2 + j] = s as f32;
                }
            }
        }
    }
    y
}

#[test]
fn nd_fft_convolution_and_its_separable_form_match_direct_convolution() {
    let (b, c, x1, x2) = (2, 3, 5, 7);
    let r = |s: [usize; 2]| Tensor::<2>::random(s, Distribution::Normal(0.0, 1.0), &dev());
    let (f1, b1, f2, b2) = (r([c, x1]), r([c, x1]), r([c, x2]), r([c, x2]));
    let (t1, t2) = (two_sided_kernel(f1.clone(), b1.clone()), two_sided_kernel(f2.clone(), b2.clone()));
    // The full two-sided kernel as an outer product, for the direct sum.
    let full = vals(t1.clone().reshape([c, 2 * x1 - 1, 1]) * t2.clone().reshape([c, 1, 2 * x2 - 1]));
    let u = Tensor::<5>::random([b, c, 1, x1, x2], Distribution::Normal(0.0, 1.0), &dev());
    let want = direct_conv2d(&vals(u.clone()), &full, b, c, x1, x2);
    let (n1, n2) = (conv_fft_len(x1), conv_fft_len(x2));
    let (c1, c2) = (circular_kernel(f1, Some(b1), n1), circular_kernel(f2, Some(b2), n2));
    let k = (c1.reshape([c, n1, 1]) * c2.reshape([c, 1, n2])).reshape([1, c, 1, n1, n2]);
    let fft = vals(fft_conv_nd(u.clone(), k, &[3, 4]));
    assert!(max_diff(&fft, &want) < 1e-3, "2-D FFT vs direct: {}", max_diff(&fft, &want));
    let sep = vals(separable_conv_nd(u, &[t1, t2], &[3, 4]));
    assert!(max_diff(&sep, &want) < 1e-3, "separable vs direct: {}", max_diff(&sep, &want));
}

#[test]
fn separable_convolution_gradient_matches_the_nd_fft_path() {
    let (b, c, x0, x1, x2) = (1, 2, 3, 4, 5);
    let ad = Device::flex().autodiff();
    let r = |s: [usize; 2]| Tensor::<2>::random(s, Distribution::Normal(0.0, 1.0), &ad);
    let ks: Vec<Tensor<2>> = [x0, x1, x2].iter().map(|&x| r([c, 2 * x - 1]).require_grad()).collect();
    let u = Tensor::<5>::random([b, c, x0, x1, x2], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    let w = Tensor::<5>::random([b, c, x0, x1, x2], Distribution::Normal(0.0, 1.0), &ad);
    let g1 = (separable_conv_nd(u.clone(), &ks, &[2, 3, 4]) * w.clone()).sum().backward();
    // The same kernels in circular layout, outer product, 3-D FFT.
    let circ = |k: &Tensor<2>, x: usize| {
        let n = conv_fft_len(x);
        let fwd = k.clone().narrow(1, x - 1, x);
        let bwd = k.clone().narrow(1, 0, x - 1).flip([1]);
        let bwd = Tensor::cat(vec![bwd, Tensor::zeros([c, 1], &ad)], 1);
        (circular_kernel(fwd, Some(bwd), n), n)
    };
    let ((k0, n0), (k1, n1), (k2, n2)) = (circ(&ks[0], x0), circ(&ks[1], x1), circ(&ks[2], x2));
    let k = k0.reshape([c, n0, 1, 1]) * k1.reshape([c, 1, n1, 1]) * k2.reshape([c, 1, 1, n2]);
    let g2 = (fft_conv_nd(u.clone(), k.unsqueeze_dim(0), &[2, 3, 4]) * w).sum().backward();
    let d = max_diff(&vals(u.grad(&g1).unwrap()), &vals(u.grad(&g2).unwrap()));
    assert!(d < 1e-3, "∂u differs by {d}");
    for k in &ks {
        let d = max_diff(&vals(k.grad(&g1).unwrap()), &vals(k.grad(&g2).unwrap()));
        assert!(d < 1e-3, "∂k differs by {d}");
    }
}

/// The GEMM (Monarch) form of the FFT convolution equals the rustfft kernel, values and
/// gradients, for lengths that split evenly and unevenly (N₁ ≠ N₂).
#[test]
fn monarch_convolution_matches_the_fft_kernel() {
    use ssm_core::kernels::causal_conv;
    use ssm_core::monarch::monarch_causal_conv;
    let d = dev();
    for (b, h, l, lk) in [(2, 3, 50, 50), (1, 4, 300, 17), (2, 2, 1000, 1000)] {
        let u = Tensor::<3>::random([b, h, l], Distribution::Uniform(-1.0, 1.0), &d);
        let k = Tensor::<2>::random([h, lk], Distribution::Uniform(-1.0, 1.0), &d);
        let want = causal_conv(u.clone(), k.clone());
        let got = monarch_causal_conv(u.clone(), k.clone());
        let err = max_diff(&vals(got), &vals(want.clone()));
        let scale = vals(want).iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        assert!(err <= 1e-4 * scale.max(1.0), "L {l}, Lk {lk}: {err:.2e} (outputs up to {scale:.1})");
    }
    let ad = d.autodiff();
    let u = Tensor::<3>::random([2, 3, 70], Distribution::Uniform(-1.0, 1.0), &ad).require_grad();
    let k = Tensor::<2>::random([3, 70], Distribution::Uniform(-1.0, 1.0), &ad).require_grad();
    let w = Tensor::<3>::random([2, 3, 70], Distribution::Uniform(-1.0, 1.0), &ad);
    let g1 = (causal_conv(u.clone(), k.clone()) * w.clone()).sum().backward();
    let g2 = (monarch_causal_conv(u.clone(), k.clone()) * w).sum().backward();
    let eu = max_diff(&vals(u.grad(&g1).unwrap()), &vals(u.grad(&g2).unwrap()));
    let ek = max_diff(&vals(k.grad(&g1).unwrap()), &vals(k.grad(&g2).unwrap()));
    assert!(eu < 1e-3 && ek < 1e-3, "gradients differ: u {eu:.2e}, k {ek:.2e}");
}
