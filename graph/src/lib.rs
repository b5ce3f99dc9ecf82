//! ssm-graph
