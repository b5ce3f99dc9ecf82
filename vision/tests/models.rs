//! The vision models: output shapes and parameter counts (against independent formulas), S4ND
//! at two resolutions, EinFFT against a direct DFT, Vim's bidirectional block against two
//! explicit recurrent scans, the scan orders of VMamba, PlainMamba and LocalVMamba against their
//! reference code, and a tiny model overfitting a few images.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ssm_core::einfft::{EinFftConfig, ImagPart};
use ssm_core::fixtures::{max_abs_diff as max_diff, values_f32 as vals};
use ssm_core::train::{DataSource, TrainConfig, fit};
use ssm_vision::models::local_vmamba::local_vmamba_config;
use ssm_vision::models::s4nd::AxisKernel;
use ssm_vision::models::scans::{Scan, gather, merge, moves};
use ssm_vision::models::{
    ImageBatch, InputShape, PlainMambaConfig, S4ndConfig, SimbaConfig, VimConfig, VimPool, VisionConfig, VmambaConfig,
};

fn dev() -> Device {
    Device::flex()
}

/// Parameters of a mamba_ssm Mamba block (no biases on the projections, conv bias on).
fn mamba_params(d: usize, n: usize, expand: usize, k: usize) -> usize {
    let (e, r) = (expand * d, d.div_ceil(16));
    d * 2 * e + (e * k + e) + e * (r + 2 * n) + (r * e + e) + e * n + e + e * d
}

fn linear(i: usize, o: usize) -> usize {
    i * o + o
}

fn x(b: usize, input: InputShape) -> Tensor<5> {
    Tensor::random([b, input.channels, input.frames, input.height, input.width], Distribution::Normal(0.0, 1.0), &dev())
}

#[test]
fn shapes_and_parameter_counts() {
    let img = InputShape::image(1, 16, 16);
    let k = 10;
    // Vim: patch 4 → 16 patches + class token.
    let vim = VimConfig { d_model: 16, depth: 2, d_state: 4, ..VimConfig::new(img, k) };
    let (d, n_tok) = (16, 16);
    let want = (16 * d + d) + d + (n_tok + 1) * d + 2 * (d + 2 * mamba_params(d, 4, 2, 4)) + d + linear(d, k);
    let m = VisionConfig::Vim(vim.clone()).init(&dev());
    assert_eq!(m.parameter_count(), want, "vim");
    assert_eq!(m.forward(x(3, img)).dims(), [3, k]);
    // mean pooling: no class token, one position fewer
    let mean = VimConfig { pool: VimPool::Mean, ..vim.clone() };
    let m = VisionConfig::Vim(mean).init(&dev());
    assert_eq!(m.parameter_count(), want - 2 * d, "vim, mean pooling");
    assert_eq!(m.forward(x(3, img)).dims(), [3, k]);

    // VMamba: dims [8, 16], one block per stage.
    let vm = VmambaConfig { dims: vec![8, 16], depths: vec![1, 1], d_state: 4, ..VmambaConfig::new(img, k) };
    let ss2d = |d: usize, n: usize| {
        let (e, r) = (2 * d, d.div_ceil(16));
        d * 2 * e + (9 * e + e) + 4 * (r + 2 * n) * e + 4 * e * r + 4 * e + 4 * e * n + 4 * e + 2 * e + e * d
    };
    let vss = |d: usize| 2 * d + ss2d(d, 4) + 2 * d + linear(d, 2 * d) + linear(2 * d, d);
    let want = (4 * 8 + 8) + 16 + vss(8) + (2 * 32 + 32 * 16) + vss(16) + 2 * 16 + linear(16, k);
    let m = VisionConfig::Vmamba(vm).init(&dev());
    assert_eq!(m.parameter_count(), want, "vmamba");
    assert_eq!(m.forward(x(2, img)).dims(), [2, k]);

    // LocalVMamba: VMamba plus a channel gate (LN, E → E/8 → E) per block.
    let lv = VmambaConfig { dims: vec![8, 16], depths: vec![1, 1], d_state: 4, ..local_vmamba_config(img, k) };
    let gate = |d: usize| {
        let e = 2 * d;
        2 * e + linear(e, e / 8) + linear(e / 8, e)
    };
    let m = VisionConfig::LocalVmamba(lv).init(&dev());
    assert_eq!(m.parameter_count(), want + gate(8) + gate(16), "localvmamba");
    assert_eq!(m.forward(x(2, img)).dims(), [2, k]);

    // PlainMamba: patch 4 → 4×4 tokens, d 8, two layers, N = 4, 3×3 depthwise conv.
    let pm = PlainMambaConfig { d_model: 8, depth: 2, d_state: 4, ..PlainMambaConfig::new(img, k) };
    let layer = |d: usize, n: usize| {
        let (e, r) = (2 * d, d.div_ceil(16));
        2 * d + linear(d, 2 * e) + (9 * e + e) + e * (r + 2 * n) + r * e + e + e * n + e + 5 * n + linear(e, d)
    };
    let want = (16 * 8 + 8) + 16 * 8 + 2 * layer(8, 4) + 2 * 8 + linear(8, k);
    let m = VisionConfig::PlainMamba(pm).init(&dev());
    assert_eq!(m.parameter_count(), want, "plainmamba");
    assert_eq!(m.forward(x(2, img)).dims(), [2, k]);

    // S4ND: d 8, one block, N = 4 (2 modes) per axis.
    let s4 = S4ndConfig { d_model: 8, depth: 1, d_state: 4, ..S4ndConfig::new(img, k) };
    let (h, n2) = (8, 2);
    let axis = h + 6 * h * n2;
    let s4nd_want = |patch_weights: usize, axes: usize, k: usize| {
        (patch_weights * h + h)
            + 2 * h
            + (axes * axis + h + linear(h, 2 * h))
            + 2 * h
            + linear(h, 2 * h)
            + linear(2 * h, h)
            + 2 * h
            + linear(h, k)
    };
    let want = s4nd_want(4, 2, k);
    let m = VisionConfig::S4nd(s4).init(&dev());
    assert_eq!(m.parameter_count(), want, "s4nd");
    assert_eq!(m.forward(x(2, img)).dims(), [2, k]);

    // SiMBA: dims [8, 16], EinFFT with 4 blocks.
    let sb = SimbaConfig { dims: vec![8, 16], depths: vec![1, 1], d_state: 4, ..SimbaConfig::new(img, k) };
    let ein = |d: usize| {
        let bs = d / 4;
        2 * (2 * 4 * bs * bs) + 2 * (2 * 4 * bs)
    };
    let blk = |d: usize| 2 * d + mamba_params(d, 4, 2, 4) + 2 * d + ein(d);
    let want = (4 * 8 + 8) + 16 + blk(8) + (9 * 8 * 16 + 16 + 32) + blk(16) + 32 + linear(16, k);
    let m = VisionConfig::Simba(sb).init(&dev());
    assert_eq!(m.parameter_count(), want, "simba");
    assert_eq!(m.forward(x(2, img)).dims(), [2, k]);

    // Video: Vim over 2×4×4 tubelets and S4ND-3D, clips of 4 frames.
    let clip = InputShape { channels: 1, frames: 4, height: 16, width: 16 };
    let v = VimConfig { d_model: 16, depth: 1, d_state: 4, ..VimConfig::new(clip, 7) };
    let m = VisionConfig::Vim(v).init(&dev());
    assert_eq!(m.forward(x(2, clip)).dims(), [2, 7]);
    let s3 = S4ndConfig { d_model: 8, depth: 1, d_state: 4, ..S4ndConfig::new(clip, 7) };
    let m3 = VisionConfig::S4nd(s3).init(&dev());
    // three axis kernels; 2×2×2 tubelets
    assert_eq!(m3.parameter_count(), s4nd_want(8, 3, 7), "s4nd-3d");
    assert_eq!(m3.forward(x(2, clip)).dims(), [2, 7]);
    for name in ["vmamba", "simba", "plainmamba", "localvmamba"] {
        assert!(VisionConfig::by_name(name, clip, 7).is_err(), "{name} is image-only");
    }
}

#[test]
fn s4nd_kernels_at_two_resolutions_describe_one_continuous_kernel() {
    // Built for 8 samples per axis; at 16 samples the step halves, and under zero-order hold
    // each pair of fine taps sums exactly to one coarse tap: K₁₆[2l] + K₁₆[2l+1] = K₈[l].
    let k = AxisKernel::new(6, 8, 8, 0.01, 0.1, &dev());
    let (c_f, c_b) = k.kernels(8);
    let (f_f, f_b) = k.kernels(16);
    for (coarse, fine) in [(c_f, f_f), (c_b, f_b)] {
        let pairs = fine.reshape([6, 8, 2]).sum_dim(2).reshape([6, 8]);
        let d = max_diff(&vals(pairs), &vals(coarse.clone()));
        assert!(d < 1e-4, "binned fine kernel differs by {d}");
        assert!(vals(coarse).iter().any(|v| v.abs() > 1e-3), "kernel is not trivially zero");
    }
    // A model trained at 16×16 runs at 32×32 (and at 12×12), and its N-D FFT kernel applied by
    // full 2-D FFT equals the per-axis application used in the forward pass.
    let cfg = S4ndConfig { d_model: 8, depth: 1, d_state: 4, ..S4ndConfig::new(InputShape::image(1, 16, 16), 5) };
    let m = cfg.init(&dev());
    for s in [16, 32, 12] {
        assert_eq!(m.forward(x(2, InputShape::image(1, s, s))).dims(), [2, 5], "size {s}");
    }
    let layer = &m.blocks[0].layer;
    for g in [8, 16] {
        let u = Tensor::<5>::random([2, 8, 1, g, g], Distribution::Normal(0.0, 1.0), &dev());
        let full = ssm_core::fft::fft_conv_nd(u.clone(), layer.kernel([1, g, g]), &[3, 4]);
        let d = max_diff(&vals(full), &vals(layer.conv(u)));
        assert!(d < 1e-3, "grid {g}: 2-D FFT vs per-axis differs by {d}");
    }
}

/// EinFFT written out with explicit DFT sums in f64.
#[allow(clippy::too_many_arguments)]
fn einfft_direct(
    x: &[f32],
    b: usize,
    n: usize,
    nb: usize,
    bs: usize,
    w: [&[f32]; 4],
    lambda: f64,
    imag: ImagPart,
) -> Vec<f32> {
    type C = (f64, f64);
    let scale = ((n * nb) as f64).sqrt();
    let at = |v: &Vec<C>, bi: usize, t: usize, blk: usize, j: usize| v[((bi * n + t) * nb + blk) * bs + j];
    let dft2 = |v: &Vec<C>, sign: f64| {
        let mut out = vec![(0.0, 0.0); v.len()];
        for bi in 0..b {
            for k1 in 0..n {
                for k2 in 0..nb {
                    for j in 0..bs {
                        let mut s = (0.0, 0.0);
                        for t in 0..n {
                            for blk in 0..nb {
                                let a = sign
                                    * 2.0
                                    * std::f64::consts::PI
                                    * ((k1 * t) as f64 / n as f64 + (k2 * blk) as f64 / nb as f64);
                                let z = at(v, bi, t, blk, j);
                                s.0 += z.0 * a.cos() - z.1 * a.sin();
                                s.1 += z.0 * a.sin() + z.1 * a.cos();
                            }
                        }
                        out[((bi * n + k1) * nb + k2) * bs + j] = (s.0 / scale, s.1 / scale);
                    }
                }
            }
        }
        out
    };
    // weights [2, nb, bs, bs] and biases [2, nb, bs]
    let layer = |v: &Vec<C>, wt: &[f32], bias: &[f32], relu: bool| {
        let mut out = vec![(0.0, 0.0); v.len()];
        for i in 0..v.len() / bs {
            let blk = i % nb;
            for k in 0..bs {
                let (mut re, mut im) = (bias[blk * bs + k] as f64, bias[nb * bs + blk * bs + k] as f64);
                for j in 0..bs {
                    let (a, c) = v[i * bs + j];
                    let (wr, wi) =
                        (wt[(blk * bs + j) * bs + k] as f64, wt[nb * bs * bs + (blk * bs + j) * bs + k] as f64);
                    re += a * wr - c * wi;
                    im += a * wi + c * wr;
                }
                out[i * bs + k] = if relu { (re.max(0.0), im.max(0.0)) } else { (re, im) };
            }
        }
        out
    };
    let shrink = |v: f64| {
        if v > lambda {
            v - lambda
        } else if v < -lambda {
            v + lambda
        } else {
            0.0
        }
    };
    let xs: Vec<C> = x.iter().map(|&v| (v as f64, 0.0)).collect();
    let h = layer(&dft2(&xs, -1.0), w[0], w[2], true);
    let y: Vec<C> = layer(&h, w[1], w[3], false).into_iter().map(|(r, i)| (shrink(r), shrink(i))).collect();
    dft2(&y, 1.0)
        .into_iter()
        .map(|(r, i)| match imag {
            ImagPart::Drop => r as f32,
            ImagPart::Add => (r + i) as f32,
            ImagPart::Modulus => (r * r + i * i).sqrt() as f32,
        })
        .collect()
}

#[test]
fn einfft_matches_a_direct_dft_computation() {
    let (b, nb, bs) = (2, 4, 3);
    for n in [5usize, 8] {
        for imag in [ImagPart::Drop, ImagPart::Add, ImagPart::Modulus] {
            let mut m = EinFftConfig::new(nb * bs).with_imag(imag).with_sparsity_threshold(0.05).init(&dev());
            // larger weights than the 0.02 init, so every term matters
            let big = Distribution::Normal(0.0, 0.7);
            m.complex_weight_1 = burn::module::Param::from_tensor(Tensor::random([2, nb, bs, bs], big, &dev()));
            m.complex_weight_2 = burn::module::Param::from_tensor(Tensor::random([2, nb, bs, bs], big, &dev()));
            m.complex_bias_1 = burn::module::Param::from_tensor(Tensor::random([2, nb, bs], big, &dev()));
            let xin = Tensor::<3>::random([b, n, nb * bs], Distribution::Normal(0.0, 1.0), &dev());
            let got = vals(m.forward(xin.clone()));
            let w = [
                vals(m.complex_weight_1.val()),
                vals(m.complex_weight_2.val()),
                vals(m.complex_bias_1.val()),
                vals(m.complex_bias_2.val()),
            ];
            let want = einfft_direct(&vals(xin), b, n, nb, bs, [&w[0], &w[1], &w[2], &w[3]], 0.05, imag);
            let d = max_diff(&got, &want);
            assert!(d < 1e-3, "n={n} {imag:?}: differs by {d}");
            assert!(want.iter().any(|v| v.abs() > 1e-2), "output is not trivially zero");
        }
    }
}

#[test]
fn vim_bidirectional_block_equals_two_explicit_scans() {
    let cfg = VimConfig { d_model: 16, depth: 1, d_state: 4, ..VimConfig::new(InputShape::image(1, 16, 16), 3) };
    let m = cfg.init(&dev());
    let block = &m.layers.blocks[0];
    let (b, l, d) = (2, 9, 16);
    let xin = Tensor::<3>::random([b, l, d], Distribution::Normal(0.0, 1.0), &dev());
    let (got, _) = block.forward(xin.clone(), None);
    // Forward scan t = 0 … L−1 and backward scan t = L−1 … 0, each token by token (recurrent).
    let h = block.norm.forward(xin.clone());
    let rev = block.mixer_rev.as_ref().expect("bidirectional block");
    let mut fwd = vec![None; l];
    let mut s = block.mixer.init_state(b, &dev());
    for (t, slot) in fwd.iter_mut().enumerate() {
        let (y, ns) = block.mixer.step(h.clone().narrow(1, t, 1).reshape([b, d]), s);
        *slot = Some(y);
        s = ns;
    }
    let mut bwd = vec![None; l];
    let mut s = rev.init_state(b, &dev());
    for t in (0..l).rev() {
        let (y, ns) = rev.step(h.clone().narrow(1, t, 1).reshape([b, d]), s);
        bwd[t] = Some(y);
        s = ns;
    }
    let ys: Vec<Tensor<2>> =
        fwd.into_iter().zip(bwd).map(|(f, bk)| (f.unwrap() + bk.unwrap()).div_scalar(2.0)).collect();
    let want = xin + Tensor::stack::<3>(ys, 1);
    let diff = max_diff(&vals(got), &vals(want));
    assert!(diff < 1e-4, "bidirectional block vs two scans: {diff}");
}

#[test]
fn vmamba_cross_scan_orders_and_merge() {
    // 2×3 map with values 0…5: row-major, column-major and both reversed.
    let x = Tensor::<3>::from_data(TensorData::new((0..6).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 6]), &dev());
    let orders: Vec<Vec<usize>> = Scan::CROSS.iter().map(|s| s.order(2, 3)).collect();
    let s = vals(gather(x.clone(), &orders));
    assert_eq!(s, vec![0., 1., 2., 3., 4., 5., 0., 3., 1., 4., 2., 5., 5., 4., 3., 2., 1., 0., 5., 2., 4., 1., 3., 0.]);
    // merging puts every direction back in place: 4 × x
    let merged = vals(merge(gather(x.clone(), &orders), &orders));
    assert_eq!(merged, vals(x.mul_scalar(4.0)));
}

/// PlainMamba's `get_permute_order` (ChenhongyiYang/PlainMamba), run on 3×4 and 4×3 grids:
/// the four snake orders and the move codes that reach each token.
#[test]
fn plain_mamba_snakes_and_moves_match_the_reference() {
    type Case = ((usize, usize), [[usize; 12]; 4], [[usize; 12]; 4]); // grid, orders, moves
    let cases: [Case; 2] = [
        (
            (3, 4),
            [
                [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11],
                [11, 10, 9, 8, 4, 5, 6, 7, 3, 2, 1, 0],
                [0, 4, 8, 9, 5, 1, 2, 6, 10, 11, 7, 3],
                [3, 7, 11, 10, 6, 2, 1, 5, 9, 8, 4, 0],
            ],
            [
                [0, 1, 1, 1, 4, 2, 2, 2, 4, 1, 1, 1],
                [0, 2, 2, 2, 3, 1, 1, 1, 3, 2, 2, 2],
                [0, 4, 4, 1, 3, 3, 1, 4, 4, 1, 3, 3],
                [0, 4, 4, 2, 3, 3, 2, 4, 4, 2, 3, 3],
            ],
        ),
        (
            (4, 3),
            [
                [0, 1, 2, 5, 4, 3, 6, 7, 8, 11, 10, 9],
                [9, 10, 11, 8, 7, 6, 3, 4, 5, 2, 1, 0],
                [0, 3, 6, 9, 10, 7, 4, 1, 2, 5, 8, 11],
                [11, 8, 5, 2, 1, 4, 7, 10, 9, 6, 3, 0],
            ],
            [
                [0, 1, 1, 4, 2, 2, 4, 1, 1, 4, 2, 2],
                [0, 1, 1, 3, 2, 2, 3, 1, 1, 3, 2, 2],
                [0, 4, 4, 4, 1, 3, 3, 3, 1, 4, 4, 4],
                [0, 3, 3, 3, 2, 4, 4, 4, 2, 3, 3, 3],
            ],
        ),
    ];
    for ((h, w), orders, codes) in cases {
        for (k, scan) in Scan::SNAKES.iter().enumerate() {
            let o = scan.order(h, w);
            assert_eq!(o, orders[k], "{scan:?} on {h}×{w}");
            assert_eq!(moves(&o, w), codes[k], "moves of {scan:?} on {h}×{w}");
        }
    }
}

/// LocalMamba's `local_scan` (hunto/LocalMamba): k×k windows row by row, each read row by row.
#[test]
fn local_window_scans_match_the_reference() {
    assert_eq!(Scan::parse("w2"), Some(Scan::Window { k: 2, flip: false }));
    assert_eq!(Scan::parse("w7_flip"), Some(Scan::Window { k: 7, flip: true }));
    assert_eq!(Scan::parse("v_flip"), Some(Scan::Cols { flip: true }));
    assert_eq!(Scan::parse("x"), None);
    assert_eq!(Scan::parse("w0"), None);
    // x.view(Hg, w, Wg, w).permute(Hg, Wg, w, w) on a 4×4 grid, window 2
    let want = [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15];
    assert_eq!(Scan::Window { k: 2, flip: false }.order(4, 4), want);
    let mut rev = want.to_vec();
    rev.reverse();
    assert_eq!(Scan::Window { k: 2, flip: true }.order(4, 4), rev);
    // a window as large as the grid reads it row by row; clipped edge windows keep every token once
    assert_eq!(Scan::Window { k: 7, flip: false }.order(3, 5), (0..15).collect::<Vec<_>>());
    let mut edge = Scan::Window { k: 2, flip: false }.order(3, 5);
    assert_eq!(edge[..4], [0, 1, 5, 6]);
    edge.sort();
    assert_eq!(edge, (0..15).collect::<Vec<_>>());
}

struct Few {
    batch: Vec<f32>,
    labels: Vec<i64>,
    shape: [usize; 5],
}

impl DataSource<ImageBatch> for Few {
    fn train_batch(&mut self, _step: usize, device: &Device) -> ImageBatch {
        ImageBatch::new(self.batch.clone(), self.shape, self.labels.clone(), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<ImageBatch> {
        vec![ImageBatch::new(self.batch.clone(), self.shape, self.labels.clone(), device)]
    }
}

#[test]
fn a_tiny_model_overfits_a_handful_of_images() {
    let img = InputShape::image(1, 8, 8);
    let n = 8;
    let ad = Device::flex().autodiff();
    ad.seed(3);
    let noise = Tensor::<2>::random([n, 64], Distribution::Normal(0.0, 1.0), &Device::flex());
    let mut data = Few { batch: vals(noise), labels: (0..n as i64).map(|i| i % 4).collect(), shape: [n, 1, 1, 8, 8] };
    let cfg = S4ndConfig { d_model: 16, depth: 1, d_state: 4, ..S4ndConfig::new(img, 4) };
    let model = VisionConfig::S4nd(cfg).init(&ad);
    let tc =
        TrainConfig { steps: 150, epochs: 1, lr: 1e-2, warmup_steps: 5, progress: false, ..TrainConfig::default() };
    let fitted = fit(model, &mut data, &tc, &ad).unwrap();
    let last = fitted.state.epochs.last().unwrap();
    assert_eq!(last.eval_accuracy, 1.0, "random images with random labels are memorised");
    assert!(last.eval_loss < 0.1, "eval loss {}", last.eval_loss);
}

/// Every (i, j, k) with i < a, j < b, k < c, in row-major order.
fn grid3(a: usize, b: usize, c: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |k| (i, j, k))))
}

/// The tubelet embedding (burn's `Conv3d`, stride = kernel) against a direct sum, values and
/// input gradient: video models see nothing if this scrambles pixels.
#[test]
fn tubelet_embedding_equals_a_direct_sum() {
    use ssm_vision::models::{PatchEmbed, PatchProj};
    let dev = dev();
    let (b, c, t, h, w, d, tt, p) = (2, 1, 4, 8, 8, 3, 2, 4);
    let input = InputShape { channels: c, frames: t, height: h, width: w };
    let pe = PatchEmbed::new(input, d, p, tt, &dev);
    let xt = Tensor::<5>::random([b, c, t, h, w], Distribution::Normal(0.0, 1.0), &dev);
    let y = vals(pe.forward(xt.clone()));
    let PatchProj::Video(conv) = &pe.proj else { panic!("a video input needs a Conv3d") };
    let wt = vals(conv.weight.val()); // [d, c, tt, p, p]
    let bias = conv.bias.as_ref().map(|b| vals(b.val())).unwrap_or(vec![0.0; d]);
    let xv = vals(xt);
    let (to, ho, wo) = (t / tt, h / p, w / p);
    let mut want = vec![0f32; b * d * to * ho * wo];
    for bi in 0..b {
        for o in 0..d {
            for (ti, hi, wi) in grid3(to, ho, wo) {
                let mut s = bias[o];
                for ci in 0..c {
                    for (dt, dy, dx) in grid3(tt, p, p) {
                        let xi = (((bi * c + ci) * t + ti * tt + dt) * h + hi * p + dy) * w + wi * p + dx;
                        let wi_ = (((o * c + ci) * tt + dt) * p + dy) * p + dx;
                        s += xv[xi] * wt[wi_];
                    }
                }
                want[(((bi * d + o) * to + ti) * ho + hi) * wo + wi] = s;
            }
        }
    }
    assert!(max_diff(&y, &want) < 1e-4, "Conv3d tubelets differ from the direct sum by {}", max_diff(&y, &want));
    // Weight gradient of sum(y · r): Σ over batch and positions of r · x (what training uses).
    let adev = dev.clone().autodiff();
    let pe = PatchEmbed::new(input, d, p, tt, &adev);
    let PatchProj::Video(conv) = &pe.proj else { unreachable!() };
    let xa = Tensor::<5>::from_data(TensorData::new(xv.clone(), [b, c, t, h, w]), &adev);
    let r: Vec<f32> = (0..want.len()).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
    let rt = Tensor::<5>::from_data(TensorData::new(r.clone(), [b, d, to, ho, wo]), &adev);
    let grads = (pe.forward(xa) * rt).sum().backward();
    let g = vals(conv.weight.grad(&grads).unwrap());
    let mut gw = vec![0f32; d * c * tt * p * p];
    for bi in 0..b {
        for o in 0..d {
            for (ti, hi, wi) in grid3(to, ho, wo) {
                let rv = r[(((bi * d + o) * to + ti) * ho + hi) * wo + wi];
                for ci in 0..c {
                    for (dt, dy, dx) in grid3(tt, p, p) {
                        let xi = (((bi * c + ci) * t + ti * tt + dt) * h + hi * p + dy) * w + wi * p + dx;
                        gw[(((o * c + ci) * tt + dt) * p + dy) * p + dx] += rv * xv[xi];
                    }
                }
            }
        }
    }
    assert!(max_diff(&g, &gw) < 1e-3, "Conv3d weight gradient differs by {}", max_diff(&g, &gw));
}

/// PlainMamba's mixer against a direct reading of the paper: one selective scan per snake, each
/// over x, Δ, B + Θ[move] and C taken in that snake's order, put back and summed.
#[test]
fn plain_mamba_mixer_equals_four_explicit_scans() {
    use burn::tensor::Int;
    use burn::tensor::activation::silu;
    use ssm_core::kernels::{ScanArgs, selective_scan};
    let img = InputShape::image(1, 12, 16);
    let cfg = PlainMambaConfig { d_model: 8, depth: 1, d_state: 4, ..PlainMambaConfig::new(img, 3) };
    let ssm_vision::models::VisionModel::PlainMamba(mut m) = VisionConfig::PlainMamba(cfg).init(&dev()) else {
        panic!("not a PlainMamba")
    };
    // Θ as large as B, so a misplaced direction term shows.
    m.layers[0].mamba.direction_bs =
        burn::module::Param::from_tensor(Tensor::random([5, 4], Distribution::Normal(0.0, 1.0), &dev()));
    let mixer = &m.layers[0].mamba;
    let (h, w, d) = (3, 4, 8);
    let xin = Tensor::<3>::random([2, h * w, d], Distribution::Normal(0.0, 1.0), &dev());
    let got = mixer.forward(xin.clone(), h, w);

    let xz = mixer.in_proj.forward(xin);
    let e = xz.dims()[2] / 2;
    let (xi, z) = (xz.clone().narrow(2, 0, e), xz.narrow(2, e, e));
    let xc = silu(mixer.conv2d.forward(xi.swap_dims(1, 2).reshape([2, e, h, w]))).reshape([2, e, h * w]);
    let x_dbl = mixer.x_proj.forward(xc.clone().swap_dims(1, 2)).swap_dims(1, 2); // [B, r + 2N, L]
    let r = x_dbl.dims()[1] - 8;
    let dt = mixer.dt_proj.forward(x_dbl.clone().narrow(1, 0, r).swap_dims(1, 2)).swap_dims(1, 2);
    let mut y = Tensor::<3>::zeros([2, e, h * w], &dev());
    for scan in Scan::SNAKES {
        let order = scan.order(h, w);
        let idx = |v: &[usize]| {
            Tensor::<1, Int>::from_data(
                TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [v.len()]),
                &dev(),
            )
        };
        let take = |t: Tensor<3>| t.select(2, idx(&order));
        let theta = mixer.direction_bs.val().select(0, idx(&moves(&order, w))).swap_dims(0, 1).unsqueeze_dim::<3>(0);
        let args = ScanArgs::new(
            take(xc.clone()),
            take(dt.clone()),
            mixer.a_log.val().exp().neg(),
            take(x_dbl.clone().narrow(1, r, 4)) + theta,
            take(x_dbl.clone().narrow(1, r + 4, 4)),
        )
        .d(mixer.d.val())
        .delta_bias(mixer.dt_bias.val())
        .softplus(true);
        let mut inverse = vec![0; h * w];
        for (t, &p) in order.iter().enumerate() {
            inverse[p] = t;
        }
        y = y + selective_scan(args).y.select(2, idx(&inverse));
    }
    let want = mixer.out_proj.forward(y.swap_dims(1, 2) * silu(z));
    let diff = max_diff(&vals(got), &vals(want));
    assert!(diff < 1e-5, "PlainMamba mixer vs four explicit scans: {diff}");
}
