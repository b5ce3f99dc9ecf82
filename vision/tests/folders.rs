//! Image folders, frame-folder videos, CIFAR-10 binary batches and dataset detection, on files
//! written here; corrupt input gives an error naming the file.

use ssm_vision::folders::{cifar_batches, frame_folders, image_folder, load_split, resized};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ssm-vision-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn png(path: &Path, w: u32, h: u32, rgb: bool, v: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if rgb {
        image::RgbImage::from_fn(w, h, |x, _| image::Rgb([v, x as u8, 255 - v])).save(path).unwrap();
    } else {
        image::GrayImage::from_fn(w, h, |_, _| image::Luma([v])).save(path).unwrap();
    }
}

#[test]
fn image_folders_are_read_resized_and_labelled_by_class_directory() {
    let d = tmp("folders");
    png(&d.join("train/cat/a.png"), 12, 10, true, 10);
    png(&d.join("train/cat/b.png"), 6, 6, true, 20);
    png(&d.join("train/dog/c.png"), 12, 10, true, 30);
    png(&d.join("test/cat/d.png"), 12, 10, true, 40);
    png(&d.join("test/dog/e.png"), 12, 10, true, 50);
    let l = image_folder(&d.join("train"), None).unwrap();
    assert_eq!(l.class_names, vec!["cat", "dog"]);
    assert_eq!((l.set.len(), l.set.channels, l.set.height, l.set.width), (3, 3, 10, 12)); // first image's size
    assert_eq!(l.set.labels, vec![0, 0, 1]);
    // planar RGB: the red plane of the first image is all 10, the blue plane 245
    let hw = 120;
    assert!(l.set.pixels[..hw].iter().all(|&p| p == 10) && l.set.pixels[2 * hw..3 * hw].iter().all(|&p| p == 245));
    let t = load_split(&d, true, Some((8, 8))).unwrap();
    assert_eq!((t.set.len(), t.set.height, t.set.width), (2, 8, 8));
    assert_eq!(t.set.labels, vec![0, 1]);
    // a file that is not an image is named in the error
    std::fs::write(d.join("train/dog/broken.png"), b"not a png").unwrap();
    let e = image_folder(&d.join("train"), None).unwrap_err().to_string();
    assert!(e.contains("broken.png") && e.contains("not a readable image"), "{e}");
    let e = image_folder(&d.join("nope"), None).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn frame_folders_become_clips_of_t_frames() {
    let d = tmp("frames");
    for (class, clip, n) in [("left", "c1", 5), ("left", "c2", 3), ("right", "c3", 4)] {
        for f in 0..n {
            png(&d.join(format!("{class}/{clip}/f{f:03}.png")), 8, 8, false, (f * 10) as u8);
        }
    }
    let l = frame_folders(&d, 4, (8, 8)).unwrap();
    assert_eq!((l.set.len(), l.set.frames, l.set.channels), (3, 4, 1));
    assert_eq!(l.set.labels, vec![0, 0, 1]);
    // clip 1 has 5 frames, sampled at 0, 1, 2, 3 (t·5/4); clip 2 has 3: 0, 0, 1, 2
    let frame0 = |clip: usize, t: usize| l.set.pixels[(clip * 4 + t) * 64];
    assert_eq!((0..4).map(|t| frame0(0, t)).collect::<Vec<_>>(), vec![0, 10, 20, 30]);
    assert_eq!((0..4).map(|t| frame0(1, t)).collect::<Vec<_>>(), vec![0, 0, 10, 20]);
    std::fs::create_dir_all(d.join("right/empty")).unwrap();
    let e = frame_folders(&d, 4, (8, 8)).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("no frames"), "{e}");
}

#[test]
fn cifar_binary_batches_and_corrupt_ones() {
    let d = tmp("cifar");
    let mut bytes = Vec::new();
    for label in [3u8, 7] {
        bytes.push(label);
        bytes.extend((0..3072).map(|i| (i % 251) as u8));
    }
    std::fs::write(d.join("data_batch_1.bin"), &bytes).unwrap();
    std::fs::write(d.join("test_batch.bin"), &bytes[..3073]).unwrap();
    std::fs::write(
        d.join("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
    )
    .unwrap();
    let train = load_split(&d, false, None).unwrap();
    assert_eq!((train.set.len(), train.set.channels, train.set.height), (2, 3, 32));
    assert_eq!(train.set.labels, vec![3, 7]);
    assert_eq!(train.class_names[3], "cat");
    assert_eq!(load_split(&d, true, None).unwrap().set.len(), 1);
    std::fs::write(d.join("bad.bin"), &bytes[..100]).unwrap();
    let e = cifar_batches(&[d.join("bad.bin")]).unwrap_err().to_string();
    assert!(e.contains("bad.bin") && e.contains("CIFAR-10 records"), "{e}");
}

#[test]
fn resizing_keeps_frames_and_labels() {
    let d = tmp("resize");
    png(&d.join("a/x.png"), 4, 4, false, 100);
    let l = image_folder(&d, None).unwrap();
    let r = resized(&l.set, (8, 6));
    assert_eq!((r.height, r.width, r.pixels.len(), r.labels.clone()), (8, 6, 48, vec![0]));
    assert!(r.pixels.iter().all(|&p| p == 100));
}
