//! UEA / UCR `.ts` files (the sktime format): `@` header lines (`@problemName`, `@missing`,
//! `@dimensions`, `@equalLength`, `@classLabel true c₁ c₂ …`, …), then `@data` and one case per
//! line: the dimensions separated by `:`, each a comma-separated series, and the class label
//! last. Series may differ in length between cases (JapaneseVowels: 7–29 steps); `?` marks a
//! missing value when `@missing true` (read as NaN).

use crate::data::DataError;
use ssm_core::error::FileError;
use std::path::Path;

/// A labelled set of multivariate series of possibly different lengths.
#[derive(Debug, Clone)]
pub struct TsSet {
    pub problem: String,
    pub dims: usize,
    pub class_names: Vec<String>,
    /// Per case `[len, dims]` row-major.
    pub series: Vec<Vec<f32>>,
    pub lengths: Vec<usize>,
    pub labels: Vec<usize>,
}

impl TsSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn max_len(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    /// Reads a `.ts` file. With `classes` (the training file's class names) the labels are
    /// mapped to the same indices.
    pub fn read(path: &Path, classes: Option<&[String]>) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, e.to_string()))?;
        let (mut problem, mut dims, mut missing) = (String::new(), None, false);
        let mut class_names: Vec<String> = classes.map(|c| c.to_vec()).unwrap_or_default();
        let (mut in_data, mut series, mut lengths, mut labels) = (false, Vec::new(), Vec::new(), Vec::new());
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let lineno = n + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !in_data {
                let mut parts = line.split_whitespace();
                let key = parts.next().unwrap_or("").to_ascii_lowercase();
                let rest: Vec<&str> = parts.collect();
                match key.as_str() {
                    "@problemname" => problem = rest.join(" "),
                    "@timestamps" if rest.first() == Some(&"true") => {
                        return Err(FileError::new(
                            path,
                            format!("line {lineno}: time-stamped series are not supported"),
                        ));
                    }
                    "@missing" => missing = rest.first() == Some(&"true"),
                    "@dimensions" => {
                        dims = Some(rest.first().and_then(|d| d.parse::<usize>().ok()).filter(|&d| d > 0).ok_or_else(
                            || FileError::new(path, format!("line {lineno}: @dimensions needs a positive number")),
                        )?)
                    }
                    "@classlabel" => {
                        if rest.first() != Some(&"true") {
                            return Err(FileError::new(
                                path,
                                format!("line {lineno}: only classification files (@classLabel true) are supported"),
                            ));
                        }
                        if classes.is_none() {
                            class_names = rest[1..].iter().map(|s| s.to_string()).collect();
                        }
                    }
                    "@data" => in_data = true,
                    _ => {}
                }
                continue;
            }
            let fields: Vec<&str> = line.split(':').collect();
            let d = fields.len() - 1;
            if d == 0 {
                return Err(FileError::new(path, format!("line {lineno}: no class label after the series")));
            }
            match dims {
                Some(want) if want != d => {
                    return Err(FileError::new(path, format!("line {lineno}: {d} dimensions, the header says {want}")));
                }
                None => dims = Some(d),
                _ => {}
            }
            let mut cols: Vec<Vec<f32>> = Vec::with_capacity(d);
            for f in &fields[..d] {
                let vals = f
                    .split(',')
                    .map(|v| match v.trim() {
                        "?" | "NaN" if missing => Ok(f32::NAN),
                        t => t
                            .parse::<f32>()
                            .map_err(|_| FileError::new(path, format!("line {lineno}: '{t}' is not a number"))),
                    })
                    .collect::<Result<Vec<f32>, _>>()?;
                cols.push(vals);
            }
            let len = cols[0].len();
            if cols.iter().any(|c| c.len() != len) {
                return Err(FileError::new(
                    path,
                    format!("line {lineno}: the dimensions of one case differ in length"),
                ));
            }
            let label = fields[d].trim();
            let k = match class_names.iter().position(|c| c == label) {
                Some(k) => k,
                None => {
                    return Err(FileError::new(
                        path,
                        format!("line {lineno}: class '{label}' is not among {:?}", class_names),
                    ));
                }
            };
            series.push((0..len).flat_map(|t| cols.iter().map(move |c| c[t])).collect());
            lengths.push(len);
            labels.push(k);
        }
        if !in_data || labels.is_empty() {
            return Err(FileError::new(path, "no @data section with cases"));
        }
        Ok(Self { problem, dims: dims.unwrap_or(1), class_names, series, lengths, labels })
    }

    /// Per-dimension mean and standard deviation over all (non-missing) values.
    pub fn stats(&self) -> Vec<(f32, f32)> {
        (0..self.dims)
            .map(|j| {
                let vals: Vec<f64> = self
                    .series
                    .iter()
                    .flat_map(|s| s.iter().skip(j).step_by(self.dims).copied())
                    .filter(|v| v.is_finite())
                    .map(f64::from)
                    .collect();
                let n = vals.len().max(1) as f64;
                let m = vals.iter().sum::<f64>() / n;
                let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
                (m as f32, if sd > 0.0 { sd as f32 } else { 1.0 })
            })
            .collect()
    }
}
