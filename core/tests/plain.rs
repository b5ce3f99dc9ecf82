//! Plain-Rust blocks against the tensor blocks they copy: a residual block with a norm and an
//! MLP, stepped over a sequence, for the first registered family that has a plain step.

use burn::tensor::{Device, Distribution, Tensor};
use ssm_core::blocks::BlockConfig;
use ssm_core::fixtures::values_f64 as values;
use ssm_core::layers::NormKind;
use ssm_core::mixers::{MIXER_NAMES, MixerConfig};
use ssm_core::plain::{PlainBlock, PlainSpec, Precision};

#[test]
fn plain_block_equals_block_step() {
    let device = Device::flex();
    device.seed(11);
    let (b, l, d) = (3, 9, 16);
    let block_cfg = MIXER_NAMES.iter().find_map(|name| {
        let cfg =
            BlockConfig { mlp_hidden: Some(2 * d), ..BlockConfig::new(MixerConfig::small_by_name(name, d).ok()?) };
        let m = cfg.init(&device).mixer;
        m.plain_step(&m.init_state(1, &device), Precision::F32).is_some().then_some(cfg)
    });
    let Some(cfg) = block_cfg else {
        eprintln!("skipped: no registered family has a plain step");
        return;
    };
    for norm in [NormKind::Rms, NormKind::Layer] {
        let cfg = BlockConfig { norm, norm_eps: 1e-3, ..cfg.clone() };
        let block = cfg.init(&device);
        let mut state = block.mixer.init_state(b, &device);
        let spec = PlainSpec { batch: b, precision: Precision::F32, layer_eps: Some(cfg.norm_eps) };
        let mut plain = PlainBlock::new(&block, &state, spec).expect("a causal block with an MLP");
        let mut err = 0f64;
        for _ in 0..l {
            let x: Tensor<2> = Tensor::random([b, d], Distribution::Normal(0.0, 1.0), &device);
            let mut xp: Vec<f32> = values(x.clone()).iter().map(|&v| v as f32).collect();
            let (y, next) = block.step(x, state);
            state = next;
            plain.step(&mut xp);
            for (p, q) in xp.iter().zip(values(y)) {
                err = err.max((f64::from(*p) - q).abs());
            }
        }
        assert!(err <= 1e-4, "{norm:?}: plain block vs block step differ by {err:.2e}");
    }
}
