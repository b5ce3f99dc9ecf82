//! WAV files in and out (hound): PCM 8/16/24/32-bit integer and 32-bit float, any number of
//! channels (mixed to mono by their mean), samples scaled to [−1, 1).

use ssm_core::error::FileError;
use ssm_core::train::write_atomic;
use std::path::Path;

/// Mono audio: samples in [−1, 1) at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Audio {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// Reads `path` as mono audio. A missing, truncated, non-WAV or unsupported file, one with no
/// samples or with non-finite float samples is an error naming the file.
pub fn read_wav(path: &Path) -> Result<Audio, FileError> {
    let err = |m: String| FileError::new(path, m);
    let mut reader = hound::WavReader::open(path).map_err(|e| err(format!("not a readable WAV file: {e}")))?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 || spec.sample_rate == 0 {
        return Err(err(format!("WAV header with {channels} channels at {} Hz", spec.sample_rate)));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader.samples::<i32>().map(|s| s.map(|v| (v as f64 * scale) as f32)).collect::<Result<_, _>>()
        }
        (format, bits) => return Err(err(format!("unsupported sample format: {bits}-bit {format:?}"))),
    }
    .map_err(|e| err(format!("corrupt or truncated sample data: {e}")))?;
    if interleaved.len() < channels {
        return Err(err("no samples".into()));
    }
    if let Some(i) = interleaved.iter().position(|v| !v.is_finite()) {
        return Err(err(format!("sample {} is not finite ({})", i / channels, interleaved[i])));
    }
    let samples = interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok(Audio { samples, rate: spec.sample_rate })
}

/// Writes mono 16-bit PCM (samples clipped to [−1, 1]) atomically: a temporary file renamed
/// into place, so a failed write leaves no partial file.
pub fn write_wav(path: &Path, audio: &Audio) -> Result<(), FileError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut bytes, spec).map_err(|e| FileError::new(path, e.to_string()))?;
        for &s in &audio.samples {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            w.write_sample(v).map_err(|e| FileError::new(path, e.to_string()))?;
        }
        w.finalize().map_err(|e| FileError::new(path, e.to_string()))?;
    }
    write_atomic(path, bytes.get_ref())
}
