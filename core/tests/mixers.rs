//! Every mixer: parallel == step, chunked forward == one forward, training reduces the loss.

mod common;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use common::*;
use ssm_core::blocks::{BlockConfig, Combine};
use ssm_core::mixers::{Mixer, MixerConfig, MixerState};

fn configs(d: usize) -> Vec<MixerConfig> {
    let mut v: Vec<MixerConfig> =
        ["mamba", "mamba2", "s4d", "attention"].iter().map(|n| MixerConfig::by_name(n, d).unwrap()).collect();
    for c in v.iter_mut() {
        match c {
            MixerConfig::S4d(c) => c.d_state = 8,
            // 4 heads in 2 groups, chunks of 4 (13- and 20-step inputs span several, padded)
            MixerConfig::Mamba2(c) => {
                c.d_state = 8;
                c.head_dim = 8;
                c.n_groups = 2;
                c.chunk_size = 4;
            }
            _ => {}
        }
    }
    v
}

fn x(b: usize, l: usize, d: usize, dev: &Device) -> Tensor<3> {
    Tensor::random([b, l, d], Distribution::Normal(0.0, 1.0), dev)
}

fn state_parts(s: &MixerState) -> Vec<Tensor<3>> {
    match s {
        MixerState::Mamba(m) => vec![m.conv.clone(), m.ssm.clone()],
        MixerState::Mamba2(m) => vec![m.conv.clone(), m.ssm.clone().flatten(2, 3)],
        MixerState::S4d(m) => {
            let x = m.clone().resolve();
            vec![x.re, x.im]
        }
        MixerState::Attention(kv) => vec![kv.k.clone().flatten(1, 2), kv.v.clone().flatten(1, 2)],
    }
}

#[test]
fn parallel_equals_step_by_step() {
    let dev = Device::flex();
    for cfg in configs(16) {
        dev.seed(1);
        let m: Mixer = cfg.init(&dev);
        let input = x(2, 13, 16, &dev);
        let (y, last) = m.forward(input.clone(), None);
        let mut s = m.init_state(2, &dev);
        let mut ys = Vec::new();
        for t in 0..13 {
            let (yt, s2) = m.step(input.clone().narrow(1, t, 1).squeeze_dim(1), s);
            s = s2;
            ys.push(yt.unsqueeze_dim::<3>(1));
        }
        assert_close(&format!("{} step outputs", m.name()), &Tensor::cat(ys, 1), &y, 1e-4);
        for (a, b) in state_parts(&s).iter().zip(state_parts(&last)) {
            assert_close(&format!("{} step state", m.name()), a, &b, 1e-4);
        }
    }
}

#[test]
fn mamba2_chunk_size_does_not_change_the_result() {
    let dev = Device::flex();
    let mut outs = Vec::new();
    for chunk in [1, 3, 8, 64] {
        dev.seed(5);
        let MixerConfig::Mamba2(mut c) = MixerConfig::by_name("mamba2", 16).unwrap() else { unreachable!() };
        c.d_state = 8;
        c.head_dim = 8;
        c.chunk_size = chunk;
        let m = c.init(&dev);
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
fn forward_continues_from_a_state() {
    let dev = Device::flex();
    for cfg in configs(16) {
        dev.seed(2);
        let m: Mixer = cfg.init(&dev);
        let input = x(2, 20, 16, &dev);
        let (y, last) = m.forward(input.clone(), None);
        let (y1, s1) = m.forward(input.clone().narrow(1, 0, 7), None);
        let (y2, s2) = m.forward(input.narrow(1, 7, 13), Some(s1));
        assert_close(&format!("{} chunked outputs", m.name()), &Tensor::cat(vec![y1, y2], 1), &y, 1e-4);
        for (a, b) in state_parts(&s2).iter().zip(state_parts(&last)) {
            assert_close(&format!("{} chunked state", m.name()), a, &b, 1e-4);
        }
    }
}

#[test]
fn a_few_training_steps_reduce_the_loss() {
    let dev = Device::flex().autodiff();
    for cfg in configs(16) {
        dev.seed(3);
        let name = cfg.name();
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
    let mut cfg = BlockConfig::new(MixerConfig::by_name("mamba", 8).unwrap());
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

#[test]
#[should_panic(expected = "has width")]
fn wrong_width_is_reported() {
    let dev = Device::flex();
    let m = MixerConfig::by_name("mamba", 8).unwrap().init(&dev);
    m.forward(x(1, 4, 6, &dev), None);
}

#[test]
fn unknown_mixer_name_is_an_error() {
    assert!(MixerConfig::by_name("lstm", 8).unwrap_err().contains("unknown mixer"));
}
