//! Tables from CSV (polars): reading with general options, typing columns, a schema fitted on
//! the training rows only, and encoding rows into model inputs.
//!
//! Options cover the usual quirks without special cases: no header (names from a list or a
//! names file), a comment prefix (Adult's test file starts with `|1x3 Cross validator`),
//! missing-value markers (`?`), whitespace after the separator (values are trimmed), and a
//! suffix stripped from target values (Adult's test labels end with `.`).

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use ssm_core::error::{FileError, catch_quietly};
use std::collections::HashMap;
use std::path::Path;

/// How a CSV file is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CsvOptions {
    /// The first row names the columns.
    pub header: bool,
    /// Column names for a header-less file (one fewer: the last column is `target`; one more:
    /// the file lacks the last, target, column).
    pub names: Option<Vec<String>>,
    /// Lines starting with this are skipped.
    pub comment: Option<String>,
    /// Cell values (after trimming) that mean "missing".
    pub na: Vec<String>,
    /// Stripped from the end of target values.
    pub strip_suffix: Option<String>,
    /// Numeric features through the quantile-normal transform instead of standardisation.
    #[serde(default)]
    pub quantile: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            names: None,
            comment: None,
            na: vec!["?".into(), "".into(), "NA".into()],
            strip_suffix: None,
            quantile: false,
        }
    }
}

/// Column names from a UCI-style names file: each non-comment line `name: description` names a
/// column (lines starting with `|` and lines without `:` are skipped), or, failing that, one
/// name per line.
pub fn read_names(path: &Path) -> Result<Vec<String>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('|')).collect();
    let colon: Vec<String> =
        lines.iter().filter_map(|l| l.split_once(':')).map(|(n, _)| n.trim().to_string()).collect();
    let names = if colon.is_empty() { lines.iter().map(|l| l.to_string()).collect() } else { colon };
    if names.is_empty() {
        return Err(FileError::new(path, "names no columns"));
    }
    Ok(names)
}

/// A table of trimmed text cells (`None`: missing), column-major.
#[derive(Debug, Clone)]
pub struct RawTable {
    pub names: Vec<String>,
    pub columns: Vec<Vec<Option<String>>>,
    pub rows: usize,
}

impl RawTable {
    /// Reads `path` with `opts`.
    pub fn read(path: &Path, opts: &CsvOptions) -> Result<Self, FileError> {
        if !path.is_file() {
            return Err(FileError::new(path, "no such file"));
        }
        let comment = opts.comment.clone();
        // polars panics on some malformed files (an unterminated quote at the end, found by
        // ssm-fuzz): a panic is a bad file too.
        let df = catch_quietly(|| {
            CsvReadOptions::default()
                .with_has_header(opts.header)
                .with_infer_schema_length(Some(0))
                .map_parse_options(|p| p.with_comment_prefix(comment.as_deref()).with_truncate_ragged_lines(false))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
        })
        .map_err(|p| FileError::new(path, format!("not a readable CSV (the CSV parser failed: {p})")))?
        .map_err(|e| FileError::new(path, format!("not a readable CSV ({e})")))?;
        let mut names: Vec<String> = df.get_column_names().iter().map(|s| s.trim().to_string()).collect();
        if let Some(given) = &opts.names {
            names = match given.len() {
                n if n == names.len() => given.clone(),
                n if n + 1 == names.len() => given.iter().cloned().chain(["target".to_string()]).collect(),
                // Rows to predict, without the last (target) column.
                n if n == names.len() + 1 => given[..names.len()].to_vec(),
                n => return Err(FileError::new(path, format!("{} columns, but {n} names were given", names.len()))),
            };
        } else if !opts.header {
            names = (0..names.len()).map(|i| format!("c{i}")).collect();
        }
        let mut columns = Vec::with_capacity(names.len());
        for c in df.get_columns() {
            let s = c.str().map_err(|e| FileError::new(path, e.to_string()))?;
            columns.push(
                s.into_iter()
                    .map(|v| v.map(str::trim).filter(|v| !opts.na.iter().any(|m| m == v)).map(String::from))
                    .collect::<Vec<_>>(),
            );
        }
        // Drop rows that are entirely empty (a trailing blank line).
        let keep: Vec<usize> = (0..df.height()).filter(|&r| columns.iter().any(|c| c[r].is_some())).collect();
        let columns: Vec<Vec<Option<String>>> =
            columns.into_iter().map(|c| keep.iter().map(|&r| c[r].clone()).collect()).collect();
        if keep.is_empty() {
            return Err(FileError::new(path, "no rows"));
        }
        Ok(RawTable { names, columns, rows: keep.len() })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// What is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

/// A feature's type and training-row statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Kind {
    /// Standardised with the training rows' mean and std — or, when `quantiles` are kept, mapped
    /// to a standard normal through the training rows' empirical CDF (Gorishniy et al.'s
    /// quantile transform); missing → 0.
    Numeric { mean: f64, std: f64, quantiles: Option<Vec<f64>> },
    /// Index into the training rows' categories; 0 = missing or unseen (the documented fallback).
    Categorical { categories: Vec<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub kind: Kind,
}

/// Everything fitted on the training rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub features: Vec<Feature>,
    pub target: String,
    pub task: Task,
    /// Class names (classification).
    pub classes: Vec<String>,
    /// Target mean and std (regression; targets are standardised for training).
    pub target_mean: f64,
    pub target_std: f64,
    /// Targets are divided by this first (e.g. 100 000 for house values).
    pub target_scale: f64,
}

/// A column is numeric when at least this share of its present values parse as numbers.
const NUMERIC_SHARE: f64 = 0.95;

fn parse(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn strip<'a>(v: &'a str, suffix: &Option<String>) -> &'a str {
    suffix.as_deref().and_then(|s| v.strip_suffix(s)).unwrap_or(v).trim()
}

impl Schema {
    /// Types the columns and fits statistics on `rows` of `t`; `task` `None` infers it (a
    /// numeric target with more than 20 distinct values is regression).
    pub fn fit(
        t: &RawTable,
        rows: &[usize],
        target: &str,
        task: Option<Task>,
        opts: &CsvOptions,
        target_scale: f64,
        path: &Path,
    ) -> Result<Self, FileError> {
        let ti = t.index_of(target).ok_or_else(|| {
            FileError::new(path, format!("no target column '{target}' (columns: {})", t.names.join(", ")))
        })?;
        let mut features = Vec::new();
        for (j, col) in t.columns.iter().enumerate().filter(|(j, _)| *j != ti) {
            features.push(Feature {
                name: t.names[j].clone(),
                kind: Self::kind(col, rows, &t.names[j], opts.quantile, path)?,
            });
        }
        let values: Vec<&str> =
            rows.iter().filter_map(|&r| t.columns[ti][r].as_deref()).map(|v| strip(v, &opts.strip_suffix)).collect();
        if values.len() < rows.len() {
            return Err(FileError::new(
                path,
                format!("target '{target}' is missing in {} training rows", rows.len() - values.len()),
            ));
        }
        let numbers: Vec<f64> = values.iter().filter_map(|v| parse(v)).map(|x| x / target_scale).collect();
        let mut distinct: Vec<&str> = values.clone();
        distinct.sort();
        distinct.dedup();
        let task = task.unwrap_or(if numbers.len() == values.len() && distinct.len() > 20 {
            Task::Regression
        } else if distinct.len() == 2 {
            Task::Binary
        } else {
            Task::Multiclass
        });
        let mut s = Schema {
            features,
            target: target.into(),
            task,
            classes: vec![],
            target_mean: 0.0,
            target_std: 1.0,
            target_scale,
        };
        if task == Task::Regression {
            if numbers.len() != values.len() {
                return Err(FileError::new(
                    path,
                    format!("target '{target}' has non-numeric values; regression needs numbers"),
                ));
            }
            (s.target_mean, s.target_std) = mean_std(&numbers);
        } else {
            if distinct.len() < 2 {
                return Err(FileError::new(path, format!("target '{target}' has a single class")));
            }
            s.classes = distinct.iter().map(|v| v.to_string()).collect();
        }
        Ok(s)
    }

    fn kind(
        col: &[Option<String>],
        rows: &[usize],
        name: &str,
        quantile: bool,
        path: &Path,
    ) -> Result<Kind, FileError> {
        let present: Vec<(usize, &str)> = rows.iter().filter_map(|&r| col[r].as_deref().map(|v| (r, v))).collect();
        let numbers: Vec<f64> = present.iter().filter_map(|(_, v)| parse(v)).collect();
        if !present.is_empty() && numbers.len() == present.len() {
            let (mean, std) = mean_std(&numbers);
            return Ok(Kind::Numeric { mean, std, quantiles: quantile.then(|| quantiles(numbers, 1000)) });
        }
        if !present.is_empty() && numbers.len() as f64 >= NUMERIC_SHARE * present.len() as f64 {
            let (r, v) = present.iter().find(|(_, v)| parse(v).is_none()).expect("a non-number");
            return Err(FileError::new(
                path,
                format!("row {}: column '{name}' is numeric but holds '{v}' (mark missing values with --na)", r + 1),
            ));
        }
        let mut cats: Vec<String> = present.iter().map(|(_, v)| v.to_string()).collect();
        cats.sort();
        cats.dedup();
        Ok(Kind::Categorical { categories: cats })
    }

    pub fn numeric(&self) -> usize {
        self.features.iter().filter(|f| matches!(f.kind, Kind::Numeric { .. })).count()
    }

    /// Category counts (plus one for missing / unseen) of the categorical features.
    pub fn cardinalities(&self) -> Vec<usize> {
        self.features
            .iter()
            .filter_map(|f| match &f.kind {
                Kind::Categorical { categories } => Some(categories.len() + 1),
                _ => None,
            })
            .collect()
    }

    /// Model outputs: classes, or 1 for regression.
    pub fn outputs(&self) -> usize {
        if self.task == Task::Regression { 1 } else { self.classes.len() }
    }

    /// Encodes `rows` of `t` (columns matched by name). `with_target`: a missing or unknown
    /// target is an error; otherwise targets are read when present and NaN when not.
    pub fn encode(
        &self,
        t: &RawTable,
        rows: &[usize],
        opts: &CsvOptions,
        with_target: bool,
        path: &Path,
    ) -> Result<Encoded, FileError> {
        let col = |name: &str| {
            t.index_of(name)
                .ok_or_else(|| FileError::new(path, format!("no column '{name}' (the model was trained with it)")))
        };
        let (nn, nc) = (self.numeric(), self.cardinalities().len());
        let mut e = Encoded {
            numeric: vec![0.0; rows.len() * nn],
            categorical: vec![0; rows.len() * nc],
            target: vec![f32::NAN; rows.len()],
            rows: rows.len(),
            unseen: 0,
        };
        let (mut ni, mut ci) = (0, 0);
        for f in &self.features {
            let c = &t.columns[col(&f.name)?];
            match &f.kind {
                Kind::Numeric { mean, std, quantiles } => {
                    for (k, &r) in rows.iter().enumerate() {
                        let Some(v) = c[r].as_deref() else { continue };
                        let x = parse(v).ok_or_else(|| {
                            FileError::new(
                                path,
                                format!("row {}: column '{}' is numeric but holds '{v}'", r + 1, f.name),
                            )
                        })?;
                        e.numeric[k * nn + ni] = match quantiles {
                            Some(q) => quantile_normal(q, x) as f32,
                            None => ((x - mean) / std) as f32,
                        };
                    }
                    ni += 1;
                }
                Kind::Categorical { categories } => {
                    let index: HashMap<&str, i64> =
                        categories.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64 + 1)).collect();
                    for (k, &r) in rows.iter().enumerate() {
                        let id = c[r].as_deref().map(|v| index.get(v).copied().unwrap_or(0));
                        e.unseen += usize::from(id == Some(0));
                        e.categorical[k * nc + ci] = id.unwrap_or(0);
                    }
                    ci += 1;
                }
            }
        }
        let tc = match t.index_of(&self.target) {
            Some(i) => Some(&t.columns[i]),
            None if with_target => return Err(FileError::new(path, format!("no target column '{}'", self.target))),
            None => None,
        };
        for (k, &r) in rows.iter().enumerate() {
            let Some(v) = tc.and_then(|c| c[r].as_deref()).map(|v| strip(v, &opts.strip_suffix)) else {
                if with_target {
                    return Err(FileError::new(path, format!("row {}: target '{}' is missing", r + 1, self.target)));
                }
                continue;
            };
            e.target[k] = match self.task {
                Task::Regression => match parse(v) {
                    Some(x) => ((x / self.target_scale - self.target_mean) / self.target_std) as f32,
                    None => return Err(FileError::new(path, format!("row {}: target '{v}' is not a number", r + 1))),
                },
                _ => match self.classes.iter().position(|c| c == v) {
                    Some(i) => i as f32,
                    None => {
                        return Err(FileError::new(
                            path,
                            format!(
                                "row {}: target '{v}' is not a training class ({})",
                                r + 1,
                                self.classes.join(", ")
                            ),
                        ));
                    }
                },
            };
        }
        Ok(e)
    }
}

/// `k` evenly spaced quantiles (at most) of `v`, deduplicated.
fn quantiles(mut v: Vec<f64>, k: usize) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mut q: Vec<f64> = (0..k.min(n)).map(|i| v[(i * (n - 1)) / (k.min(n) - 1).max(1)]).collect();
    q.dedup();
    q
}

/// `x` through the empirical CDF given by quantiles `q` (linear between them), then the
/// standard normal's inverse CDF, clipped to the central 1 − 10⁻⁷.
pub fn quantile_normal(q: &[f64], x: f64) -> f64 {
    if q.len() < 2 {
        return 0.0;
    }
    let i = q.partition_point(|&v| v <= x);
    let u = match i {
        0 => 0.0,
        i if i >= q.len() => 1.0,
        i => ((i - 1) as f64 + (x - q[i - 1]) / (q[i] - q[i - 1])) / (q.len() - 1) as f64,
    };
    inverse_normal_cdf(u.clamp(5e-8, 1.0 - 5e-8))
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2·10⁻⁹).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 })
}

/// Encoded rows: standardised numeric values, category ids (0 = missing / unseen), targets
/// (class id, or the standardised value; NaN when absent).
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    pub numeric: Vec<f32>,
    pub categorical: Vec<i64>,
    pub target: Vec<f32>,
    pub rows: usize,
    /// Categorical cells whose value was not seen in training (encoded as missing).
    pub unseen: usize,
}

/// A seeded shuffle of `0..n` cut by `fractions` (the last part takes the rest).
pub fn split_rows(n: usize, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut ids: Vec<usize> = (0..n).collect();
    ids.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut out = Vec::new();
    let mut start = 0;
    for (i, f) in fractions.iter().enumerate() {
        let end = if i + 1 == fractions.len() { n } else { (start + (f * n as f64).round() as usize).min(n) };
        out.push(ids[start..end].to_vec());
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_normal_cdf_matches_known_values() {
        for (p, z) in [(0.5, 0.0), (0.975, 1.959963984540054), (0.01, -2.326347874040841), (0.8413447460685429, 1.0)] {
            assert!((inverse_normal_cdf(p) - z).abs() < 1e-8, "Φ⁻¹({p})");
        }
    }

    #[test]
    fn the_quantile_transform_is_monotone_and_centred() {
        let q = quantiles((0..1001).map(|i| (i as f64).powi(3)).collect(), 1000);
        let median = 500f64.powi(3);
        assert!(quantile_normal(&q, median).abs() < 1e-2);
        let xs = [-1.0, 0.0, 10.0, 1e6, median, 9e8, 1e12];
        let zs: Vec<f64> = xs.iter().map(|&x| quantile_normal(&q, x)).collect();
        assert!(zs.windows(2).all(|w| w[0] <= w[1]), "{zs:?}");
        assert!(zs[0] < -5.0 && zs[6] > 5.0);
    }
}
