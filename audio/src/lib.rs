//! ssm-audio
