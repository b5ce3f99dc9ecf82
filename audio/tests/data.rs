//! WAV reading and writing, resampling, spectral features against librosa, and FSDD.

use ssm_audio::dataset::{AudioFolder, load_clip};
use ssm_audio::features::{MelConfig, log_mel, mfcc, power_spectrogram};
use ssm_audio::resample::resample;
use ssm_audio::wav::{Audio, read_wav, write_wav};
use ssm_core::fixtures::data_or_skip;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssm-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
    (0..n).map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5).collect()
}

fn write_spec(path: &Path, spec: hound::WavSpec, frames: &[Vec<f64>]) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for frame in frames {
        for &v in frame {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                (_, bits) => w.write_sample((v * (1u64 << (bits - 1)) as f64).round() as i32).unwrap(),
            }
        }
    }
    w.finalize().unwrap();
}

#[test]
fn every_pcm_format_reads_as_the_same_mono_signal() {
    let frames: Vec<Vec<f64>> =
        (0..400).map(|i| vec![0.5 * (i as f64 * 0.05).sin(), 0.25 * (i as f64 * 0.11).cos()]).collect();
    let want: Vec<f64> = frames.iter().map(|f| (f[0] + f[1]) / 2.0).collect();
    for (format, bits, tol) in [
        (hound::SampleFormat::Int, 8, 1.0 / 128.0),
        (hound::SampleFormat::Int, 16, 1e-4),
        (hound::SampleFormat::Int, 24, 1e-6),
        (hound::SampleFormat::Int, 32, 1e-6),
        (hound::SampleFormat::Float, 32, 1e-7),
    ] {
        let path = tmp(&format!("stereo-{bits}-{format:?}.wav"));
        let spec = hound::WavSpec { channels: 2, sample_rate: 11025, bits_per_sample: bits, sample_format: format };
        write_spec(&path, spec, &frames);
        let a = read_wav(&path).unwrap();
        assert_eq!((a.rate, a.samples.len()), (11025, 400));
        let err = a.samples.iter().zip(&want).map(|(&g, w)| (g as f64 - w).abs()).fold(0.0, f64::max);
        assert!(err <= tol, "{bits}-bit {format:?}: off by {err:.2e}");
    }
}

#[test]
fn written_wavs_read_back_and_bad_files_are_clear_errors() {
    let path = tmp("roundtrip.wav");
    let audio = Audio { samples: tone(440.0, 8000, 800), rate: 8000 };
    write_wav(&path, &audio).unwrap();
    let back = read_wav(&path).unwrap();
    assert_eq!(back.rate, 8000);
    assert!(back.samples.iter().zip(&audio.samples).all(|(a, b)| (a - b).abs() < 1e-4));

    let missing = tmp("missing.wav");
    let e = read_wav(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&missing.display().to_string()) && e.contains("not a readable WAV"), "{e}");
    let text = tmp("text.wav");
    std::fs::write(&text, "this is not audio").unwrap();
    assert!(read_wav(&text).unwrap_err().to_string().contains("not a readable WAV"));
    let bytes = std::fs::read(&path).unwrap();
    let cut = tmp("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1]).unwrap();
    let e = read_wav(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.wav") && e.contains("truncated"), "{e}");
    let nan = tmp("nan.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    write_spec(&nan, spec, &[vec![0.1], vec![f64::NAN]]);
    assert!(read_wav(&nan).unwrap_err().to_string().contains("sample 1 is not finite"));
}

#[test]
fn resampling_keeps_the_passband_and_removes_what_would_alias() {
    // 440 Hz from 44.1 kHz to 8 kHz, and 1 kHz from 8 kHz up to 16 kHz: the analytic tone
    // away from the edges.
    for (f, from, to) in [(440.0, 44100, 8000), (1000.0, 8000, 16000), (300.0, 16000, 11025)] {
        let n = from as usize / 2;
        let y = resample(&tone(f, from, n), from, to);
        assert_eq!(y.len(), (n as f64 * to as f64 / from as f64).round() as usize);
        let want = tone(f, to, y.len());
        let edge = y.len() / 8;
        let err = y[edge..y.len() - edge].iter().zip(&want[edge..]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 2e-3, "{f} Hz {from} → {to}: off the analytic tone by {err:.2e}");
    }
    // 6 kHz at 16 kHz is above 8 kHz's Nyquist: filtered out, where dropping every other
    // sample would leave a full-amplitude 2 kHz alias.
    let x = tone(6000.0, 16000, 8000);
    let y = resample(&x, 16000, 8000);
    let rms = |v: &[f32]| (v.iter().map(|a| (a * a) as f64).sum::<f64>() / v.len() as f64).sqrt();
    let inner = &y[500..y.len() - 500];
    assert!(rms(inner) < 1e-3 * rms(&x), "aliased energy left: rms {:.2e}", rms(inner));
    let dropped: Vec<f32> = x.iter().step_by(2).copied().collect();
    assert!(rms(&dropped) > 0.3, "sample dropping aliases (the contrast this test draws)");
}

fn fixture() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/librosa_features.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's signal (see its `signal` field).
fn fixture_signal() -> Vec<f32> {
    (0..2000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let x = 0.5 * (2.0 * PI * 440.0 * t).sin()
                + 0.25 * (2.0 * PI * (300.0 + 1200.0 * t) * t + 0.3).sin()
                + 0.1 * (2.0 * PI * 3100.0 * t).cos();
            let fade = if n < 200 { n as f64 / 199.0 } else { 1.0 };
            (x as f32) * fade as f32
        })
        .collect()
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

#[test]
fn features_match_librosa() {
    let fx = fixture();
    let x = fixture_signal();
    let c = MelConfig { rate: 8000, n_fft: 256, hop: 64, n_mels: 40, fmin: 0.0, fmax: None };
    let power = power_spectrogram(&x, 256, 64);
    let frame10: Vec<f64> = fx["power_frame_10"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (f, want) in frame10.iter().enumerate() {
        let got = power.at(10, f) as f64;
        assert!((got - want).abs() <= 1e-3 * want.abs().max(1.0), "power bin {f}: {got} vs librosa {want}");
    }
    for (name, got, tol) in [("log_mel", log_mel(&x, &c), 2e-3), ("mfcc", mfcc(&x, &c, 13), 2e-3)] {
        let want = rows(&fx[name]);
        assert_eq!((got.frames, got.bins), (want.len(), want[0].len()), "{name} shape");
        let err = (0..got.frames)
            .flat_map(|t| (0..got.bins).map(move |b| (t, b)))
            .map(|(t, b)| (got.at(t, b) as f64 - want[t][b]).abs())
            .fold(0.0, f64::max);
        println!("{name}: max |error| against librosa {err:.2e}");
        assert!(err <= tol, "{name}: off librosa by {err:.2e} dB");
    }
}

#[test]
fn fsdd_official_split() {
    let Some(dir) = data_or_skip("audio/fsdd") else { return };
    let data = AudioFolder::open(&dir, 0.1, 0).unwrap();
    assert_eq!(data.classes, (0..10).map(|d| d.to_string()).collect::<Vec<_>>());
    assert_eq!((data.train.len(), data.test.len()), (2700, 300));
    let x = load_clip(&data.test[0].path, 8000, 6000).unwrap();
    assert_eq!(x.len(), 6000);
    assert!(x.iter().any(|v| v.abs() > 0.01));
}
