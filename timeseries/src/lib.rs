//! ssm-timeseries: long-term forecasting and sequence classification with state-space models —
//! S-Mamba, SiMBA-TS (Mamba + EinFFT), a temporal SSM forecaster (RevIN, patching, any mixer),
//! the DLinear baseline, a Kalman-filter (local linear trend) baseline, and a classifier over any backbone for UEA / UCR data; CSV loading with
//! polars, the standard splits, scaling and windows.

pub mod data;
pub mod kalman;
pub mod models;
pub mod train;
pub mod uea;
