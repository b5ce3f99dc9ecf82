//! ssm-vision: state-space models for images and video — Vision Mamba, VMamba (SS2D), S4ND and
//! SiMBA (Mamba + EinFFT) — with their data layer: MNIST-format idx files (gzipped or not), pixel
//! CSVs, image folders, CIFAR-10 binary batches, frame-folder videos, normalisation, seeded
//! shuffling and augmentation, a seeded moving-digits video generator, and the data sources the
//! shared training runner consumes.

pub mod data;
pub mod folders;
pub mod models;
pub mod train;
pub mod video;
