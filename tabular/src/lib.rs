//! ssm-tabular
