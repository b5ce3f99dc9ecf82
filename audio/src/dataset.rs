//! Labelled folders of WAV files.
//!
//! Two layouts: one sub-directory per class (`DIR/<class>/*.wav`, split by a seeded
//! shuffle), or file names `{label}_{speaker}_{index}.wav` (the Free Spoken Digit Dataset, whose
//! official split puts indices 0–4 in the test set: 300 of its 3,000 recordings). Clips are
//! read, resampled to the model's rate and cropped or zero-padded to a fixed length.

use crate::resample::resample;
use crate::wav::read_wav;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use ssm_core::error::FileError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One labelled recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub path: PathBuf,
    pub label: usize,
}

/// Class names and the train / test clips.
#[derive(Debug, Clone)]
pub struct AudioFolder {
    pub classes: Vec<String>,
    pub train: Vec<Clip>,
    pub test: Vec<Clip>,
}

fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let entries = std::fs::read_dir(dir).map_err(|e| FileError::new(dir, format!("cannot read the folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

/// `{label}_{speaker}_{index}` from a file stem.
fn fsdd_parts(path: &Path) -> Option<(String, String, usize)> {
    let stem = path.file_stem()?.to_str()?;
    let mut it = stem.splitn(3, '_');
    let (label, speaker, index) = (it.next()?, it.next()?, it.next()?);
    Some((label.to_string(), speaker.to_string(), index.parse().ok()?))
}

impl AudioFolder {
    /// Finds the layout of `dir`: sub-directories of WAVs, else FSDD-named WAVs in `dir` (or in
    /// `dir/recordings`, FSDD's own layout).
    pub fn open(dir: &Path, test_fraction: f64, seed: u64) -> Result<Self, FileError> {
        if !dir.is_dir() {
            return Err(FileError::new(dir, "no such folder"));
        }
        let recordings = dir.join("recordings");
        let flat = if recordings.is_dir() { recordings } else { dir.to_path_buf() };
        if !wav_files(&flat)?.is_empty() {
            return Self::fsdd(&flat);
        }
        Self::by_subdirectory(dir, test_fraction, seed)
    }

    /// FSDD naming; indices 0–4 are the test set.
    pub fn fsdd(dir: &Path) -> Result<Self, FileError> {
        let files = wav_files(dir)?;
        let mut parsed = Vec::with_capacity(files.len());
        for f in files {
            let parts =
                fsdd_parts(&f).ok_or_else(|| FileError::new(&f, "file name is not {label}_{speaker}_{index}.wav"))?;
            parsed.push((f, parts));
        }
        let classes: Vec<String> =
            parsed.iter().map(|(_, (l, _, _))| l.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (path, (label, _, index)) in parsed {
            let clip = Clip { path, label: classes.iter().position(|c| *c == label).expect("collected") };
            if index <= 4 { test.push(clip) } else { train.push(clip) }
        }
        Self::checked(dir, classes, train, test)
    }

    /// One sub-directory per class; a seeded `test_fraction` of each class is the test set.
    pub fn by_subdirectory(dir: &Path, test_fraction: f64, seed: u64) -> Result<Self, FileError> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| FileError::new(dir, format!("cannot read the folder: {e}")))?;
        let mut class_dirs: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        class_dirs.sort();
        let (mut classes, mut train, mut test) = (Vec::new(), Vec::new(), Vec::new());
        let mut rng = StdRng::seed_from_u64(seed);
        for d in class_dirs {
            let mut files = wav_files(&d)?;
            if files.is_empty() {
                continue;
            }
            let label = classes.len();
            classes.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            files.shuffle(&mut rng);
            let n_test = ((files.len() as f64) * test_fraction).round() as usize;
            for (i, path) in files.into_iter().enumerate() {
                let clip = Clip { path, label };
                if i < n_test { test.push(clip) } else { train.push(clip) }
            }
        }
        Self::checked(dir, classes, train, test)
    }

    fn checked(dir: &Path, classes: Vec<String>, train: Vec<Clip>, test: Vec<Clip>) -> Result<Self, FileError> {
        if classes.len() < 2 {
            return Err(FileError::new(
                dir,
                format!("found {} class(es) of WAV files; need at least 2", classes.len()),
            ));
        }
        if train.is_empty() || test.is_empty() {
            return Err(FileError::new(
                dir,
                format!("{} training and {} test clips: both sets need some", train.len(), test.len()),
            ));
        }
        Ok(AudioFolder { classes, train, test })
    }
}

/// `path` as mono samples at `rate`, cropped (from the start) or zero-padded at the end to `len`.
pub fn load_clip(path: &Path, rate: u32, len: usize) -> Result<Vec<f32>, FileError> {
    let audio = read_wav(path)?;
    let mut x = resample(&audio.samples, audio.rate, rate);
    x.resize(len, 0.0);
    Ok(x)
}
