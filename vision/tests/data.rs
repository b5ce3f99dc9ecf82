//! The vision data layer on the shared Fashion-MNIST / MNIST files and on corrupt input.

use rand::SeedableRng;
use rand::rngs::StdRng;
use ssm_vision::data::{ImageSet, augment, read_idx};

fn data_dir(rel: &str) -> Option<std::path::PathBuf> {
    ssm_core::fixtures::data_or_skip(rel)
}

#[test]
fn fashion_mnist_and_mnist_small_load() {
    let Some(dir) = data_dir("vision/fashion-mnist") else { return };
    let train = ImageSet::mnist_dir(&dir, "train").unwrap();
    let test = ImageSet::mnist_dir(&dir, "t10k").unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!((train.height, train.width, train.channels, train.classes), (28, 28, 1, 10));
    // Fashion-MNIST is balanced: 6000 per class in train
    let mut counts = [0usize; 10];
    train.labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [6000; 10]);
    let stats = train.channel_stats();
    assert!((stats[0].0 - 0.286).abs() < 0.01 && (stats[0].1 - 0.353).abs() < 0.01, "{stats:?}");
    let Some(small) = data_dir("vision/mnist-small") else { return };
    let s = ImageSet::from_pixel_csv(&small.join("mnist_5k.csv.gz")).unwrap();
    assert_eq!((s.len(), s.height, s.classes), (5000, 28, 10));
    let t = ImageSet::mnist_dir(&small, "t10k").unwrap();
    let mut counts = [0usize; 10];
    t.labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
}

#[test]
fn corrupt_files_are_named_with_the_problem() {
    let dir = std::env::temp_dir().join(format!("ssm-vision-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x-idx3-ubyte");
    std::fs::write(&f, [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3]).unwrap();
    let e = read_idx(&f).unwrap_err().to_string();
    assert!(e.contains("x-idx3-ubyte") && e.contains("need 8 values"), "{e}");
    std::fs::write(&f, b"hello").unwrap();
    assert!(read_idx(&f).unwrap_err().to_string().contains("bad magic"));
    std::fs::write(&f, [0x1f, 0x8b, 1, 2, 3]).unwrap();
    assert!(read_idx(&f).unwrap_err().to_string().contains("corrupt gzip"));
    let c = dir.join("px.csv");
    std::fs::write(&c, "1,2,3,4,0\n1,2,x,4,1\n").unwrap();
    let e = ImageSet::from_pixel_csv(&c).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("'x'"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shuffling_is_seeded_and_augmentation_moves_pixels() {
    let set = ImageSet {
        pixels: (0..=255u8).cycle().take(4 * 9).collect(),
        labels: vec![0, 1, 2, 3],
        channels: 1,
        frames: 1,
        height: 3,
        width: 3,
        classes: 4,
    };
    assert_eq!(set.shuffled(1), set.shuffled(1));
    let mut p = set.shuffled(1);
    p.sort();
    assert_eq!(p, vec![0, 1, 2, 3]);
    let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    // no padding, flip: either the identity or the mirror image
    let mut rng = StdRng::seed_from_u64(0);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let mut x = img.clone();
        augment(&mut x, 1, 3, 3, 0, true, &mut rng);
        assert!(x == img || x == vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0], "{x:?}");
        seen.insert(x.iter().map(|v| *v as i32).collect::<Vec<_>>());
    }
    assert_eq!(seen.len(), 2);
    // padding 1: a shifted copy with zeros coming in, same multiset otherwise
    let mut x = img.clone();
    augment(&mut x, 1, 3, 3, 1, false, &mut StdRng::seed_from_u64(5));
    assert!(x.iter().all(|v| *v == 0.0 || img.contains(v)));
}

#[test]
fn moving_digits_are_seeded_bounded_and_labelled() {
    use ssm_vision::video::{ClipLabel, MovingDigits};
    // two distinguishable 4×4 "digits": all 200 (class 1) and all 100 (class 2)
    let digits = ImageSet {
        pixels: [vec![200u8; 16], vec![100u8; 16]].concat(),
        labels: vec![1, 2],
        channels: 1,
        frames: 1,
        height: 4,
        width: 4,
        classes: 3,
    };
    let g = MovingDigits::new(12, 16, ClipLabel::Sum);
    assert_eq!(g.classes(&digits), 5);
    let a = g.clip(&digits, 7, 3);
    assert_eq!(a.pixels, g.clip(&digits, 7, 3).pixels);
    assert_ne!(a.pixels, g.clip(&digits, 7, 4).pixels);
    assert!((2..=4).contains(&a.label));
    for t in 0..12 {
        let f = &a.pixels[t * 256..(t + 1) * 256];
        // both digits are fully inside the frame: at least 16 lit pixels, at most 32
        let lit = f.iter().filter(|&&p| p > 0).count();
        assert!((16..=32).contains(&lit), "frame {t}: {lit} lit pixels");
    }
    // the digits move: not every frame is the first frame
    assert!((1..12).any(|t| a.pixels[t * 256..(t + 1) * 256] != a.pixels[..256]));
    // the same stream labelled by the larger digit: sum 2 = 1+1 → 1, sums 3 and 4 → 2
    for i in 0..8 {
        let sum = MovingDigits::new(3, 16, ClipLabel::Sum).clip(&digits, 1, i).label;
        let larger = MovingDigits::new(3, 16, ClipLabel::Larger).clip(&digits, 1, i).label;
        assert_eq!(larger, if sum == 2 { 1 } else { 2 }, "sum {sum}");
    }
}
