//! The conformance suite: every registered mixer family, by name from the registry, without
//! this file naming any. A new family gets all of it by its one registry line:
//!
//! - step == forward (outputs and the state they end in, ≤ 1e-4);
//! - state carry: forward(a) then forward(b) from its state == forward(a‖b);
//! - batch states: per-sequence states stacked (`cat_batch`) and a batch state split
//!   (`split_batch`) continue exactly as the batch does;
//! - gradients: autodiff against central finite differences, for the input and every parameter;
//! - save → load round trip (burn record and safetensors);
//! - a family's plain-Rust step, where it has one, equals its tensor `step` from a state;
//! - a clear error for a wrong width, an empty sequence, another family's state, an unknown or
//!   malformed option.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ssm_core::fixtures::values_f64 as values;
use ssm_core::mixers::{MIXER_NAMES, Mixer, MixerConfig, MixerError, MixerState};
use ssm_core::plain::Precision;

const D: usize = 16;
const TOL: f64 = 1e-4;

fn max_abs_diff(a: &Tensor<3>, b: &Tensor<3>) -> f64 {
    ssm_core::fixtures::max_abs_diff(&values(a.clone()), &values(b.clone()))
}

/// `$SSM_TEST_DEVICE` (default cpu): CI runs this suite on lavapipe too.
fn dev() -> Device {
    ssm_core::fixtures::test_device()
}

/// The device RNG is global: tests running in parallel would interleave their draws between a
/// `seed` and the draws it is meant to fix. Seeding and drawing happen under this lock, so every
/// test sees the same parameters and inputs however the tests are scheduled.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    draw()
}

fn mixer(name: &str, device: &Device) -> Mixer {
    seeded(device, 7, || MixerConfig::small_by_name(name, D).unwrap().init(device))
}

fn input(b: usize, l: usize, seed: u64, device: &Device) -> Tensor<3> {
    seeded(device, seed, || Tensor::random([b, l, D], Distribution::Normal(0.0, 1.0), device))
}

/// Outputs of running `step` over every position of `x` from `state`, and the state after.
fn stepwise(m: &Mixer, x: Tensor<3>, mut state: MixerState) -> (Tensor<3>, MixerState) {
    let [b, l, _] = x.dims();
    let mut ys = Vec::with_capacity(l);
    for t in 0..l {
        let (y, s) = m.step(x.clone().narrow(1, t, 1).reshape([b, D]), state);
        ys.push(y.unsqueeze_dim::<3>(1));
        state = s;
    }
    (Tensor::cat(ys, 1), state)
}

/// Two states of `batch` sequences are the same state when the mixer continues identically
/// from them.
fn assert_same_state(m: &Mixer, batch: usize, a: MixerState, b: MixerState, what: &str) {
    let probe = input(batch, 5, 99, &dev());
    let (ya, _) = m.forward(probe.clone(), Some(a));
    let (yb, _) = m.forward(probe, Some(b));
    let err = max_abs_diff(&ya, &yb);
    assert!(err <= TOL, "{}: {what}: continuing from the two states differs by {err:.2e}", m.name());
}

#[test]
fn registry_names_build_and_round_trip_through_json() {
    assert!(!MIXER_NAMES.is_empty());
    for (i, name) in MIXER_NAMES.iter().enumerate() {
        assert!(!MIXER_NAMES[..i].contains(name), "{name} registered twice");
        let cfg = MixerConfig::by_name(name, D).unwrap();
        assert_eq!(cfg.name(), *name);
        assert_eq!(cfg.d_model(), D);
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["mixer"], *name, "the saved config is tagged with the name");
        let back: MixerConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json, "{name}: JSON round trip");
        let m = cfg.init(&dev());
        assert_eq!((m.name(), m.d_model()), (*name, D));
    }
    let err = MixerConfig::by_name("no-such-mixer", D).unwrap_err().to_string();
    assert!(err.contains("unknown mixer 'no-such-mixer'") && err.contains(MIXER_NAMES[0]), "{err}");
}

#[test]
fn step_equals_forward() {
    let device = dev();
    for name in MIXER_NAMES {
        let m = mixer(name, &device);
        let x = input(2, 11, 1, &device);
        let (y, s_par) = m.forward(x.clone(), None);
        let (y_step, s_step) = stepwise(&m, x, m.init_state(2, &device));
        let err = max_abs_diff(&y, &y_step);
        assert!(err <= TOL, "{name}: step vs forward outputs differ by {err:.2e}");
        assert_same_state(&m, 2, s_par, s_step, "final state of forward vs of steps");
    }
}

#[test]
fn plain_steps_equal_step() {
    let device = dev();
    let (b, l) = (2, 11);
    for name in MIXER_NAMES {
        let m = mixer(name, &device);
        // from the state a parallel forward over a prefix ends in
        let (_, start) = m.forward(input(b, 5, 4, &device), None);
        let Some(mut plain) = m.plain_step(&start, Precision::F32) else { continue };
        let x = input(b, l, 3, &device);
        let (y, _) = stepwise(&m, x.clone(), start);
        let (xv, yv) = (values(x), values(y));
        let at = |bi: usize, t: usize| (bi * l + t) * D..(bi * l + t + 1) * D;
        let mut err = 0f64;
        for t in 0..l {
            let xt: Vec<f32> = (0..b).flat_map(|bi| xv[at(bi, t)].iter().map(|&v| v as f32)).collect();
            let mut yt = vec![0f32; b * D];
            plain.step(&xt, &mut yt);
            for bi in 0..b {
                for (p, q) in yt[bi * D..(bi + 1) * D].iter().zip(&yv[at(bi, t)]) {
                    err = err.max((f64::from(*p) - q).abs());
                }
            }
        }
        assert!(err <= TOL, "{name}: plain step vs step outputs differ by {err:.2e}");
    }
}

#[test]
fn state_carries_across_chunks() {
    let device = dev();
    for name in MIXER_NAMES {
        let m = mixer(name, &device);
        let x = input(2, 13, 2, &device);
        let (whole, s_whole) = m.forward(x.clone(), None);
        let (ya, sa) = m.forward(x.clone().narrow(1, 0, 6), None);
        let (yb, sb) = m.forward(x.narrow(1, 6, 7), Some(sa));
        let err = max_abs_diff(&whole, &Tensor::cat(vec![ya, yb], 1));
        assert!(err <= TOL, "{name}: forward(a) then forward(b) vs forward(a‖b): {err:.2e}");
        assert_same_state(&m, 2, s_whole, sb, "state after a‖b vs after a then b");
    }
}

#[test]
fn batch_states_stack_and_split() {
    let device = dev();
    for name in MIXER_NAMES {
        let m = mixer(name, &device);
        let x = input(3, 7, 3, &device);
        let (_, batched) = m.forward(x.clone(), None);
        let singles: Vec<MixerState> = (0..3).map(|i| m.forward(x.clone().narrow(0, i, 1), None).1).collect();
        let stacked = MixerState::cat_batch(singles.clone()).expect("states of one family stack");
        assert_same_state(&m, 3, batched.clone(), stacked, "stacked single states vs the batch's state");
        for (i, (part, single)) in batched.split_batch().into_iter().zip(singles).enumerate() {
            assert_same_state(&m, 1, part, single, &format!("split state {i} vs sequence {i} alone"));
        }
    }
}

/// Every float parameter's gradient, in visiting order.
struct Grads<'a>(&'a Gradients, Vec<Vec<f64>>);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const R: usize>(&mut self, p: &Param<Tensor<R>>) {
        let n = p.val().shape().num_elements();
        self.1.push(p.val().grad(self.0).map_or(vec![0.0; n], values));
    }
}

/// Adds `delta` to element `index` of the `target`-th float parameter.
struct Nudge {
    target: usize,
    index: usize,
    delta: f64,
    seen: usize,
}

impl ModuleMapper for Nudge {
    fn map_float<const R: usize>(&mut self, p: Param<Tensor<R>>) -> Param<Tensor<R>> {
        let hit = self.seen == self.target;
        self.seen += 1;
        if !hit {
            return p;
        }
        let (index, delta) = (self.index, self.delta as f32);
        p.map(|t| {
            let shape = t.shape();
            let mut d = vec![0f32; shape.num_elements()];
            d[index] = delta;
            let bump = Tensor::<1>::from_data(TensorData::new(d, [shape.num_elements()]), &t.device());
            t.clone() + bump.reshape(shape).cast(t.dtype())
        })
    }
}

fn weighted_sum(m: &Mixer, x: Tensor<3>, w: Tensor<3>) -> Tensor<1> {
    (m.forward(x, None).0 * w).sum()
}

fn fd_matches(name: &str, what: &str, fd: f64, ad: f64) {
    let tol = 1e-2 * ad.abs().max(fd.abs()) + 2e-3;
    assert!((fd - ad).abs() <= tol, "{name}: {what}: finite difference {fd:.5} vs autodiff {ad:.5}");
}

#[test]
fn gradients_match_finite_differences() {
    let h = 1e-2;
    for name in MIXER_NAMES {
        let ad_dev = dev().autodiff();
        let m = mixer(name, &ad_dev);
        let x = input(2, 6, 4, &ad_dev).require_grad();
        let w = input(2, 6, 5, &ad_dev);
        let grads = weighted_sum(&m, x.clone(), w.clone()).backward();
        let gx = values(x.grad(&grads).expect("input gradient"));
        let mut visitor = Grads(&grads, Vec::new());
        m.visit(&mut visitor);
        // The same model and data without autodiff, for the finite differences.
        let (mv, xv, wv) = (m.valid(), x.clone().inner(), w.inner());
        let loss = |m: &Mixer, x: Tensor<3>| values(weighted_sum(m, x, wv.clone()))[0];
        for i in [0, 37, 2 * 6 * D - 1] {
            let bump = |s: f64| {
                let mut d = vec![0f32; 2 * 6 * D];
                d[i] = s as f32;
                xv.clone() + Tensor::<3>::from_data(TensorData::new(d, [2, 6, D]), &xv.device())
            };
            let fd = (loss(&mv, bump(h)) - loss(&mv, bump(-h))) / (2.0 * h);
            fd_matches(name, &format!("d/dx[{i}]"), fd, gx[i]);
        }
        for (p, g) in visitor.1.iter().enumerate() {
            // the element with the largest gradient, so the check is not lost in rounding
            let (index, &ad) = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
            let nudged = |s: f64| mv.clone().map(&mut Nudge { target: p, index, delta: s, seen: 0 });
            let fd = (loss(&nudged(h), xv.clone()) - loss(&nudged(-h), xv.clone())) / (2.0 * h);
            fd_matches(name, &format!("parameter {p}[{index}]"), fd, ad);
        }
    }
}

#[test]
fn save_and_load_round_trip() {
    let device = dev();
    let dir = std::env::temp_dir().join(format!("ssm-conformance-{}", std::process::id()));
    for name in MIXER_NAMES {
        let m = mixer(name, &device);
        let x = input(2, 5, 6, &device);
        let (y, _) = m.forward(x.clone(), None);
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        m.clone().save_file(sub.join("model.bpk")).unwrap();
        // a different initialisation to load over
        let fresh = seeded(&device, 1234, || MixerConfig::small_by_name(name, D).unwrap().init(&device));
        let loaded = fresh.clone().try_load_file(sub.join("model.bpk")).unwrap();
        assert!(max_abs_diff(&y, &loaded.forward(x.clone(), None).0) == 0.0, "{name}: burn record round trip");
        let mut store = burn::store::SafetensorsStore::from_file(sub.join("model.safetensors")).overwrite(true);
        use burn::store::ModuleSnapshot;
        m.save_into(&mut store).unwrap();
        let mut from_st = fresh;
        let mut store = burn::store::SafetensorsStore::from_file(sub.join("model.safetensors"));
        let r = from_st.load_from(&mut store).unwrap();
        assert!(r.missing.is_empty() && r.errors.is_empty(), "{name}: {:?} {:?}", r.missing, r.errors);
        assert!(max_abs_diff(&y, &from_st.forward(x, None).0) == 0.0, "{name}: safetensors round trip");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_and_options_are_clear_errors() {
    let device = dev();
    for (i, name) in MIXER_NAMES.iter().enumerate() {
        let m = mixer(name, &device);
        let wide = Tensor::<3>::zeros([1, 4, D + 1], &device);
        let err = m.try_forward(wide, None).unwrap_err();
        assert!(matches!(err, MixerError::Width { got, expected: D, .. } if got == D + 1), "{name}: {err}");
        assert!(err.to_string().contains(&format!("width {}", D + 1)), "{name}: {err}");
        let empty = Tensor::<3>::zeros([1, 0, D], &device);
        assert!(matches!(m.try_forward(empty, None), Err(MixerError::EmptySequence { .. })), "{name}");
        if let Some(other) = MIXER_NAMES.get((i + 1) % MIXER_NAMES.len()).filter(|o| *o != name) {
            let foreign = mixer(other, &device).init_state(1, &device);
            let err = m.try_step(Tensor::zeros([1, D], &device), foreign).unwrap_err();
            assert!(err.to_string().contains(&format!("state of a {other}")), "{name}: {err}");
        }
        let mut cfg = MixerConfig::by_name(name, D).unwrap();
        let err = cfg.set_option("no_such_option", "1").unwrap_err().to_string();
        assert!(err.contains("unknown option 'no_such_option'"), "{name}: {err}");
        let json = serde_json::to_value(&cfg).unwrap();
        let opts = cfg.option_names();
        let numeric = opts.iter().find(|k| json[k.as_str()].is_number()).expect("a family has a numeric setting");
        let err = cfg.set_option(numeric, "{not json and not a number").unwrap_err();
        assert!(matches!(err, MixerError::BadOption { .. }), "{name}: {err}");
        let err = MixerConfig::with_options(name, D, &["no-equals-sign".into()]).unwrap_err();
        assert!(matches!(err, MixerError::OptionSyntax(_)), "{name}: {err}");
    }
}
