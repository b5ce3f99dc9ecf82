//! ssm-tabular: the shared tables read with general options, typing and encoding, errors, and
//! every model learning a generated table.

use burn::module::Module;
use burn::tensor::Device;
use ssm_core::fixtures::data_or_skip;
use ssm_core::mixers::MixerConfig;
use ssm_core::train::{TrainConfig, fit};
use ssm_tabular::data::{CsvOptions, Kind, RawTable, Schema, Task, read_names, split_rows};
use ssm_tabular::models::mambatab::MambaTabConfig;
use ssm_tabular::models::mlp::MlpConfig;
use ssm_tabular::models::tokens::TokensConfig;
use ssm_tabular::models::{Inputs, TabularConfig, offsets};
use ssm_tabular::train::{TabularSource, predict, score};
use std::path::{Path, PathBuf};

fn adult_options(dir: &Path) -> CsvOptions {
    CsvOptions {
        header: false,
        names: Some(read_names(&dir.join("adult.names")).unwrap()),
        comment: Some("|".into()),
        strip_suffix: Some(".".into()),
        ..CsvOptions::default()
    }
}

#[test]
fn adult_is_read_with_general_options() {
    let Some(dir) = data_or_skip("tabular/adult") else { return };
    let opts = adult_options(&dir);
    let train = RawTable::read(&dir.join("adult.data"), &opts).unwrap();
    let test = RawTable::read(&dir.join("adult.test"), &opts).unwrap();
    assert_eq!((train.rows, test.rows, train.names.len()), (32_561, 16_281, 15));
    assert_eq!(train.names[0], "age");
    assert_eq!(train.names[14], "target");
    let rows: Vec<usize> = (0..train.rows).collect();
    let s = Schema::fit(&train, &rows, "target", None, &opts, 1.0, Path::new("adult.data")).unwrap();
    assert_eq!(s.task, Task::Binary);
    assert_eq!(s.classes, vec!["<=50K".to_string(), ">50K".to_string()]);
    assert_eq!((s.numeric(), s.cardinalities().len()), (6, 8));
    // `?` is missing, not a category.
    let Kind::Categorical { categories } = &s.features[1].kind else { panic!("workclass is categorical") };
    assert!(!categories.iter().any(|c| c == "?") && categories.contains(&"Private".to_string()));
    // Test labels end with '.', stripped; every test row encodes.
    let all: Vec<usize> = (0..test.rows).collect();
    let e = s.encode(&test, &all, &opts, true, Path::new("adult.test")).unwrap();
    let positives = e.target.iter().filter(|&&t| t == 1.0).count();
    assert_eq!(positives, 3_846, "the test file's >50K count");
}

#[test]
fn california_is_a_regression_on_eight_numeric_features() {
    let Some(dir) = data_or_skip("tabular/california_housing") else { return };
    let opts = CsvOptions {
        header: false,
        names: Some(read_names(&dir.join("cal_housing.domain")).unwrap()),
        ..CsvOptions::default()
    };
    let t = RawTable::read(&dir.join("cal_housing.data"), &opts).unwrap();
    assert_eq!(t.rows, 20_640);
    let parts = split_rows(t.rows, &[0.64, 0.16, 0.2], 0);
    assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), vec![13_210, 3_302, 4_128]);
    let s = Schema::fit(&t, &parts[0], "medianHouseValue", None, &opts, 1e5, Path::new("c")).unwrap();
    assert_eq!((s.task, s.numeric()), (Task::Regression, 8));
    assert!((1.5..2.5).contains(&s.target_mean), "mean house value in 100k: {}", s.target_mean);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_tables_give_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("ssm-tab-bad-{}", std::process::id()));
    let opts = CsvOptions::default();
    let fit = |p: &Path, target: &str| {
        let t = RawTable::read(p, &opts)?;
        let rows: Vec<usize> = (0..t.rows).collect();
        Schema::fit(&t, &rows, target, None, &opts, 1.0, p).map(|_| ())
    };
    let mut text = String::from("x,y\n");
    (0..40).for_each(|i| text.push_str(&format!("{i},{}\n", i % 2)));
    let good = write(&dir, "good.csv", &text);
    assert!(fit(&good, "z").unwrap_err().to_string().contains("no target column 'z'"));
    text.push_str("abc,1\n");
    let bad = write(&dir, "bad.csv", &text);
    let msg = fit(&bad, "y").unwrap_err().to_string();
    assert!(msg.contains("bad.csv") && msg.contains("row 41") && msg.contains("'abc'"), "{msg}");
    assert!(fit(&dir.join("absent.csv"), "y").unwrap_err().to_string().contains("no such file"));
    let empty = write(&dir, "empty.csv", "");
    assert!(fit(&empty, "y").is_err());
    // A class the training rows never had.
    let t = RawTable::read(&good, &opts).unwrap();
    let rows: Vec<usize> = (0..t.rows).collect();
    let s = Schema::fit(&t, &rows, "y", None, &opts, 1.0, &good).unwrap();
    let other = write(&dir, "other.csv", "x,y\n1,7\n");
    let o = RawTable::read(&other, &opts).unwrap();
    let msg = s.encode(&o, &[0], &opts, true, &other).unwrap_err().to_string();
    assert!(msg.contains("'7' is not a training class"), "{msg}");
    // Without the target column, prediction input still encodes.
    let x_only = write(&dir, "x.csv", "x\n3\n");
    assert!(s.encode(&RawTable::read(&x_only, &opts).unwrap(), &[0], &opts, false, &x_only).is_ok());
    // Names: one fewer than the columns → the last is `target`; one more → the target is absent.
    let two = write(&dir, "two.csv", "1,2\n3,4\n");
    let named = |names: &[&str]| {
        let o = CsvOptions {
            header: false,
            names: Some(names.iter().map(|s| s.to_string()).collect()),
            ..CsvOptions::default()
        };
        RawTable::read(&two, &o).map(|t| t.names)
    };
    assert_eq!(named(&["a"]).unwrap(), vec!["a", "target"]);
    assert_eq!(named(&["a", "b", "y"]).unwrap(), vec!["a", "b"]);
    assert!(named(&["a", "b", "c", "d"]).unwrap_err().to_string().contains("2 columns, but 4 names"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// 600 rows: y = [x0 + (c == "a") − (c == "b") > 0], one noise column, some missing values.
fn synthetic() -> (RawTable, CsvOptions) {
    let mut text = String::from("x0,noise,c,y\n");
    let mut r = 7u64;
    let mut next = || {
        r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (r >> 33) as f64 / (1u64 << 31) as f64
    };
    for i in 0..600 {
        let x = next() * 4.0 - 2.0;
        let c = ["a", "b", "c"][i % 3];
        let shift = match c {
            "a" => 1.0,
            "b" => -1.0,
            _ => 0.0,
        };
        let xs = if i % 17 == 0 { "?".to_string() } else { format!("{x:.4}") };
        let x_eff = if i % 17 == 0 { 0.0 } else { x };
        text.push_str(&format!("{xs},{:.3},{c},{}\n", next(), if x_eff + shift > 0.0 { "yes" } else { "no" }));
    }
    let dir = std::env::temp_dir().join(format!("ssm-tab-syn-{}", std::process::id()));
    let p = write(&dir, "syn.csv", &text);
    let opts = CsvOptions { quantile: true, ..CsvOptions::default() };
    let t = RawTable::read(&p, &opts).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (t, opts)
}

#[test]
fn every_model_learns_a_generated_table() {
    let (t, opts) = synthetic();
    let parts = split_rows(t.rows, &[0.6, 0.2, 0.2], 1);
    let p = Path::new("syn.csv");
    let s = Schema::fit(&t, &parts[0], "y", None, &opts, 1.0, p).unwrap();
    let enc = |rows: &[usize]| s.encode(&t, rows, &opts, true, p).unwrap();
    let mixer = MixerConfig::small_by_name("mamba", 32).unwrap();
    let backbone =
        ssm_core::backbone::parse_layout("mamba", Some(2), &ssm_core::backbone::LayerTemplate::new(32)).unwrap();
    for config in [
        TabularConfig::Mlp(MlpConfig::default()),
        TabularConfig::Mambatab(MambaTabConfig { mixer, embedding: 4 }),
        TabularConfig::Tokens(TokensConfig { backbone }),
    ] {
        let device = Device::flex().autodiff();
        device.seed(0);
        let model = config.init(&s, &device);
        let mut src = TabularSource::new(&s, enc(&parts[0]), enc(&parts[1]), 32, 0);
        let tc = TrainConfig {
            steps: 300,
            epochs: 1,
            lr: 3e-3,
            warmup_steps: 10,
            progress: false,
            ..TrainConfig::default()
        };
        let model = fit(model, &mut src, &tc, &device).unwrap().model.valid();
        let test = enc(&parts[2]);
        let sc = score(&s, &test, &predict(&model, &s, &test, 32, &Device::flex()));
        let (acc, auc) = (sc.accuracy.unwrap(), sc.auroc.unwrap());
        assert!(acc > 0.85 && auc > 0.9, "{}: accuracy {acc}, AUROC {auc}", config.name());
    }
}

#[test]
fn mambatab_depends_on_the_batch_and_feature_tokens_do_not() {
    let (t, opts) = synthetic();
    let rows: Vec<usize> = (0..t.rows).collect();
    let p = Path::new("syn.csv");
    let s = Schema::fit(&t, &rows, "y", None, &opts, 1.0, p).unwrap();
    let e = s.encode(&t, &rows, &opts, true, p).unwrap();
    let (offs, _) = offsets(&s.cardinalities());
    let device = Device::flex();
    let mixer = MixerConfig::small_by_name("mamba", 16).unwrap();
    let backbone =
        ssm_core::backbone::parse_layout("mamba", Some(1), &ssm_core::backbone::LayerTemplate::new(16)).unwrap();
    let last_row = |m: &ssm_tabular::models::TabularModel, batch: &[usize]| {
        let y = m.forward(&Inputs::new(&e, batch, &offs, s.task, &device));
        let v = y.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        v[v.len() - 2..].to_vec()
    };
    let tab = TabularConfig::Mambatab(MambaTabConfig { mixer, embedding: 4 }).init(&s, &device);
    assert_ne!(last_row(&tab, &[0, 1, 2, 9]), last_row(&tab, &[5, 6, 9]), "MambaTab reads the batch as a sequence");
    let tok = TabularConfig::Tokens(TokensConfig { backbone }).init(&s, &device);
    let (a, b) = (last_row(&tok, &[0, 1, 2, 9]), last_row(&tok, &[5, 6, 9]));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
}
