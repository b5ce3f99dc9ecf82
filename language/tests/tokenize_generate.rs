//! Tokenizers (byte, char, HuggingFace tokenizer.json), the text data split, sampling, and
//! batched generation equal to one-by-one generation.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::BlockConfig;
use ssm_core::mixers::{MIXER_NAMES, MixerConfig};
use ssm_core::train::{DataSource, Stats};
use ssm_language::data::TextData;
use ssm_language::generate::{SamplingConfig, argmax, generate, sample};
use ssm_language::{LmConfig, Tokenizer};

#[test]
fn byte_and_char_tokenizers_round_trip_and_save() {
    let text = "To be, or not to be — ça va?\n";
    let b = Tokenizer::Byte;
    let ids = b.encode(text).unwrap();
    assert_eq!(ids.len(), text.len());
    assert_eq!(b.decode(&ids), text);
    let c = Tokenizer::char_level(text);
    let ids = c.encode(text).unwrap();
    assert_eq!(ids.len(), text.chars().count());
    assert_eq!(c.decode(&ids), text);
    assert!(c.encode("xyz").unwrap_err().to_string().contains("'x'"));
    let dir = std::env::temp_dir().join(format!("ssm-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    c.save(&dir).unwrap();
    let c2 = Tokenizer::load(&dir).unwrap().expect("saved tokenizer");
    assert_eq!(c2.encode(text).unwrap(), ids);
    assert_eq!(c2.vocab_size(), c.vocab_size());
    std::fs::remove_dir_all(&dir).ok();
}

/// A small BPE tokenizer.json in the format the GPT-NeoX tokenizer uses (byte-level BPE).
const BPE_JSON: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "post_processor": null,
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "he": 8, "ll": 9, "hell": 10, "hello": 11, "Ġw": 12},
            "merges": ["h e", "l l", "he ll", "hell o", "Ġ w"]}
}"#;

#[test]
fn huggingface_tokenizer_json_loads_encodes_and_saves() {
    let dir = std::env::temp_dir().join(format!("ssm-hftok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, BPE_JSON).unwrap();
    let t = Tokenizer::from_spec(path.to_str().unwrap(), "").unwrap();
    let ids = t.encode("hello world").unwrap();
    assert_eq!(ids, vec![11, 12, 3, 6, 2, 7]);
    assert_eq!(t.decode(&ids), "hello world");
    let out = dir.join("saved");
    std::fs::create_dir_all(&out).unwrap();
    t.save(&out).unwrap();
    let t2 = Tokenizer::load(&out).unwrap().unwrap();
    assert_eq!(t2.encode("hello world").unwrap(), ids);
    std::fs::write(&path, "{ not json").unwrap();
    let e = Tokenizer::from_spec(path.to_str().unwrap(), "").err().unwrap();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn text_split_is_90_10_and_bits_per_byte_follow_the_loss() {
    let text: String = (0..2000).map(|i| if i % 7 == 0 { '\n' } else { (b'a' + (i % 26) as u8) as char }).collect();
    let tok = Tokenizer::char_level(&text);
    let d = TextData::split(&text, |t| tok.encode(t), 16, 4, 0).unwrap();
    assert_eq!(d.train.len(), 1800);
    assert_eq!(d.val.len(), 200);
    let m = d.eval_metrics(&Stats { loss_sum: 2.0 * 10.0, correct: 0, count: 10, items: 10 });
    let bpb = m["val_bits_per_byte"].as_f64().unwrap();
    assert!((bpb - 2.0 / std::f64::consts::LN_2).abs() < 1e-12, "{bpb}");
    assert!(TextData::split("abc", |t| tok.encode(t), 16, 4, 0).is_err());
}

#[test]
fn sampling_rules() {
    let cfg = |t: f32, k: Option<usize>, p: Option<f32>, rep: f32| SamplingConfig {
        temperature: t,
        top_k: k,
        top_p: p,
        repetition_penalty: rep,
        ..SamplingConfig::default()
    };
    let logits = vec![1.0f32, 3.0, 2.9, -1.0];
    let mut r = StdRng::seed_from_u64(0);
    assert_eq!(sample(&mut logits.clone(), &[], &cfg(0.0, None, None, 1.0), &mut r), 1);
    // top-k 1 and a tiny top-p are greedy whatever the temperature
    for _ in 0..20 {
        assert_eq!(sample(&mut logits.clone(), &[], &cfg(5.0, Some(1), None, 1.0), &mut r), 1);
        assert_eq!(sample(&mut logits.clone(), &[], &cfg(5.0, None, Some(0.01), 1.0), &mut r), 1);
    }
    // top-k 2 only ever gives the two best
    for _ in 0..50 {
        let t = sample(&mut logits.clone(), &[], &cfg(10.0, Some(2), None, 1.0), &mut r);
        assert!(t == 1 || t == 2);
    }
    // the repetition penalty demotes a seen token: 3.0 / 2 < 2.9
    assert_eq!(sample(&mut logits.clone(), &[1], &cfg(0.0, None, None, 2.0), &mut r), 2);
    // seeded: the same seed gives the same draws
    let draw = |seed| {
        let mut r = StdRng::seed_from_u64(seed);
        (0..32).map(|_| sample(&mut logits.clone(), &[], &cfg(1.0, None, None, 1.0), &mut r)).collect::<Vec<_>>()
    };
    assert_eq!(draw(3), draw(3));
    assert_eq!(argmax(&[0.0, 2.0, 2.0]), 1);
}

#[test]
fn batched_generation_equals_one_by_one() {
    let dev = Device::flex();
    for mixer in MIXER_NAMES {
        dev.seed(11);
        let m = MixerConfig::small_by_name(mixer, 16).unwrap();
        let cfg = LmConfig {
            vocab_size: 20,
            backbone: BackboneConfig::uniform(BlockConfig::new(m), 2),
            tie_embeddings: false,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        };
        let model = cfg.init(&dev);
        let prompts = vec![vec![1, 2, 3, 4, 5], vec![7, 3], vec![9, 9, 9, 1, 2, 3, 4]];
        let sc = SamplingConfig { max_new_tokens: 6, ..SamplingConfig::default() };
        let batched = generate(&model, &prompts, &sc, &dev, &mut |_, _| true);
        for (p, b) in prompts.iter().zip(&batched) {
            let single = generate(&model, std::slice::from_ref(p), &sc, &dev, &mut |_, _| true).remove(0);
            assert_eq!(&single, b, "{mixer}: batched vs single for prompt {p:?}");
            assert_eq!(b.len(), 6);
        }
        // a callback returning false stops that sequence
        let mut n = 0;
        let out = generate(&model, &prompts[..1], &sc, &dev, &mut |_, _| {
            n += 1;
            n < 3
        });
        assert_eq!(out[0].len(), 3, "{mixer}: stop from the callback");
    }
}
