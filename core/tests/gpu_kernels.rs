//! The CubeCL kernels (`--features vulkan|cuda`) against the CPU kernels: the same inputs on
//! burn-flex and on `$SSM_TEST_DEVICE`, outputs and every gradient within 1e-4 (relative to the
//! CPU value's scale). Shapes cross the kernels' tiles: several time chunks with a ragged last
//! one, rows that do not fill a cube, groups, a state width that is not a power of two.
//! Every registered mixer is also compared, forward and input gradient, so Mamba's scan and
//! Mamba-2's chunked SSD (matmuls plus the recurrence kernel) are covered through the models.
//!
//! CI: `SSM_TEST_DEVICE=vulkan:cpu cargo test --release -p ssm-core --features vulkan --test
//! gpu_kernels` (Mesa's lavapipe). On the CPU test device there is nothing to compare: skipped.

mod common;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::*;
use ssm_core::ComplexTensor;
use ssm_core::kernels::{ScanArgs, has_gpu_kernels, linear_recurrence, linear_recurrence_complex, selective_scan};
use ssm_core::mixers::{MIXER_NAMES, MixerConfig};

const TOL: f64 = 1e-4;
/// Whole mixers also run ops without a kernel of ours (the FFT convolution, matmuls, norms),
/// whose f32 rounding differs between the backends.
const MIXER_TOL: f64 = 1e-3;

/// The GPU test device, or `None` (with the reason printed) when the tests run on the CPU.
fn gpu() -> Option<Device> {
    let dev = ssm_core::fixtures::test_device();
    if ssm_core::fixtures::test_device_has_f64() {
        eprintln!("SKIP: SSM_TEST_DEVICE is the CPU; set SSM_TEST_DEVICE=vulkan:cpu and build with --features vulkan");
        return None;
    }
    assert!(has_gpu_kernels(&dev), "{:?} should run the CubeCL kernels", dev);
    Some(dev)
}

/// The same f32 values on the CPU and on the GPU, both tracked for gradients.
struct Pair<const D: usize> {
    cpu: Tensor<D>,
    gpu: Tensor<D>,
}

fn pair<const D: usize>(r: &mut rand::rngs::StdRng, shape: [usize; D], lo: f64, hi: f64, gpu: &Device) -> Pair<D> {
    let v: Vec<f32> = vals(&rand_t(r, shape, lo, hi, &Device::flex())).iter().map(|&v| v as f32).collect();
    let data = TensorData::new(v, shape.to_vec());
    let cpu = Tensor::from_data(data.clone(), &Device::flex().autodiff()).require_grad();
    Pair { cpu, gpu: Tensor::from_data(data, &gpu.clone().autodiff()).require_grad() }
}

/// Which side of a [`Pair`] a run uses.
#[derive(Clone, Copy)]
enum Side {
    Cpu,
    Gpu,
}

impl<const D: usize> Pair<D> {
    fn on(&self, side: Side) -> Tensor<D> {
        match side {
            Side::Cpu => self.cpu.clone(),
            Side::Gpu => self.gpu.clone(),
        }
    }

    /// Its GPU gradient equals its CPU gradient (within [`TOL`]).
    fn grads_agree(&self, what: &str, gpu: &burn::tensor::Gradients, cpu: &burn::tensor::Gradients) {
        close(what, &self.gpu.grad(gpu).unwrap(), &self.cpu.grad(cpu).unwrap());
    }
}

fn close<const D: usize>(what: &str, got: &Tensor<D>, want: &Tensor<D>) {
    assert_close(what, got, want, TOL);
}

struct ScanCase {
    b: usize,
    d: usize,
    l: usize,
    n: usize,
    g: usize,
    extras: bool,
}

fn check_scan(c: &ScanCase, gpu: &Device, seed: u64) {
    let mut r = rng(seed);
    let u = pair(&mut r, [c.b, c.d, c.l], -1.0, 1.0, gpu);
    // Δ itself without softplus must be positive (a decaying state).
    let delta = if c.extras {
        pair(&mut r, [c.b, c.d, c.l], -2.0, 0.5, gpu)
    } else {
        pair(&mut r, [c.b, c.d, c.l], 0.01, 0.5, gpu)
    };
    let a = pair(&mut r, [c.d, c.n], -2.0, -0.1, gpu);
    let bm = pair(&mut r, [c.b, c.g, c.n, c.l], -1.0, 1.0, gpu);
    let cm = pair(&mut r, [c.b, c.g, c.n, c.l], -1.0, 1.0, gpu);
    let skip = pair(&mut r, [c.d], -1.0, 1.0, gpu);
    let z = pair(&mut r, [c.b, c.d, c.l], -2.0, 2.0, gpu);
    let bias = pair(&mut r, [c.d], -0.5, 0.5, gpu);
    let h0 = pair(&mut r, [c.b, c.d, c.n], -1.0, 1.0, gpu);
    let wy = pair(&mut r, [c.b, c.d, c.l], -1.0, 1.0, gpu);
    let wl = pair(&mut r, [c.b, c.d, c.n], -1.0, 1.0, gpu);
    let run = |side: Side| {
        let mut args = ScanArgs::grouped(u.on(side), delta.on(side), a.on(side), bm.on(side), cm.on(side));
        if c.extras {
            args = args.d(skip.on(side)).z(z.on(side)).delta_bias(bias.on(side)).h0(h0.on(side)).softplus(true);
        }
        let out = selective_scan(args);
        // The loss reads the final state too, so the kernel's state-gradient input is used.
        let loss = (out.y.clone() * wy.on(side).detach()).sum() + (out.last_state.clone() * wl.on(side).detach()).sum();
        (out, loss.backward())
    };
    let (oc, gc) = run(Side::Cpu);
    let (og, gg) = run(Side::Gpu);
    let tag = format!("scan B{} D{} L{} N{} G{} extras {}", c.b, c.d, c.l, c.n, c.g, c.extras);
    close(&format!("{tag} y"), &og.y, &oc.y);
    close(&format!("{tag} last_state"), &og.last_state, &oc.last_state);
    u.grads_agree(&format!("{tag} ∂u"), &gg, &gc);
    delta.grads_agree(&format!("{tag} ∂delta"), &gg, &gc);
    bm.grads_agree(&format!("{tag} ∂B"), &gg, &gc);
    cm.grads_agree(&format!("{tag} ∂C"), &gg, &gc);
    a.grads_agree(&format!("{tag} ∂A"), &gg, &gc);
    if c.extras {
        z.grads_agree(&format!("{tag} ∂z"), &gg, &gc);
        h0.grads_agree(&format!("{tag} ∂h0"), &gg, &gc);
        skip.grads_agree(&format!("{tag} ∂D"), &gg, &gc);
        bias.grads_agree(&format!("{tag} ∂delta_bias"), &gg, &gc);
    }
}

#[test]
fn selective_scan_matches_the_cpu_kernel() {
    let Some(gpu) = gpu() else { return };
    let cases = [
        ScanCase { b: 2, d: 70, l: 37, n: 16, g: 2, extras: true },
        ScanCase { b: 1, d: 8, l: 130, n: 64, g: 1, extras: false },
        ScanCase { b: 3, d: 5, l: 1, n: 3, g: 1, extras: true },
        ScanCase { b: 1, d: 40, l: 64, n: 5, g: 4, extras: true },
        // Several checkpointed segments (64 steps at N = 16), the last one ragged.
        ScanCase { b: 1, d: 20, l: 150, n: 16, g: 1, extras: true },
    ];
    for (i, c) in cases.iter().enumerate() {
        check_scan(c, &gpu, 10 + i as u64);
    }
}

#[test]
fn linear_recurrence_matches_the_cpu_kernel() {
    let Some(gpu) = gpu() else { return };
    for (i, &(b, l, ch, with_h0, reverse)) in
        [(2, 300, 70, true, false), (2, 300, 70, true, true), (1, 17, 3, false, false), (3, 1, 65, false, true)]
            .iter()
            .enumerate()
    {
        let mut r = rng(40 + i as u64);
        let a = pair(&mut r, [b, l, ch], 0.5, 1.0, &gpu);
        let x = pair(&mut r, [b, l, ch], -1.0, 1.0, &gpu);
        let h0 = pair(&mut r, [b, ch], -1.0, 1.0, &gpu);
        let w = pair(&mut r, [b, l, ch], -1.0, 1.0, &gpu);
        let tag = format!("recurrence B{b} L{l} C{ch} h0 {with_h0} reverse {reverse}");
        let run = |side: Side| {
            let out = linear_recurrence(a.on(side), x.on(side), with_h0.then(|| h0.on(side)), reverse);
            let grads = (out.clone() * w.on(side).detach()).sum().backward();
            (out, grads)
        };
        let (hc, gc) = run(Side::Cpu);
        let (hg, gg) = run(Side::Gpu);
        close(&format!("{tag} h"), &hg, &hc);
        a.grads_agree(&format!("{tag} ∂a"), &gg, &gc);
        x.grads_agree(&format!("{tag} ∂b"), &gg, &gc);
        if with_h0 {
            h0.grads_agree(&format!("{tag} ∂h0"), &gg, &gc);
        }
    }
}

#[test]
fn complex_recurrence_matches_the_cpu_kernel() {
    let Some(gpu) = gpu() else { return };
    for (i, &(b, l, ch, with_h0, reverse)) in [(2, 200, 70, true, false), (1, 33, 5, false, true)].iter().enumerate() {
        let mut r = rng(60 + i as u64);
        // |a| < 1: a decaying state, as LRU's λ.
        let [ar, ai, br, bi, w] = [(-0.7, 0.7), (-0.7, 0.7), (-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)]
            .map(|(lo, hi)| pair(&mut r, [b, l, ch], lo, hi, &gpu));
        let (h0r, h0i) = (pair(&mut r, [b, ch], -1.0, 1.0, &gpu), pair(&mut r, [b, ch], -1.0, 1.0, &gpu));
        let tag = format!("complex recurrence B{b} L{l} C{ch} h0 {with_h0} reverse {reverse}");
        let run = |side: Side| {
            let complex = |re: &Pair<3>, im: &Pair<3>| ComplexTensor::new(re.on(side), im.on(side));
            let h0 = with_h0.then(|| ComplexTensor::new(h0r.on(side), h0i.on(side)));
            let h = linear_recurrence_complex(complex(&ar, &ai), complex(&br, &bi), h0, reverse);
            let loss = (h.re.clone() * w.on(side).detach()).sum() + (h.im.clone() * w.on(side).detach()).sum();
            (h, loss.backward())
        };
        let (hc, gc) = run(Side::Cpu);
        let (hg, gg) = run(Side::Gpu);
        close(&format!("{tag} h.re"), &hg.re, &hc.re);
        close(&format!("{tag} h.im"), &hg.im, &hc.im);
        for (p, n) in [(&ar, "a.re"), (&ai, "a.im"), (&br, "b.re"), (&bi, "b.im")] {
            p.grads_agree(&format!("{tag} ∂{n}"), &gg, &gc);
        }
        if with_h0 {
            h0r.grads_agree(&format!("{tag} ∂h0.re"), &gg, &gc);
            h0i.grads_agree(&format!("{tag} ∂h0.im"), &gg, &gc);
        }
    }
}

/// Every registered mixer, built once on the CPU and copied to the GPU: the same outputs and
/// input gradients on both (a sequence of 40 crosses Mamba-2's chunks and the scan's).
#[test]
fn every_mixer_matches_its_cpu_run() {
    let Some(gpu) = gpu() else { return };
    const WIDTH: usize = 16;
    let cpu = Device::flex().autodiff();
    for name in MIXER_NAMES {
        cpu.seed(3);
        let m = MixerConfig::small_by_name(name, WIDTH).unwrap().init(&cpu);
        let mg = m.clone().to_device(&gpu.clone().autodiff());
        cpu.seed(4);
        let x = Tensor::<3>::random([2, 40, WIDTH], Distribution::Normal(0.0, 1.0), &cpu);
        let w = Tensor::<3>::random([2, 40, WIDTH], Distribution::Normal(0.0, 1.0), &cpu);
        let run = |m: &ssm_core::mixers::Mixer, dev: &Device| {
            let x = Tensor::<3>::from_data(x.to_data(), dev).require_grad();
            let w = Tensor::<3>::from_data(w.to_data(), dev);
            let (y, _) = m.forward(x.clone(), None);
            let grads = (y.clone() * w).sum().backward();
            (y, x.grad(&grads).unwrap())
        };
        let (yc, gc) = run(&m, &cpu);
        let (yg, gg) = run(&mg, &gpu.clone().autodiff());
        assert_close(&format!("{name}: output"), &yg, &yc, MIXER_TOL);
        assert_close(&format!("{name}: input gradient"), &gg, &gc, MIXER_TOL);
    }
}
