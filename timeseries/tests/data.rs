//! The forecasting protocol on the shared ETT / Weather files, windows, scaling, DLinear's
//! decomposition and `.ts` parsing (shared UEA files and written ones).

use ssm_timeseries::data::{Mode, Protocol, Scaler, Splits, Table};
use ssm_timeseries::models::dlinear::moving_average_matrix;
use ssm_timeseries::uea::TsSet;
use std::path::PathBuf;

fn data(rel: &str) -> Option<PathBuf> {
    ssm_core::fixtures::data_or_skip(&format!("timeseries/{rel}"))
}

#[test]
fn etth1_splits_scaler_and_window_counts() {
    let Some(p) = data("ETT-small/ETTh1.csv") else { return };
    let t = Table::read(&p).unwrap();
    assert_eq!((t.rows, t.vars()), (17420, 7));
    assert_eq!(t.names.last().unwrap(), "OT");
    assert_eq!(t.dates.as_ref().unwrap()[0], "2016-07-01 00:00:00");
    let r = Protocol::for_path(&p).splits(t.rows, 96).unwrap();
    assert_eq!(r, [0..8640, 8544..11520, 11424..14400]);
    let s = Splits::new(&t, Protocol::EttHour, 96, Mode::M, "OT").unwrap();
    // Time-Series-Library's counts for ETTh1 at 96 → 96: 8449 / 2785 / 2785
    assert_eq!((s.train.windows(96, 96), s.val.windows(96, 96), s.test.windows(96, 96)), (8449, 2785, 2785));
    // The scaler: population mean / std of the 8640 training rows, computed here directly.
    let text = std::fs::read_to_string(&p).unwrap();
    let ot: Vec<f64> =
        text.lines().skip(1).take(8640).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let m = ot.iter().sum::<f64>() / 8640.0;
    let sd = (ot.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 8640.0).sqrt();
    assert!((s.scaler.mean[6] as f64 - m).abs() < 1e-3 && (s.scaler.std[6] as f64 - sd).abs() < 1e-3);
    // the training rows are z-scored with it: mean 0, std 1 per variable
    let col: Vec<f32> = (0..s.train.rows).map(|i| s.train.values[i * 7 + 6]).collect();
    let zm = col.iter().map(|&v| v as f64).sum::<f64>() / col.len() as f64;
    assert!(zm.abs() < 1e-4, "{zm}");
    // the first test window's lookback starts 96 rows before the test border (row 11424)
    let (x, _) = s.test.window(0, 96, 96);
    assert!((x[6] - (t.values[11424 * 7 + 6] - s.scaler.mean[6]) / s.scaler.std[6]).abs() < 1e-5);
    // MS keeps all inputs and scores OT only; S keeps OT alone
    let ms = Splits::new(&t, Protocol::EttHour, 96, Mode::MS, "OT").unwrap();
    assert_eq!((ms.train.vars, ms.train.targets.clone()), (7, vec![6]));
    let su = Splits::new(&t, Protocol::EttHour, 96, Mode::S, "OT").unwrap();
    assert_eq!((su.train.vars, su.names.clone()), (1, vec!["OT".to_string()]));
    assert!(
        Splits::new(&t, Protocol::EttHour, 96, Mode::S, "nope")
            .unwrap_err()
            .to_string()
            .contains("no target column 'nope'")
    );
}

#[test]
fn ettm1_and_weather_protocols() {
    if let Some(p) = data("ETT-small/ETTm1.csv") {
        let t = Table::read(&p).unwrap();
        let s = Splits::new(&t, Protocol::for_path(&p), 96, Mode::M, "OT").unwrap();
        assert_eq!(s.ranges, [0..34560, 34464..46080, 45984..57600]);
        assert_eq!((s.train.windows(96, 96), s.val.windows(96, 96), s.test.windows(96, 96)), (34369, 11425, 11425));
    }
    if let Some(p) = data("weather/weather.txt") {
        let t = Table::read(&p).unwrap(); // header-less, names from weather.columns.txt
        assert_eq!(
            (t.rows, t.vars(), t.names[0].as_str(), t.names[20].as_str()),
            (52696, 21, "p (mbar)", "OT (CO2 ppm)")
        );
        assert!(t.dates.is_none());
        let s = Splits::new(&t, Protocol::for_path(&p), 96, Mode::M, "OT (CO2 ppm)").unwrap();
        // 70 / 10 / 20 %: 36887 / 5270 / 10539 rows, later splits start 96 rows early
        assert_eq!(s.ranges, [0..36887, 36791..42157, 42061..52696]);
        assert_eq!(s.test.windows(96, 96), 10444);
    }
}

#[test]
fn synthetic_protocol_and_bad_csv() {
    let d = std::env::temp_dir().join(format!("ssm-ts-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("s.csv");
    let mut text = String::from("date,x,OT\n");
    for i in 0..100 {
        text.push_str(&format!("2020-01-01 {i:02},{},{}\n", i, 2 * i));
    }
    std::fs::write(&p, &text).unwrap();
    let t = Table::read(&p).unwrap();
    let r = Protocol::for_path(&p).splits(t.rows, 10).unwrap();
    assert_eq!(r, [0..70, 60..80, 70..100]);
    let s = Splits::new(&t, Protocol::for_path(&p), 10, Mode::M, "OT").unwrap();
    assert_eq!((s.train.windows(10, 5), s.val.windows(10, 5), s.test.windows(10, 5)), (56, 6, 16));
    let sc = Scaler::fit(&t, 0..70);
    assert!((sc.mean[0] - 34.5).abs() < 1e-4 && (sc.std[0] - (((70 * 70 - 1) as f32) / 12.0).sqrt()).abs() < 1e-3);
    std::fs::write(d.join("bad.csv"), "date,x\n2020,1\n2021,abc\n").unwrap();
    let e = Table::read(&d.join("bad.csv")).unwrap_err().to_string();
    assert!(e.contains("bad.csv") && e.contains("'x'"), "{e}");
    std::fs::write(d.join("nan.csv"), "a,b\n1,2\n3,\n").unwrap();
    let e = Table::read(&d.join("nan.csv")).unwrap_err().to_string();
    assert!(e.contains("nan.csv") && e.contains("row 2"), "{e}");
    assert!(Table::read(&d.join("missing.csv")).unwrap_err().to_string().contains("missing.csv"));
}

#[test]
fn dlinear_moving_average_is_replicate_padded_average() {
    let (l, k) = (10, 5);
    let a = moving_average_matrix(l, k);
    let x: Vec<f32> = (0..l).map(|i| (i * i) as f32).collect();
    for t in 0..l {
        // direct: pad two copies of x[0] in front and of x[L−1] behind, average k values
        let direct: f32 = (0..k).map(|j| x[(t + j).saturating_sub(2).min(l - 1)]).sum::<f32>() / k as f32;
        let via: f32 = (0..l).map(|s| a[t * l + s] * x[s]).sum();
        assert!((direct - via).abs() < 1e-4, "t={t}");
    }
    // each row averages: sums to one
    assert!((0..l).all(|t| ((0..l).map(|s| a[t * l + s]).sum::<f32>() - 1.0).abs() < 1e-6));
}

#[test]
fn ts_files_with_variable_lengths_and_missing_values() {
    if let Some(dir) = data("uea-ucr/JapaneseVowels") {
        let tr = TsSet::read(&dir.join("JapaneseVowels_TRAIN.ts"), None).unwrap();
        let te = TsSet::read(&dir.join("JapaneseVowels_TEST.ts"), Some(&tr.class_names)).unwrap();
        assert_eq!((tr.len(), te.len(), tr.dims, tr.class_names.len()), (270, 370, 12, 9));
        let (lo, hi) =
            (*tr.lengths.iter().chain(&te.lengths).min().unwrap(), tr.lengths.iter().chain(&te.lengths).max().unwrap());
        assert_eq!((lo, *hi), (7, 29));
        assert_eq!(tr.series[0].len(), tr.lengths[0] * 12);
        assert!((tr.series[0][0] - 1.860936).abs() < 1e-6);
    }
    let d = std::env::temp_dir().join(format!("ssm-ts-uea-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("x.ts");
    std::fs::write(&p, "# comment\n@problemName Toy\n@missing true\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,5,6:b\n7,?:8,9:a\n").unwrap();
    let s = TsSet::read(&p, None).unwrap();
    assert_eq!((s.lengths.clone(), s.labels.clone(), s.dims), (vec![3, 2], vec![1, 0], 2));
    assert_eq!(&s.series[0], &[1., 4., 2., 5., 3., 6.]); // [len, dims]
    assert!(s.series[1][2].is_nan());
    std::fs::write(&p, "@dimensions 2\n@classLabel true a b\n@data\n1,2:3:c\n").unwrap();
    let e = TsSet::read(&p, None).unwrap_err().to_string();
    assert!(e.contains("x.ts") && e.contains("line 4"), "{e}");
    std::fs::write(&p, "@dimensions 2\n@classLabel true a b\n@data\n1,x:3,4:a\n").unwrap();
    assert!(TsSet::read(&p, None).unwrap_err().to_string().contains("'x' is not a number"));
}
