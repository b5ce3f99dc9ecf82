//! `ssm-kernels`: benchmark of the SSM kernel layer (and, until the model apps land, the demo).
//!
//! Times the selective scan (forward, forward + backward), the real and complex diagonal
//! recurrences and the causal FFT convolution on burn-flex, beside the tensor-op reference
//! path, and prints throughput as state updates per second. `--device` runs the ops that have
//! CubeCL kernels (the selective scan, the real recurrence) on a GPU instead, beside the
//! reference on the same device; every timed call ends with a device sync.

use burn::backend::Dispatch;
use burn::tensor::{Device, Distribution, Tensor};
use clap::Parser;
use ssm_apps::median_secs;
use ssm_core::kernels::ops::SsmKernels;
use ssm_core::kernels::{
    ScanArgs, causal_conv, linear_recurrence, linear_recurrence_complex, reference, selective_scan,
};
use ssm_core::monarch::monarch_causal_conv;
use ssm_core::{ComplexTensor, kernels};

#[derive(Parser, Debug)]
#[command(about = "Benchmark the SSM kernels (selective scan, linear recurrence, FFT convolution)")]
struct Args {
    /// Batch size.
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    batch: usize,
    /// Channels (D).
    #[arg(long, default_value_t = 512, value_parser = ssm_apps::positive)]
    dim: usize,
    /// Sequence length (L).
    #[arg(long, default_value_t = 1024, value_parser = ssm_apps::positive)]
    len: usize,
    /// State size (N).
    #[arg(long, default_value_t = 16, value_parser = ssm_apps::positive)]
    state: usize,
    /// Channels of the recurrence benchmark (default: D·N, the scan's state count).
    #[arg(long, value_parser = ssm_apps::positive)]
    rec_channels: Option<usize>,
    /// Length of the FFT-convolution benchmark.
    #[arg(long, default_value_t = 4096, value_parser = ssm_apps::positive)]
    conv_len: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = ssm_apps::positive)]
    reps: usize,
    #[command(flatten)]
    machine: ssm_apps::Machine,
    /// Small sizes, one repetition: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Instead of the suite: the causal convolution by the rustfft kernel beside its GEMM
    /// (FlashFFTConv / Monarch) form at these lengths (batch 1, --sweep-channels channels,
    /// kernel as long as the input), forward, median of --reps.
    #[arg(long, value_delimiter = ',')]
    fft_sweep: Option<Vec<usize>>,
    /// Channels of --fft-sweep.
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    sweep_channels: usize,
}

/// `--fft-sweep`: milliseconds of both convolution paths per length and their ratio.
fn fft_sweep(lens: &[usize], h: usize, reps: usize, json: Option<&std::path::Path>) {
    let dev = Device::flex();
    println!("threads: {}", rayon::current_num_threads());
    println!("{:>8} {:>16} {:>16} {:>14}", "length", "rustfft ms", "GEMM (Monarch) ms", "GEMM / rustfft");
    let mut rows = Vec::new();
    for &l in lens {
        let u = rand3([1, h, l], -1.0, 1.0, &dev);
        let k: Tensor<2> = Tensor::random([h, l], Distribution::Uniform(-1.0, 1.0), &dev);
        let fft = median_secs(reps, || drop(causal_conv(u.clone(), k.clone())));
        let gemm = median_secs(reps, || drop(monarch_causal_conv(u.clone(), k.clone())));
        println!("{l:>8} {:>16.2} {:>16.2} {:>14.2}", fft * 1e3, gemm * 1e3, gemm / fft);
        rows.push(serde_json::json!({"len": l, "channels": h, "rustfft_seconds": fft, "monarch_seconds": gemm}));
    }
    if let Some(path) = json
        && let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap_or_default())
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}

struct Row {
    name: String,
    shape: String,
    secs: f64,
    work: f64,
    unit: &'static str,
}

fn rand3(s: [usize; 3], lo: f64, hi: f64, d: &Device) -> Tensor<3> {
    Tensor::random(s, Distribution::Uniform(lo, hi), d)
}

fn scan_args(b: usize, d: usize, l: usize, n: usize, dev: &Device, grad: bool) -> ScanArgs {
    let g = |t: Tensor<3>| if grad { t.require_grad() } else { t };
    let u = g(rand3([b, d, l], -1.0, 1.0, dev));
    let delta = g(rand3([b, d, l], -3.0, 0.0, dev));
    let a: Tensor<2> = Tensor::random([d, n], Distribution::Uniform(-4.0, -0.5), dev);
    let bm = g(rand3([b, n, l], -1.0, 1.0, dev));
    let cm = g(rand3([b, n, l], -1.0, 1.0, dev));
    let z = g(rand3([b, d, l], -1.0, 1.0, dev));
    let dv: Tensor<1> = Tensor::random([d], Distribution::Uniform(-1.0, 1.0), dev);
    let bias: Tensor<1> = Tensor::random([d], Distribution::Uniform(-1.0, 1.0), dev);
    let a = if grad { a.require_grad() } else { a };
    ScanArgs::new(u, delta, a, bm, cm).d(dv).z(z).delta_bias(bias).softplus(true)
}

/// Fresh leaves for another backward (burn consumes a graph's tape on backward).
fn leaf<const D: usize>(t: &Tensor<D>) -> Tensor<D> {
    t.clone().detach().require_grad()
}

fn fresh(x: &ScanArgs) -> ScanArgs {
    let mut y = x.clone();
    (y.u, y.delta, y.a, y.b, y.c) = (leaf(&x.u), leaf(&x.delta), leaf(&x.a), leaf(&x.b), leaf(&x.c));
    y.z = x.z.as_ref().map(leaf);
    y
}

fn main() {
    let mut args: Args = ssm_apps::parse_with_defaults(&[]);
    if args.quick {
        (args.batch, args.dim, args.len, args.state, args.conv_len, args.reps) = (2, 64, 256, 16, 512, 1);
    }
    let dev = match args.machine.device() {
        Ok(d) => d,
        Err(e) => return ssm_apps::exit_on_error(Err(e)),
    };
    if let Some(lens) = &args.fft_sweep {
        return fft_sweep(lens, args.sweep_channels, args.reps, args.json.as_deref());
    }
    println!("device: {}, threads: {}", args.machine.device, rayon::current_num_threads());
    println!("{:<34} {:<24} {:>10} {:>12}  unit", "op", "shape", "ms", "G/s");
    // Each group's rows print as soon as they are measured (a later failure keeps them).
    let mut rows: Vec<Row> = Vec::new();
    let mut groups: Vec<fn(&Args, &Device) -> Vec<Row>> = vec![scan_rows, recurrence_rows];
    if kernels::has_kernels(&dev) {
        groups.extend([scan_backward_row as fn(&Args, &Device) -> Vec<Row>, conv_rows]);
    }
    for group in groups {
        for r in group(&args, &dev) {
            println!(
                "{:<34} {:<24} {:>10.2} {:>12.3}  {}",
                r.name,
                r.shape,
                r.secs * 1e3,
                r.work / r.secs / 1e9,
                r.unit
            );
            rows.push(r);
        }
    }
    let ratio = |a: &str, b: &str| {
        let f = |n: &str| rows.iter().find(|r| r.name == n).map(|r| r.secs);
        Some(f(b)? / f(a)?)
    };
    if let Some(r) = ratio("selective_scan fwd (kernel)", "selective_scan fwd (reference)") {
        println!("kernel / reference speed-up: selective scan {r:.1}x");
    }
    if let Some(r) = ratio("causal_conv fwd (kernel)", "causal_conv fwd (burn-signal ref)") {
        println!("kernel / reference speed-up: causal conv {r:.1}x");
    }
    if let Some(path) = args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({"op": r.name, "shape": r.shape, "seconds": r.secs, "per_second": r.work / r.secs, "unit": r.unit}))
            .collect();
        let doc =
            serde_json::json!({"device": args.machine.device, "threads": rayon::current_num_threads(), "results": v});
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// Median seconds of `f` on `dev`, each call ended by a device sync (GPU work is queued).
fn timed(reps: usize, dev: &Device, mut f: impl FnMut()) -> f64 {
    median_secs(reps, || {
        f();
        dev.sync().expect("device sync");
    })
}

/// Reads `t` back once after the timings: a device that failed (a buffer over its limits, a
/// lost device) says so here instead of leaving the timing of work that never ran.
fn read_back<const D: usize>(what: &str, t: Tensor<D>) {
    if let Err(e) = t.try_into_data() {
        ssm_apps::exit_on_error(Err(anyhow::anyhow!("{what}: the device failed: {e:?}")));
    }
}

fn row(name: &str, shape: &str, secs: f64, work: f64, unit: &'static str) -> Row {
    Row { name: name.into(), shape: shape.into(), secs, work, unit }
}

/// The selective scan forward, forward + backward, and kernel against reference.
fn scan_rows(args: &Args, dev: &Device) -> Vec<Row> {
    let (b, d, l, n, reps) = (args.batch, args.dim, args.len, args.state, args.reps);
    let adev = dev.clone().autodiff();
    let updates = (b * d * l * n) as f64;
    let shape = format!("B={b} D={d} L={l} N={n}");
    eprintln!("selective scan forward …");
    let x = scan_args(b, d, l, n, dev, false);
    let fwd = timed(reps, dev, || drop(selective_scan(x.clone())));
    eprintln!("selective scan forward+backward …");
    let xa = scan_args(b, d, l, n, &adev, true);
    let w = rand3([b, d, l], -1.0, 1.0, &adev);
    let both = timed(reps, dev, || {
        let o = selective_scan(fresh(&xa));
        drop((o.y * w.clone()).sum().backward());
    });
    read_back("selective_scan", selective_scan(x.clone()).y);
    let xb = fresh(&xa);
    let grads = (selective_scan(xb.clone()).y * w.clone()).sum().backward();
    read_back("selective_scan backward", xb.u.grad(&grads).expect("∂u"));
    // Kernel vs the tensor-op reference at a size the reference can hold in memory.
    let (rb, rd, rl) = (2.min(b), 64.min(d), 256.min(l));
    let small = scan_args(rb, rd, rl, n, dev, false);
    let rshape = format!("B={rb} D={rd} L={rl} N={n}");
    let rupd = (rb * rd * rl * n) as f64;
    let kernel = timed(reps, dev, || drop(selective_scan(small.clone())));
    let refr = timed(reps, dev, || drop(reference::selective_scan(small.clone())));
    vec![
        row("selective_scan fwd", &shape, fwd, updates, "state-updates/s"),
        row("selective_scan fwd+bwd", &shape, both, updates, "state-updates/s"),
        row("selective_scan fwd (kernel)", &rshape, kernel, rupd, "state-updates/s"),
        row("selective_scan fwd (reference)", &rshape, refr, rupd, "state-updates/s"),
    ]
}

/// The backward kernel alone (no autodiff graph, no output concatenation): CPU only, where the
/// kernel takes the whole scan (skip, gate, softplus) in one call.
fn scan_backward_row(args: &Args, dev: &Device) -> Vec<Row> {
    let (b, d, l, n) = (args.batch, args.dim, args.len, args.state);
    let x = scan_args(b, d, l, n, dev, false);
    let dy = rand3([b, d, l], -1.0, 1.0, dev);
    let dlast = rand3([b, d, n], -1.0, 1.0, dev);
    let secs = timed(args.reps, dev, || {
        let p = |t: &Tensor<3>| t.clone().into_dispatch();
        let one = || Tensor::<1>::zeros([1], dev).into_dispatch();
        let opts =
            kernels::ops::HAS_D | kernels::ops::HAS_Z | kernels::ops::HAS_DELTA_BIAS | kernels::ops::DELTA_SOFTPLUS;
        drop(<Dispatch as SsmKernels>::selective_scan_backward(
            p(&x.u),
            p(&x.delta),
            x.a.clone().into_dispatch(),
            x.b.clone().into_dispatch(),
            x.c.clone().into_dispatch(),
            x.d.clone().unwrap().into_dispatch(),
            p(x.z.as_ref().unwrap()),
            x.delta_bias.clone().unwrap().into_dispatch(),
            one(),
            opts,
            p(&dy),
            p(&dlast),
        ))
    });
    let shape = format!("B={b} D={d} L={l} N={n}");
    vec![row("selective_scan bwd (kernel only)", &shape, secs, (b * d * l * n) as f64, "state-updates/s")]
}

/// The real recurrence forward and forward + backward over C = D·N channels; on the CPU also
/// the complex one.
fn recurrence_rows(args: &Args, dev: &Device) -> Vec<Row> {
    let (b, l, reps) = (args.batch, args.len, args.reps);
    let c = args.rec_channels.unwrap_or(args.dim * args.state);
    let adev = dev.clone().autodiff();
    let updates = (b * l * c) as f64;
    eprintln!("linear recurrence …");
    let rshape = format!("B={b} L={l} C={c}");
    let a = rand3([b, l, c], -1.0, 1.0, dev);
    let xb = rand3([b, l, c], -1.0, 1.0, dev);
    let fwd = timed(reps, dev, || drop(linear_recurrence(a.clone(), xb.clone(), None, false)));
    let aa = rand3([b, l, c], -1.0, 1.0, &adev).require_grad();
    let xa = rand3([b, l, c], -1.0, 1.0, &adev).require_grad();
    let both = timed(reps, dev, || drop(linear_recurrence(leaf(&aa), leaf(&xa), None, false).sum().backward()));
    read_back("linear_recurrence", linear_recurrence(a.clone(), xb.clone(), None, false));
    let a1 = leaf(&aa);
    let grads = linear_recurrence(a1.clone(), leaf(&xa), None, false).sum().backward();
    read_back("linear_recurrence backward", a1.grad(&grads).expect("∂a"));
    let mut rows = vec![
        row("linear_recurrence fwd", &rshape, fwd, updates, "state-updates/s"),
        row("linear_recurrence fwd+bwd", &rshape, both, updates, "state-updates/s"),
    ];
    if kernels::has_kernels(dev) {
        let ca = ComplexTensor::new(a.clone(), rand3([b, l, c], -1.0, 1.0, dev));
        let cb = ComplexTensor::new(xb, rand3([b, l, c], -1.0, 1.0, dev));
        let secs = timed(reps, dev, || drop(linear_recurrence_complex(ca.clone(), cb.clone(), None, false)));
        rows.push(row("linear_recurrence_complex fwd", &rshape, secs, updates, "state-updates/s"));
    }
    rows
}

/// The causal FFT convolution: kernel, burn-signal reference, kernel forward + backward.
fn conv_rows(args: &Args, dev: &Device) -> Vec<Row> {
    let (b, d, cl, reps) = (args.batch, args.dim, args.conv_len, args.reps);
    let adev = dev.clone().autodiff();
    eprintln!("FFT convolution …");
    let u = rand3([b, d, cl], -1.0, 1.0, dev);
    let k: Tensor<2> = Tensor::random([d, cl], Distribution::Uniform(-1.0, 1.0), dev);
    let cshape = format!("B={b} H={d} L={cl}");
    let samples = (b * d * cl) as f64;
    let kernel = timed(reps, dev, || drop(causal_conv(u.clone(), k.clone())));
    let refr = timed(reps, dev, || drop(reference::causal_conv(kernels::ConvArgs { u: u.clone(), k: k.clone() })));
    let ua = rand3([b, d, cl], -1.0, 1.0, &adev).require_grad();
    let ka: Tensor<2> = Tensor::random([d, cl], Distribution::Uniform(-1.0, 1.0), &adev).require_grad();
    let both = timed(reps, dev, || drop(causal_conv(leaf(&ua), leaf(&ka)).sum().backward()));
    vec![
        row("causal_conv fwd (kernel)", &cshape, kernel, samples, "samples/s"),
        row("causal_conv fwd (burn-signal ref)", &cshape, refr, samples, "samples/s"),
        row("causal_conv fwd+bwd", &cshape, both, samples, "samples/s"),
    ]
}
