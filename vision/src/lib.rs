//! ssm-vision
