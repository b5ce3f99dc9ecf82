//! ssm-timeseries
