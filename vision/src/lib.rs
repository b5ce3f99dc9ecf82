//! ssm-vision: image and video data for the vision state-space models (Vision Mamba, VMamba,
//! S4ND, SiMBA). This first part is the data layer: MNIST-format idx files (gzipped or not) and
//! pixel CSVs, normalisation, seeded shuffling and augmentation; a seeded moving-digits video
//! generator.

pub mod data;
pub mod video;
