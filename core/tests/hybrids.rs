//! The named hybrids: each builds at its default depth with its paper's layer pattern, runs, and
//! its recurrent step matches its parallel form.

mod common;
use burn::tensor::{Device, Distribution, Tensor};
use common::*;
use ssm_core::backbone::{BackboneConfig, LayerTemplate, parse_layout};
use ssm_core::hybrids::{HYBRIDS, hybrid};
use ssm_core::mixers::{AttentionConfig, HawkConfig, MambaConfig, MixerSpec, S4dConfig};

fn names(c: &BackboneConfig) -> Vec<&'static str> {
    c.layers.iter().map(|b| b.mixer.name()).collect()
}

fn option(c: &BackboneConfig, layer: usize, key: &str) -> serde_json::Value {
    serde_json::to_value(&c.layers[layer].mixer).unwrap()[key].clone()
}

fn build(name: &str, depth: Option<usize>) -> BackboneConfig {
    parse_layout(name, depth, &LayerTemplate::new(16)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_hybrid_runs_and_steps_like_its_parallel_form() {
    let dev = Device::flex();
    for h in HYBRIDS {
        let cfg = build(h.name, None);
        assert_eq!(cfg.layers.len(), h.default_depth, "{}", h.name);
        let bb = cfg.init(&dev);
        let x = Tensor::<3>::random([2, 7, 16], Distribution::Normal(0.0, 1.0), &dev);
        let (y, _) = bb.forward(x.clone(), None);
        let mut states = bb.init_state(2, &dev);
        let mut ys = Vec::new();
        for t in 0..7 {
            let (yt, s) = bb.step(x.clone().narrow(1, t, 1).reshape([2, 16]), states);
            ys.push(yt.unsqueeze_dim(1));
            states = s;
        }
        assert_close(&format!("{} step vs forward", h.name), &Tensor::cat(ys, 1), &y, 1e-4);
        assert!(!h.doc.is_empty());
    }
}

#[test]
fn each_hybrid_has_its_papers_layer_pattern() {
    let (m, a) = (MambaConfig::NAME, AttentionConfig::NAME);
    let jamba = build("jamba", Some(16));
    let att: Vec<usize> = (0..16).filter(|&i| jamba.layers[i].mixer.name() == a).collect();
    assert_eq!(att, [4, 12], "Jamba: attention 1 layer in 8");
    assert!((0..16).all(|i| jamba.layers[i].moe.is_some() == (i % 2 == 1)), "Jamba: MoE every other layer");

    let mf = build("mambaformer", None);
    assert_eq!(names(&mf), [m, a, m, a, m]);
    assert_eq!(option(&mf, 1, "positions"), "Absent", "MambaFormer: no positional encoding");
    assert!(mf.layers.iter().all(|b| b.mlp_hidden.is_none() && b.moe.is_none()));

    let spade = build("spade", Some(5));
    assert_eq!(names(&spade), [S4dConfig::NAME, a, a, a, a]);
    assert!((1..5).all(|i| option(&spade, i, "window") == 128), "SPADE: local attention above");

    for name in ["moe-mamba", "blackmamba"] {
        let c = build(name, None);
        assert!(c.layers.iter().all(|b| b.mixer.name() == m && b.moe.as_ref().is_some_and(|e| e.top_k == 1)), "{name}");
    }

    let griffin = build("griffin", None);
    let h = HawkConfig::NAME;
    assert_eq!(names(&griffin), [h, h, a, h, h, a]);
    assert_eq!(option(&griffin, 2, "window"), 1024);
    assert!(griffin.layers.iter().all(|b| b.mlp_hidden.is_some()), "Griffin: an MLP in every block");
    // A user's option overrides the hybrid's.
    let mut t = LayerTemplate::new(16);
    t.mixer_options = vec![format!("{a}.window=256")];
    let g = hybrid("griffin").unwrap().backbone(Some(3), &t).unwrap();
    assert_eq!(option(&g, 2, "window"), 256);
}

#[test]
fn local_attention_sees_only_its_window() {
    let dev = Device::flex();
    let mut t = LayerTemplate::new(16);
    t.mixer_options = vec![format!("{}.window=3", AttentionConfig::NAME)];
    let bb = parse_layout(&format!("{}+none", AttentionConfig::NAME), Some(1), &t).unwrap().init(&dev);
    let x = Tensor::<3>::random([1, 10, 16], Distribution::Normal(0.0, 1.0), &dev);
    let (y, _) = bb.forward(x.clone(), None);
    // Changing token 2 changes outputs 2..4 only (window 3: a token and the two before it).
    let x2 =
        Tensor::cat(vec![x.clone().narrow(1, 0, 2), x.clone().narrow(1, 2, 1).mul_scalar(-3.0), x.narrow(1, 3, 7)], 1);
    let (y2, _) = bb.forward(x2, None);
    let diff: Vec<f64> =
        (0..10).map(|i| vals(&(y.clone().narrow(1, i, 1) - y2.clone().narrow(1, i, 1)).abs().max())[0]).collect();
    for (i, d) in diff.iter().enumerate() {
        assert_eq!(*d > 1e-6, (2..5).contains(&i), "position {i}: change {d:e}");
    }
}

#[test]
fn a_hybrid_too_shallow_for_one_of_its_families_still_builds() {
    // Griffin at depth 2 has no attention layer: its window option has nothing to set.
    let g = build("griffin", Some(2));
    assert_eq!(names(&g), [HawkConfig::NAME, HawkConfig::NAME]);
    // A user's option for a family the stack lacks is still an error.
    let mut t = LayerTemplate::new(16);
    t.mixer_options = vec![format!("{}.window=8", AttentionConfig::NAME)];
    assert!(hybrid("griffin").unwrap().backbone(Some(2), &t).is_err());
}

#[test]
fn a_window_of_one_token_attends_to_itself_only() {
    let dev = Device::flex();
    let mut t = LayerTemplate::new(16);
    t.mixer_options = vec![format!("{}.window=1", AttentionConfig::NAME)];
    let bb = parse_layout(&format!("{}+none", AttentionConfig::NAME), Some(1), &t).unwrap().init(&dev);
    let x = Tensor::<3>::random([1, 5, 16], Distribution::Normal(0.0, 1.0), &dev);
    let (y, _) = bb.forward(x.clone(), None);
    let mut states = bb.init_state(1, &dev);
    for i in 0..5 {
        let (yi, s) = bb.step(x.clone().narrow(1, i, 1).reshape([1, 16]), states);
        states = s;
        assert_close(&format!("token {i}"), &yi.unsqueeze_dim(1), &y.clone().narrow(1, i, 1), 1e-5);
    }
}
