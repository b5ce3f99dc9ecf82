//! Datasets by path: image folders (one sub-directory per class, any format the `image` crate
//! reads, resized), CIFAR-10 binary batches, frame-folder videos (one folder of frames per clip,
//! class from the parent folder), and [`load_split`], which recognises a dataset directory.

use crate::data::{DataError, ImageSet, read_maybe_gz};
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use ssm_core::error::FileError;
use std::path::{Path, PathBuf};

/// A dataset split and the names of its classes.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub set: ImageSet,
    pub class_names: Vec<String>,
}

fn sorted_entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| FileError::new(dir, e.to_string()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() == dirs && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    v.sort();
    Ok(v)
}

/// One image file as `[C, H, W]` u8 at `size` (height, width); `channels` 1 (grey) or 3 (RGB).
pub fn read_image(path: &Path, channels: usize, size: (usize, usize)) -> Result<Vec<u8>, DataError> {
    let img = image::open(path).map_err(|e| FileError::new(path, format!("not a readable image ({e})")))?;
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(FileError::new(path, "empty image"));
    }
    let img = if (h as usize, w as usize) != size {
        img.resize_exact(size.1 as u32, size.0 as u32, FilterType::Triangle)
    } else {
        img
    };
    Ok(planar(&img, channels))
}

fn planar(img: &DynamicImage, channels: usize) -> Vec<u8> {
    if channels == 1 {
        return img.to_luma8().into_raw();
    }
    let rgb = img.to_rgb8();
    let hw = (rgb.width() * rgb.height()) as usize;
    let mut out = vec![0u8; 3 * hw];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * hw + i] = p.0[c];
        }
    }
    out
}

/// Size and channel count of the first readable image (grey stays grey, anything else is RGB).
fn probe(path: &Path) -> Result<(usize, (usize, usize)), DataError> {
    let img = image::open(path).map_err(|e| FileError::new(path, format!("not a readable image ({e})")))?;
    let c = if img.color().has_color() { 3 } else { 1 };
    Ok((c, (img.height() as usize, img.width() as usize)))
}

/// `dir/<class>/<image>`: classes in name order; images resized to `size` (default: the first
/// image's size).
pub fn image_folder(dir: &Path, size: Option<(usize, usize)>) -> Result<Labelled, DataError> {
    let classes = sorted_entries(dir, true)?;
    if classes.is_empty() {
        return Err(FileError::new(dir, "no class sub-directories"));
    }
    let mut files = Vec::new();
    for (k, c) in classes.iter().enumerate() {
        files.extend(sorted_entries(c, false)?.into_iter().map(|f| (f, k as u32)));
    }
    let first = files.first().ok_or_else(|| FileError::new(dir, "no image files in the class directories"))?;
    let (channels, first_size) = probe(&first.0)?;
    let (h, w) = size.unwrap_or(first_size);
    let mut pixels = Vec::with_capacity(files.len() * channels * h * w);
    for (f, _) in &files {
        pixels.extend(read_image(f, channels, (h, w))?);
    }
    let set = ImageSet {
        pixels,
        labels: files.iter().map(|f| f.1).collect(),
        channels,
        frames: 1,
        height: h,
        width: w,
        classes: classes.len(),
    };
    Ok(Labelled { set, class_names: names(&classes) })
}

fn names(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter().map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect()
}

/// `dir/<class>/<clip>/<frame image>`: each clip's frames in name order, `frames` of them
/// sampled evenly (short clips repeat their last frame), resized to `size`.
pub fn frame_folders(dir: &Path, frames: usize, size: (usize, usize)) -> Result<Labelled, DataError> {
    let classes = sorted_entries(dir, true)?;
    if classes.is_empty() {
        return Err(FileError::new(dir, "no class sub-directories"));
    }
    let mut clips = Vec::new();
    for (k, c) in classes.iter().enumerate() {
        clips.extend(sorted_entries(c, true)?.into_iter().map(|f| (f, k as u32)));
    }
    if clips.is_empty() {
        return Err(FileError::new(dir, "no clip folders in the class directories"));
    }
    let mut channels = None;
    let mut pixels = Vec::new();
    for (clip, _) in &clips {
        let all = sorted_entries(clip, false)?;
        if all.is_empty() {
            return Err(FileError::new(clip, "clip folder has no frames"));
        }
        let c = match channels {
            Some(c) => c,
            None => *channels.insert(probe(&all[0])?.0),
        };
        // Per clip `[C, T, H, W]`: read frames `[C, H, W]`, then interleave.
        let picked: Vec<Vec<u8>> = (0..frames)
            .map(|t| read_image(&all[(t * all.len() / frames).min(all.len() - 1)], c, size))
            .collect::<Result<_, _>>()?;
        let hw = size.0 * size.1;
        for ch in 0..c {
            for f in &picked {
                pixels.extend_from_slice(&f[ch * hw..(ch + 1) * hw]);
            }
        }
    }
    let set = ImageSet {
        pixels,
        labels: clips.iter().map(|c| c.1).collect(),
        channels: channels.unwrap_or(1),
        frames,
        height: size.0,
        width: size.1,
        classes: classes.len(),
    };
    Ok(Labelled { set, class_names: names(&classes) })
}

/// CIFAR-10 binary batches: records of one label byte and 3072 pixel bytes (R, G, B planes
/// of 32×32).
pub fn cifar_batches(files: &[PathBuf]) -> Result<ImageSet, DataError> {
    const REC: usize = 1 + 3 * 32 * 32;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        let bytes = read_maybe_gz(f)?;
        if bytes.is_empty() || !bytes.len().is_multiple_of(REC) {
            return Err(FileError::new(
                f,
                format!("{} bytes is not a whole number of {REC}-byte CIFAR-10 records", bytes.len()),
            ));
        }
        for r in bytes.chunks_exact(REC) {
            if r[0] > 9 {
                return Err(FileError::new(f, format!("label {} outside 0–9", r[0])));
            }
            labels.push(r[0] as u32);
            pixels.extend_from_slice(&r[1..]);
        }
    }
    Ok(ImageSet { pixels, labels, channels: 3, frames: 1, height: 32, width: 32, classes: 10 })
}

const FASHION: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The `train` or `test` split of a dataset at `path`:
/// * a directory in MNIST layout (`train-images-idx3-ubyte[.gz]`, `t10k-…`);
/// * a CIFAR-10 binary directory (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`);
/// * a directory with `train/` and `test/` image folders;
/// * a single image folder or pixel CSV (`.csv[.gz]`): the whole of it, for either split.
pub fn load_split(path: &Path, test: bool, size: Option<(usize, usize)>) -> Result<Labelled, DataError> {
    if !path.exists() {
        return Err(FileError::new(path, "no such file or directory"));
    }
    let digits = || (0..10).map(|i| i.to_string()).collect::<Vec<_>>();
    if path.is_file() {
        let set = ImageSet::from_pixel_csv(path)?;
        let class_names = (0..set.classes).map(|i| i.to_string()).collect();
        return Ok(Labelled { set, class_names });
    }
    let has = |name: &str| path.join(name).exists() || path.join(format!("{name}.gz")).exists();
    if has("train-images-idx3-ubyte") || has("t10k-images-idx3-ubyte") {
        let set = ImageSet::mnist_dir(path, if test { "t10k" } else { "train" })?;
        let fashion = path.to_string_lossy().to_lowercase().contains("fashion");
        let class_names = if fashion { FASHION.iter().map(|s| s.to_string()).collect() } else { digits() };
        return Ok(Labelled { set, class_names });
    }
    if has("data_batch_1.bin") || has("test_batch.bin") {
        let files: Vec<PathBuf> = if test {
            vec![path.join("test_batch.bin")]
        } else {
            (1..=5).map(|i| path.join(format!("data_batch_{i}.bin"))).filter(|p| p.exists()).collect()
        };
        let meta = std::fs::read_to_string(path.join("batches.meta.txt")).unwrap_or_default();
        let mut class_names: Vec<String> =
            meta.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if class_names.len() != 10 {
            class_names = digits();
        }
        return Ok(Labelled { set: cifar_batches(&files)?, class_names });
    }
    if path.join("train").is_dir() && path.join("test").is_dir() {
        return image_folder(&path.join(if test { "test" } else { "train" }), size);
    }
    image_folder(path, size)
}

/// Every item of `set` resized to `size` (height, width) (bilinear); frames kept.
pub fn resized(set: &ImageSet, size: (usize, usize)) -> ImageSet {
    if (set.height, set.width) == size {
        return set.clone();
    }
    let (h, w) = (set.height, set.width);
    let mut pixels = Vec::with_capacity(set.len() * set.channels * set.frames * size.0 * size.1);
    for plane in set.pixels.chunks_exact(h * w) {
        let img = image::GrayImage::from_raw(w as u32, h as u32, plane.to_vec()).expect("plane size");
        pixels.extend(image::imageops::resize(&img, size.1 as u32, size.0 as u32, FilterType::Triangle).into_raw());
    }
    ImageSet { pixels, height: size.0, width: size.1, ..set.clone() }
}
