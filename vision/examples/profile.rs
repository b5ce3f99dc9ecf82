//! Times the pieces of the vision models (forward + backward) on CPU: `cargo run --release -p ssm-vision --example profile`.
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use ssm_core::fft::{conv_fft_len, fft_conv_nd};
use std::time::Instant;

fn time(name: &str, f: impl Fn()) {
    f();
    let t0 = Instant::now();
    for _ in 0..3 {
        f();
    }
    println!("{name}: {:.1} ms", t0.elapsed().as_secs_f64() * 1000.0 / 3.0);
}

fn main() {
    let dev = Device::flex().autodiff();
    let (b, h, g) = (64, 64, 14);
    let n = conv_fft_len(g);
    let u = Tensor::<5>::random([b, h, 1, g, g], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let k = Tensor::<5>::random([1, h, 1, n, n], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    time("fft_conv_nd 2-D fwd", || {
        let _ = fft_conv_nd(u.clone(), k.clone(), &[3, 4]).into_data();
    });
    time("fft_conv_nd 2-D fwd+bwd", || {
        let _ = fft_conv_nd(u.clone(), k.clone(), &[3, 4]).sum().backward();
    });
    let ks: Vec<Tensor<2>> = (0..2)
        .map(|_| Tensor::<2>::random([h, 2 * g - 1], Distribution::Normal(0.0, 1.0), &dev).require_grad())
        .collect();
    time("separable_conv_nd 2-D fwd", || {
        let _ = ssm_core::fft::separable_conv_nd(u.clone(), &ks, &[3, 4]).into_data();
    });
    time("separable_conv_nd 2-D fwd+bwd", || {
        let _ = ssm_core::fft::separable_conv_nd(u.clone(), &ks, &[3, 4]).sum().backward();
    });
    let x = Tensor::<4>::random([b, 128, g, g], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let conv = Conv2dConfig::new([128, 128], [3, 3])
        .with_groups(128)
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&dev);
    time("depthwise conv2d 3x3 fwd+bwd", || {
        let _ = conv.forward(x.clone()).sum().backward();
    });
    let xl = Tensor::<5>::random([b, 1, g, g, h], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let ln = burn::nn::LayerNormConfig::new(h).init(&dev);
    time("layernorm 5-D fwd+bwd", || {
        let _ = ln.forward(xl.clone()).sum().backward();
    });
    time("permute 5-D fwd+bwd", || {
        let _ = xl.clone().permute([0, 4, 1, 2, 3]).mul_scalar(2.0).sum().backward();
    });
}
#[allow(dead_code)]
fn unused() {}
