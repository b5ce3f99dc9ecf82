//! ssm-language
