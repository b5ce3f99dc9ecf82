//! ssm-audio: audio data (WAV in and out, band-limited resampling, log-mel and MFCC features,
//! labelled folders such as the Free Spoken Digit Dataset) for the state-space models of
//! `ssm-core`.

pub mod dataset;
pub mod features;
pub mod models;
pub mod resample;
pub mod train;
pub mod wav;
