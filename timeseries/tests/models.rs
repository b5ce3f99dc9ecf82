//! Forecaster shapes, DLinear's decomposition, a model overfitting a tiny series, the ensemble's
//! mean, S-Mamba's dropout, and the classifier's invariance to right padding.

use burn::module::Module;
use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ssm_core::blocks::BlockConfig;
use ssm_core::fixtures::{max_abs_diff, values_f32 as vals};
use ssm_core::mixers::{DEFAULT_MIXER, MIXER_NAMES, MixerConfig};
use ssm_core::train::{DataSource, TrainConfig, fit};
use ssm_timeseries::models::{
    ClassifierConfig, Cycle, ForecastBatch, ForecastConfig, Normalised, SMambaConfig, mean_forecast,
};

fn dev() -> Device {
    Device::flex()
}

/// A registered mixer at the temporal model's width (64) or the test's (16).
fn mixer(name: &str) -> MixerConfig {
    MixerConfig::small_by_name(name, 16).unwrap()
}

#[test]
fn every_forecaster_maps_lookback_to_horizon() {
    let (b, l, h, v) = (2, 32, 8, 5);
    let x = Tensor::<3>::random([b, l, v], Distribution::Normal(0.0, 1.0), &dev());
    for name in ["s-mamba", "simba", "dlinear", "temporal"] {
        let mut cfg = ForecastConfig::by_name(name, l, h, v, mixer(DEFAULT_MIXER)).unwrap();
        if let ForecastConfig::SMamba(c) = &mut cfg {
            c.d_model = 16;
            c.d_ff = 16;
        }
        if let ForecastConfig::Simba(c) = &mut cfg {
            c.d_model = 16;
        }
        let m = cfg.init(&dev());
        assert_eq!(m.forward(x.clone()).dims(), [b, h, v], "{name}");
    }
    for name in MIXER_NAMES {
        let m = ForecastConfig::by_name("temporal", l, h, v, mixer(name)).unwrap().init(&dev());
        assert_eq!(m.forward(x.clone()).dims(), [b, h, v], "temporal/{name}");
    }
    assert!(ForecastConfig::by_name("arima", l, h, v, mixer(DEFAULT_MIXER)).is_err());
}

/// The ensemble's forecast is the mean of its members' (one member: its own forecast).
#[test]
fn an_ensemble_forecasts_the_mean_of_its_members() {
    let (b, l, h, v) = (3, 24, 6, 2);
    let x = Tensor::<3>::random([b, l, v], Distribution::Normal(0.0, 1.0), &dev());
    let starts = [0, 5, 11];
    let mut sm = SMambaConfig::new(l, h);
    (sm.d_model, sm.d_ff) = (8, 8);
    let a = ForecastConfig::SMamba(sm).init_forecaster(4, v, &dev());
    let d = ForecastConfig::by_name("dlinear", l, h, v, mixer(DEFAULT_MIXER)).unwrap().init_forecaster(4, v, &dev());
    let (fa, fd) = (vals(a.forward(x.clone(), &starts)), vals(d.forward(x.clone(), &starts)));
    let mean: Vec<f32> = fa.iter().zip(&fd).map(|(p, q)| (p + q) / 2.0).collect();
    assert!(max_abs_diff(&fa, &fd) > 1e-3, "two different members");
    assert!(max_abs_diff(&vals(mean_forecast(&[a.clone(), d], x.clone(), &starts)), &mean) < 1e-5);
    assert!(max_abs_diff(&vals(mean_forecast(&[a], x, &starts)), &fa) < 1e-6);
}

/// S-Mamba's dropout acts while training only: two training forwards differ, the validation
/// model's do not.
#[test]
fn s_mamba_drops_out_while_training_only() {
    let (l, h, v) = (16, 4, 3);
    let adev = dev().autodiff();
    let x = Tensor::<3>::random([2, l, v], Distribution::Normal(0.0, 1.0), &adev);
    let mut c = SMambaConfig::new(l, h);
    (c.d_model, c.d_ff, c.dropout) = (8, 8, 0.5);
    let m = c.init(&adev);
    assert!(max_abs_diff(&vals(m.forward(x.clone())), &vals(m.forward(x.clone()))) > 1e-4);
    let valid = m.valid();
    let x = x.inner();
    assert_eq!(vals(valid.forward(x.clone())), vals(valid.forward(x)));
}

/// S-Mamba as it was before its dropout layers (the same record fields otherwise).
mod before_dropout {
    use burn::module::Module;
    use burn::nn::{LayerNorm, Linear};
    use ssm_core::mixers::Mamba;

    #[derive(Module, Debug)]
    pub struct EncoderLayer {
        pub mamba: Mamba,
        pub mamba_r: Mamba,
        pub conv1: Linear,
        pub conv2: Linear,
        pub norm1: LayerNorm,
        pub norm2: LayerNorm,
    }

    #[derive(Module, Debug)]
    pub struct SMamba {
        pub enc_embedding: Linear,
        pub layers: Vec<EncoderLayer>,
        pub norm: LayerNorm,
        pub projector: Linear,
    }
}

/// A checkpoint written before S-Mamba had dropout layers loads into today's model.
#[test]
fn s_mamba_checkpoints_from_before_dropout_load() {
    let (l, h, v) = (16, 4, 3);
    let mut c = SMambaConfig::new(l, h);
    (c.d_model, c.d_ff) = (8, 8);
    let m = c.init(&dev());
    let old = before_dropout::SMamba {
        enc_embedding: m.enc_embedding.clone(),
        layers: m
            .layers
            .iter()
            .map(|e| before_dropout::EncoderLayer {
                mamba: e.mamba.clone(),
                mamba_r: e.mamba_r.clone(),
                conv1: e.conv1.clone(),
                conv2: e.conv2.clone(),
                norm1: e.norm1.clone(),
                norm2: e.norm2.clone(),
            })
            .collect(),
        norm: m.norm.clone(),
        projector: m.projector.clone(),
    };
    let path = std::env::temp_dir().join(format!("ssm-smamba-before-dropout-{}.bpk", std::process::id()));
    old.save_file(&path).unwrap();
    let loaded = c.init(&dev()).try_load_file(&path).expect("an S-Mamba record without dropout layers loads");
    let x = Tensor::<3>::random([2, l, v], Distribution::Normal(0.0, 1.0), &dev());
    // (the record's tensors are read lazily from the file)
    assert_eq!(vals(loaded.forward(x.clone())), vals(m.forward(x)));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn dlinear_decomposition_adds_back_up() {
    let m = ForecastConfig::by_name("dlinear", 30, 6, 3, mixer(DEFAULT_MIXER)).unwrap().init(&dev());
    let ssm_timeseries::models::ForecastNet::Dlinear(d) = m else { unreachable!() };
    let x = Tensor::<3>::random([2, 30, 3], Distribution::Normal(0.0, 1.0), &dev());
    let (s, t) = d.decompose(x.clone());
    let diff = max_abs_diff(&vals(s + t.clone()), &vals(x.clone()));
    assert!(diff < 1e-5);
    // a constant series is all trend
    let c = Tensor::<3>::full([1, 30, 3], 2.5, &dev());
    let (s, t) = d.decompose(c);
    assert!(vals(s).iter().all(|v| v.abs() < 1e-5));
    assert!(vals(t).iter().all(|v| (v - 2.5).abs() < 1e-5));
}

struct Tiny {
    x: Vec<f32>,
    y: Vec<f32>,
    l: usize,
    h: usize,
}

impl Tiny {
    fn batch(&self, device: &Device) -> ForecastBatch {
        ForecastBatch {
            x: Tensor::from_data(TensorData::new(self.x.clone(), [4, self.l, 2]), device),
            y: Tensor::from_data(TensorData::new(self.y.clone(), [4, self.h, 2]), device),
            starts: (0..4).map(|w| w * (self.l + self.h)).collect(),
            targets: vec![0, 1],
        }
    }
}

impl DataSource<ForecastBatch> for Tiny {
    fn train_batch(&mut self, _step: usize, device: &Device) -> ForecastBatch {
        self.batch(device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<ForecastBatch> {
        vec![self.batch(device)]
    }
}

#[test]
fn s_mamba_overfits_a_tiny_series() {
    let (l, h) = (24, 8);
    // four windows of a two-variable noisy series
    let noise = vals(Tensor::<2>::random([4 * (l + h), 2], Distribution::Normal(0.0, 1.0), &dev()));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for w in 0..4 {
        for t in 0..l + h {
            let row = &noise[(w * (l + h) + t) * 2..(w * (l + h) + t) * 2 + 2];
            if t < l { x.extend_from_slice(row) } else { y.extend_from_slice(row) }
        }
    }
    let mut data = Tiny { x, y, l, h };
    let ad = Device::flex().autodiff();
    ad.seed(1);
    let cfg = ForecastConfig::SMamba(SMambaConfig { d_model: 32, d_ff: 32, ..SMambaConfig::new(l, h) });
    let tc = TrainConfig {
        steps: 200,
        epochs: 1,
        lr: 3e-3,
        warmup_steps: 5,
        weight_decay: 0.0,
        progress: false,
        ..TrainConfig::default()
    };
    let fitted = fit(cfg.init_forecaster(0, 2, &ad), &mut data, &tc, &ad).unwrap();
    let first = fitted.state.losses[0].1;
    let last = fitted.state.epochs.last().unwrap().eval_loss;
    assert!(last < 0.1 * first, "MSE {first} → {last}");
}

#[test]
fn the_cycle_is_taken_out_of_the_lookback_and_put_back_into_the_forecast() {
    let (w, v, l, h) = (5, 2, 7, 3);
    let q: Vec<f32> = (0..w * v).map(|i| i as f32).collect();
    let cycle = Cycle { q: Param::from_tensor(Tensor::from_data(TensorData::new(q.clone(), [w, v]), &dev())) };
    // Q[(s + offset + k) mod W] for windows starting at rows 3 and 9.
    let got = vals(cycle.at(&[3, 9], 2, 4));
    let want: Vec<f32> = [3usize, 9]
        .iter()
        .flat_map(|s| (0..4).flat_map(move |k| (0..v).map(move |j| ((s + 2 + k) % w, j))))
        .map(|(r, j)| q[r * v + j])
        .collect();
    assert_eq!(got, want);
    // forward = restore(net(x̃ − Q_lookback) + Q_horizon), x̃ the instance-normalised lookback,
    // checked against the bare network.
    let cfg = ForecastConfig::by_name("dlinear", l, h, v, mixer(DEFAULT_MIXER)).unwrap();
    let mut m = cfg.init_forecaster(w, v, &dev());
    m.cycle = Some(cycle);
    let x = Tensor::<3>::random([2, l, v], Distribution::Normal(0.0, 1.0), &dev());
    let starts = [3, 9];
    let c = m.cycle.as_ref().unwrap();
    let n = Normalised::new(x.clone());
    let want = n.restore(m.net.forward(n.x.clone() - c.at(&starts, 0, l)) + c.at(&starts, l, h));
    assert!(max_abs_diff(&vals(m.forward(x, &starts)), &vals(want)) < 1e-6);
    assert!(cfg.init_forecaster(1, v, &dev()).cycle.is_none(), "a one-row cycle is no cycle");
}

#[test]
fn classifier_ignores_right_padding() {
    let block = BlockConfig::new(mixer(DEFAULT_MIXER));
    let m = ClassifierConfig { dims: 3, classes: 4, block, layers: 2 }.init(&dev());
    let short = Tensor::<3>::random([1, 5, 3], Distribution::Normal(0.0, 1.0), &dev());
    let alone = m.forward(short.clone(), Tensor::ones([1, 5, 1], &dev()));
    let padded = Tensor::cat(vec![short, Tensor::random([1, 4, 3], Distribution::Normal(0.0, 9.0), &dev())], 1);
    let mask = Tensor::cat(vec![Tensor::ones([1, 5, 1], &dev()), Tensor::zeros([1, 4, 1], &dev())], 1);
    let with_pad = m.forward(padded, mask);
    let d = max_abs_diff(&vals(alone), &vals(with_pad));
    assert!(d < 1e-5, "padding changed the logits by {d}");
}
