//! ssm-tabular: tabular classification and regression — MambaTab (one Mamba block over the
//! mini-batch), feature tokens read by any registered mixer stack (FT-Transformer with
//! attention), and an MLP baseline — on CSV tables read with polars.

pub mod data;
pub mod models;
pub mod train;
