//! Backbones as data (layouts, per-family options, hybrids) and the shared mixture-of-experts
//! layer. Mixer names come from the registry, never spelled here.

mod common;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use common::*;
use ssm_core::backbone::{BackboneConfig, LayerTemplate, parse_layout};
use ssm_core::blocks::BlockConfig;
use ssm_core::layers::MoeConfig;
use ssm_core::mixers::{DEFAULT_MIXER, MIXER_NAMES, MixerConfig, MixerError};
use ssm_core::models::{TokenModelConfig, TokenTensors};
use ssm_core::tasks::SyntheticTask;
use ssm_core::train::Trainable;

/// A family whose canonical block has an MLP (a Transformer block), and one without.
fn with_and_without_mlp() -> (&'static str, &'static str) {
    let wants = |n: &str| MixerConfig::by_name(n, 8).unwrap().wants_mlp();
    let with = MIXER_NAMES.iter().copied().find(|n| wants(n)).expect("a registered family with an MLP block");
    let without = MIXER_NAMES.iter().copied().find(|n| !wants(n)).expect("a registered family without one");
    (with, without)
}

#[test]
fn a_jamba_layout_is_a_configuration() {
    let (att, ssm) = with_and_without_mlp();
    // Jamba's period of 8: attention 1 in 8 layers, MoE every other layer.
    let period = format!("{ssm}+mlp,{ssm}+moe,{ssm}+mlp,{ssm}+moe,{att}+mlp,{ssm}+moe,{ssm}+mlp,{ssm}+moe");
    let cfg = parse_layout(&period, Some(16), &LayerTemplate::new(16)).unwrap();
    assert_eq!(cfg.layers.len(), 16);
    let attention = cfg.layers.iter().filter(|b| b.mixer.name() == att).count();
    let moe: Vec<usize> = (0..16).filter(|&i| cfg.layers[i].moe.is_some()).collect();
    assert_eq!(attention, 2, "attention 1 in 8");
    assert_eq!(moe, (0..16).filter(|i| i % 2 == 1).collect::<Vec<_>>(), "MoE every other layer");
    assert!(cfg.layers.iter().all(|b| b.mlp_hidden.is_some() != b.moe.is_some()), "one channel mixer each");
    // The description parses back to the same stack.
    let again = parse_layout(&cfg.describe(), None, &LayerTemplate::new(16)).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&cfg).unwrap());
    let bb = cfg.init(&Device::flex());
    assert_eq!(bb.blocks.len(), 16);
    let (y, states, aux) =
        bb.forward_aux(Tensor::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &Device::flex()), None);
    assert_eq!((y.dims(), states.len()), ([2, 5, 16], 16));
    assert!(vals(&aux.expect("MoE layers give a load-balancing loss"))[0] > 0.0);
}

#[test]
fn repeats_cycle_and_canonical_blocks() {
    let (att, ssm) = with_and_without_mlp();
    let cfg = parse_layout(&format!("{ssm}*3,{att}"), Some(8), &LayerTemplate::new(8)).unwrap();
    let names: Vec<&str> = cfg.layers.iter().map(|b| b.mixer.name()).collect();
    assert_eq!(names, [ssm, ssm, ssm, att, ssm, ssm, ssm, att]);
    assert!(cfg.layers[3].mlp_hidden == Some(32) && cfg.layers[0].mlp_hidden.is_none(), "canonical blocks");
    assert_eq!(cfg.describe(), format!("{ssm}*3,{att}+mlp,{ssm}*3,{att}+mlp"));
    let none = parse_layout(&format!("{att}+none"), None, &LayerTemplate::new(8)).unwrap();
    assert!(none.layers[0].mlp_hidden.is_none());
}

#[test]
fn layout_errors_are_clear() {
    let t = LayerTemplate::new(8);
    let e = |l: &str| parse_layout(l, None, &t).unwrap_err().to_string();
    assert!(e("no-such-mixer").contains("unknown mixer 'no-such-mixer'"));
    assert!(e(&format!("{DEFAULT_MIXER}*x")).contains("bad repeat count"));
    assert!(e(&format!("{DEFAULT_MIXER}+lstm")).contains("unknown channel mixer 'lstm'"));
    assert!(e(&format!("{DEFAULT_MIXER},,{DEFAULT_MIXER}")).contains("empty item"));
}

#[test]
fn options_reach_the_families_that_have_them() {
    let (att, ssm) = with_and_without_mlp();
    let first_option = |name: &str| MixerConfig::by_name(name, 8).unwrap().option_names()[0].clone();
    let key = first_option(ssm);
    let value = serde_json::to_value(MixerConfig::by_name(ssm, 8).unwrap()).unwrap()[&key].clone();
    let mut t = LayerTemplate::new(8);
    t.mixer_options = vec![format!("{ssm}.{key}={value}")];
    let cfg = parse_layout(&format!("{ssm},{att}"), None, &t).unwrap();
    assert_eq!(serde_json::to_value(&cfg.layers[0].mixer).unwrap()[&key], value);
    t.mixer_options = vec!["no_such_key=1".into()];
    let err = parse_layout(&format!("{ssm},{att}"), None, &t).unwrap_err();
    assert!(matches!(err, MixerError::UnknownOption { .. }), "{err}");
}

#[test]
fn blocks_saved_before_moe_existed_still_parse() {
    let mixer = serde_json::to_value(MixerConfig::by_name(DEFAULT_MIXER, 8).unwrap()).unwrap();
    let old =
        serde_json::json!({"mixer": mixer, "norm": "Rms", "norm_eps": 1e-5, "mlp_hidden": null, "bidirectional": null});
    let b: BlockConfig = serde_json::from_value(old).unwrap();
    assert!(b.moe.is_none() && b.mixer.name() == DEFAULT_MIXER);
}

/// Top-k routing and the load-balancing loss against a direct computation on the host.
#[test]
fn moe_routes_each_token_to_its_top_k_experts() {
    let dev = Device::flex();
    dev.seed(11);
    let moe = MoeConfig::new(4, 2, 6).init(5, &dev);
    let x: Tensor<2> = Tensor::random([7, 5], Distribution::Normal(0.0, 1.0), &dev);
    let (y, aux) = moe.forward(x.clone());
    let logits = vals(&moe.router.forward(x.clone()));
    let outs: Vec<Vec<f64>> = moe.experts.iter().map(|e| vals(&e.forward(x.clone()))).collect();
    let (mut want, mut load, mut mean_p) = (vec![0.0; 35], [0.0f64; 4], [0.0f64; 4]);
    for t in 0..7 {
        let row = &logits[t * 4..t * 4 + 4];
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        let p: Vec<f64> = row.iter().map(|v| v.exp() / z).collect();
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
        let top = &order[..2];
        let norm: f64 = top.iter().map(|&e| p[e]).sum();
        for &e in top {
            load[e] += 1.0 / 14.0;
            for j in 0..5 {
                want[t * 5 + j] += p[e] / norm * outs[e][t * 5 + j];
            }
        }
        for e in 0..4 {
            mean_p[e] += p[e] / 7.0;
        }
    }
    assert!(rel_err(&vals(&y), &want) < 1e-5, "MoE output vs direct top-2 mixture");
    let aux_want = 0.01 * 4.0 * (0..4).map(|e| load[e] * mean_p[e]).sum::<f64>();
    assert!((vals(&aux)[0] - aux_want).abs() < 1e-6, "load-balancing loss {} vs {aux_want}", vals(&aux)[0]);
}

#[test]
fn a_moe_model_trains_with_its_balancing_loss() {
    let dev = Device::flex().autodiff();
    dev.seed(4);
    let mut t = LayerTemplate::new(16);
    t.moe = MoeConfig::new(4, 1, 32);
    let backbone: BackboneConfig = parse_layout(&format!("{DEFAULT_MIXER}+moe"), Some(2), &t).unwrap();
    let task = SyntheticTask::InductionHeads { len: 16, vocab: 6 };
    let cfg = TokenModelConfig { vocab: task.vocab_size(), n_classes: task.vocab_size(), backbone };
    let model = cfg.init(&dev);
    let batch = TokenTensors::new(&task.batch(8, 1), &dev);
    let (loss, stats) = model.loss(&batch);
    let extra = vals(&loss.clone())[0] - stats.loss();
    assert!(extra > 0.0 && extra < 0.1, "the loss adds the balancing term: {extra}");
    let grads = loss.backward();
    let router = &model.backbone.blocks[0].moe.as_ref().unwrap().router.weight;
    let g = vals(&router.val().grad(&grads).expect("the router is trained"));
    assert!(g.iter().any(|v| v.abs() > 0.0));
    let _ = model.num_params();
}
