//! Family-specific checks (Mamba-2's chunk size), every registered family training a block,
//! and the bidirectional block. The registry-wide contract is `conformance.rs`.

mod common;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use common::*;
use ssm_core::blocks::{BlockConfig, Combine};
use ssm_core::mixers::{DEFAULT_MIXER, MIXER_NAMES, Mamba2Config, MixerConfig, MixerSpec, SequenceMixer};

fn x(b: usize, l: usize, d: usize, dev: &Device) -> Tensor<3> {
    Tensor::random([b, l, d], Distribution::Normal(0.0, 1.0), dev)
}

#[test]
fn mamba2_chunk_size_does_not_change_the_result() {
    let dev = Device::flex();
    let mut outs = Vec::new();
    for chunk in [1, 3, 8, 64] {
        dev.seed(5);
        // 4 heads in 2 groups; 17 steps span several chunks, the last one padded
        let m =
            Mamba2Config::new(16).with_d_state(8).with_head_dim(8).with_n_groups(2).with_chunk_size(chunk).init(&dev);
        dev.seed(6);
        let (y, s) = m.forward(x(2, 17, 16, &dev), None);
        outs.push((chunk, y, s.ssm));
    }
    for (chunk, y, s) in &outs[1..] {
        assert_close(&format!("mamba2 chunk {chunk} outputs"), y, &outs[0].1, 1e-4);
        assert_close(&format!("mamba2 chunk {chunk} state"), s, &outs[0].2, 1e-4);
    }
}

#[test]
fn a_few_training_steps_reduce_the_loss() {
    let dev = Device::flex().autodiff();
    for name in MIXER_NAMES {
        dev.seed(3);
        let cfg = MixerConfig::small_by_name(name, 16).unwrap();
        let mut block = BlockConfig::new(cfg).init(&dev);
        let input = x(4, 12, 16, &dev);
        // Target: the input shifted by one step (needs memory of the previous token).
        let target = Tensor::cat(vec![Tensor::zeros([4, 1, 16], &dev), input.clone().narrow(1, 0, 11)], 1);
        let mut opt = AdamWConfig::new().init();
        let loss_of = |b: &ssm_core::blocks::ResidualBlock| {
            (b.forward(input.clone(), None).0 - target.clone()).powi_scalar(2).mean()
        };
        let first = vals(&loss_of(&block.valid()))[0];
        for _ in 0..40 {
            let loss = loss_of(&block);
            let grads = GradientsParams::from_grads(loss.backward(), &block);
            block = opt.step(1e-2, block, grads);
        }
        let last = vals(&loss_of(&block.valid()))[0];
        assert!(last < 0.85 * first, "{name}: loss {first} → {last} did not fall");
    }
}

#[test]
fn bidirectional_block_sees_the_future() {
    let dev = Device::flex();
    let mut cfg = BlockConfig::new(MixerConfig::by_name(DEFAULT_MIXER, 8).unwrap());
    cfg.bidirectional = Some(Combine::Sum);
    let b = cfg.init(&dev);
    let input = x(1, 10, 8, &dev);
    let (y, _) = b.forward(input.clone(), None);
    // Changing the last token changes the first output (non-causal).
    let changed = Tensor::cat(vec![input.clone().narrow(1, 0, 9), input.clone().narrow(1, 9, 1) + 1.0], 1);
    let (y2, _) = b.forward(changed, None);
    let d = vals(&(y.clone().narrow(1, 0, 1) - y2.narrow(1, 0, 1)).abs().sum())[0];
    assert!(d > 1e-6, "bidirectional output at t=0 ignored the last token");
    // And equals the explicit sum of two scans: x + f(norm x) + flip(b(flip(norm x))).
    let h = b.norm.forward(input.clone());
    let (yf, _) = b.mixer.forward(h.clone(), None);
    let (yb, _) = b.mixer_rev.as_ref().unwrap().forward(h.flip([1]), None);
    assert_close("bidirectional = two scans", &y, &(input + yf + yb.flip([1])), 1e-5);
}
