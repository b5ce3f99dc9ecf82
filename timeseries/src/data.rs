//! Multivariate series from CSV (polars), the long-term-forecasting protocol, scaling, windows.
//!
//! * `Table::read`: a CSV with a header row and an optional date column (named `date`, or a first
//!   column that is not numeric), any number of variables; or a header-less file whose names
//!   come from a column list (`weather.txt` + `weather.columns.txt`, one name per line).
//! * Splits (Autoformer / Time-Series-Library `data_loader.py`): ETTh by rows
//!   [0, 8640) / [8640 − L, 11520) / [11520 − L, 14400); ETTm the same × 4; other data 70 / 10 /
//!   20 % by time, each later split starting L rows early (the lookback overlap).
//! * z-scoring with the training rows' mean and standard deviation (population, as sklearn's
//!   `StandardScaler`); windows of lookback L and horizon H at stride 1, all of them.

use polars::prelude::*;
use ssm_core::error::InvalidConfig;
use std::ops::Range;
use std::path::Path;

/// A data problem, naming the file.
pub use ssm_core::error::FileError as DataError;
use ssm_core::error::{FileError, catch_quietly};

/// A table of `rows × vars` values (row-major), the variables' names and optional dates.
#[derive(Debug, Clone)]
pub struct Table {
    pub names: Vec<String>,
    pub dates: Option<Vec<String>>,
    pub values: Vec<f32>,
    pub rows: usize,
}

impl Table {
    /// A generated series for runs without data: 3 variables with daily and weekly cycles, a
    /// slow trend and noise, 4000 hourly rows.
    pub fn generated() -> Table {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (rows, vars) = (4000, 3);
        let mut values = Vec::with_capacity(rows * vars);
        for t in 0..rows {
            let tf = t as f64;
            for v in 0..vars {
                let day = (std::f64::consts::TAU * tf / 24.0 + v as f64).sin();
                let week = (std::f64::consts::TAU * tf / 168.0).cos() * (v as f64 + 1.0) * 0.5;
                values.push((day + week + 0.0005 * tf + 0.2 * rng.random_range(-1.0..1.0)) as f32);
            }
        }
        Table { names: vec!["a".into(), "b".into(), "OT".into()], dates: None, values, rows }
    }

    pub fn vars(&self) -> usize {
        self.names.len()
    }

    /// Reads `path`; a sibling `<stem>.columns.txt` marks a header-less file and names its columns.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let list = path.with_extension("columns.txt");
        if list.exists() {
            let text = std::fs::read_to_string(&list).map_err(|e| FileError::new(&list, e.to_string()))?;
            let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            return Self::read_csv(path, Some(&names));
        }
        Self::read_csv(path, None)
    }

    /// Reads a CSV with a header (`columns = None`) or a header-less one with these names.
    pub fn read_csv(path: &Path, columns: Option<&[String]>) -> Result<Self, DataError> {
        if !path.is_file() {
            return Err(FileError::new(path, "no such file"));
        }
        // polars panics on some malformed files (an unterminated quote at the end, found by
        // ssm-fuzz): a panic is a bad file too.
        let df = catch_quietly(|| {
            CsvReadOptions::default()
                .with_has_header(columns.is_none())
                .with_infer_schema_length(Some(1000))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
        })
        .map_err(|p| FileError::new(path, format!("not a readable CSV (the CSV parser failed: {p})")))?
        .map_err(|e| FileError::new(path, format!("not a readable CSV ({e})")))?;
        let mut names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
        if let Some(cols) = columns {
            if cols.len() != names.len() {
                return Err(FileError::new(
                    path,
                    format!("{} columns, the column list names {}", names.len(), cols.len()),
                ));
            }
            names = cols.to_vec();
        }
        let rows = df.height();
        if rows == 0 || names.is_empty() {
            return Err(FileError::new(path, "no rows"));
        }
        let cols = df.get_columns();
        let numeric = |c: &Column| c.dtype().is_primitive_numeric();
        let date_idx =
            names.iter().position(|n| n.eq_ignore_ascii_case("date")).or_else(|| (!numeric(&cols[0])).then_some(0));
        let dates = match date_idx {
            Some(i) => {
                let s = cols[i].cast(&DataType::String).map_err(|e| FileError::new(path, e.to_string()))?;
                let ca = s.str().map_err(|e| FileError::new(path, e.to_string()))?;
                Some(ca.into_iter().map(|v| v.unwrap_or("").to_string()).collect())
            }
            None => None,
        };
        let var_idx: Vec<usize> = (0..names.len()).filter(|&i| Some(i) != date_idx).collect();
        if var_idx.is_empty() {
            return Err(FileError::new(path, "no variables besides the date"));
        }
        let mut values = vec![0f32; rows * var_idx.len()];
        for (j, &i) in var_idx.iter().enumerate() {
            if !numeric(&cols[i]) {
                return Err(FileError::new(
                    path,
                    format!("column '{}' is not numeric ({})", names[i], cols[i].dtype()),
                ));
            }
            let s = cols[i].cast(&DataType::Float64).map_err(|e| FileError::new(path, e.to_string()))?;
            let ca = s.f64().map_err(|e| FileError::new(path, e.to_string()))?;
            for (r, v) in ca.into_iter().enumerate() {
                match v {
                    Some(x) if x.is_finite() => values[r * var_idx.len() + j] = x as f32,
                    _ => {
                        return Err(FileError::new(
                            path,
                            format!("row {}: column '{}' is missing or not finite", r + 1, names[i]),
                        ));
                    }
                }
            }
        }
        Ok(Self { names: var_idx.iter().map(|&i| names[i].clone()).collect(), dates, values, rows })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Column `v` over rows `r`.
    pub fn column(&self, v: usize, r: Range<usize>) -> Vec<f32> {
        r.map(|i| self.values[i * self.vars() + v]).collect()
    }

    /// Rows per day, when the dates advance by one fixed step that divides a day into at least
    /// two rows (hourly: 24, 15 minutes: 96, 10 minutes: 144); `None` without dates, for daily or
    /// coarser data, or when the first steps differ.
    pub fn rows_per_day(&self) -> Option<usize> {
        let d = self.dates.as_ref()?;
        let t: Vec<i64> = d.iter().take(3).map(|s| seconds(s)).collect::<Option<_>>()?;
        let step = *t.get(1)? - t[0];
        let ok = step > 0 && t.get(2).is_none_or(|t2| t2 - t[1] == step) && 86_400 % step == 0;
        (ok && step < 86_400).then(|| (86_400 / step) as usize)
    }
}

/// Seconds since 1970-01-01 of `YYYY-MM-DD[ HH:MM[:SS]]` (`/` and `T` accepted as separators).
fn seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let (day, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00"));
    let ymd: Vec<i64> = day.split(['-', '/']).map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse::<f64>().ok().map(|v| v as i64)).collect::<Option<_>>()?;
    let ([y, m, dd], [h, mi, rest @ ..]) = (ymd.as_slice(), hms.as_slice()) else { return None };
    let sec = rest.first().copied().unwrap_or(0);
    let valid = (1..=9999).contains(y) && (1..=12).contains(m) && (1..=31).contains(dd);
    if !valid || !(0..=24).contains(h) || !(0..60).contains(mi) || !(0..=60).contains(&sec) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's `days_from_civil`).
    let (y, m) = if *m <= 2 { (y - 1, m + 9) } else { (*y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + dd - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// How a series is cut into train / validation / test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// ETTh: 12 / 4 / 4 months of hours.
    EttHour,
    /// ETTm: the same in 15-minute steps.
    EttMinute,
    /// Fractions for train and test by time (validation takes the rest).
    Ratio { train: f64, test: f64 },
}

impl Protocol {
    /// ETTh* / ETTm* by file name, else 70 / 10 / 20 %.
    pub fn for_path(path: &Path) -> Self {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if name.starts_with("ETTh") {
            Protocol::EttHour
        } else if name.starts_with("ETTm") {
            Protocol::EttMinute
        } else {
            Protocol::Ratio { train: 0.7, test: 0.2 }
        }
    }

    /// Row ranges (train, val, test) for `rows` rows and lookback `l`; the later splits start
    /// `l` rows early so their first window's lookback lies before the split border.
    pub fn splits(&self, rows: usize, l: usize) -> Result<[Range<usize>; 3], InvalidConfig> {
        let (b1, b2) = match *self {
            Protocol::EttHour | Protocol::EttMinute => {
                let m = if *self == Protocol::EttMinute { 4 } else { 1 };
                let (tr, va) = (12 * 30 * 24 * m, 4 * 30 * 24 * m);
                if rows < tr + 2 * va {
                    return Err(InvalidConfig(format!("{rows} rows: the ETT protocol needs {}", tr + 2 * va)));
                }
                ([0, tr - l, tr + va - l], [tr, tr + va, tr + 2 * va])
            }
            Protocol::Ratio { train, test } => {
                let n_train = (rows as f64 * train) as usize;
                let n_test = (rows as f64 * test) as usize;
                let n_val = rows - n_train - n_test;
                if n_train < l || rows < n_test + l {
                    return Err(InvalidConfig(format!("{rows} rows are too few for lookback {l}")));
                }
                ([0, n_train - l, rows - n_test - l], [n_train, n_train + n_val, rows])
            }
        };
        Ok([b1[0]..b2[0], b1[1]..b2[1], b1[2]..b2[2]])
    }
}

/// Per-variable mean and standard deviation of the training rows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    pub fn fit(t: &Table, rows: Range<usize>) -> Self {
        let v = t.vars();
        let n = rows.len().max(1) as f64;
        let (mut mean, mut std) = (vec![0f32; v], vec![0f32; v]);
        for j in 0..v {
            let col = t.column(j, rows.clone());
            let m = col.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = col.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
            mean[j] = m as f32;
            std[j] = if var > 0.0 { var.sqrt() as f32 } else { 1.0 };
        }
        Self { mean, std }
    }

    pub fn transform(&self, t: &Table) -> Vec<f32> {
        let v = t.vars();
        t.values.iter().enumerate().map(|(i, &x)| (x - self.mean[i % v]) / self.std[i % v]).collect()
    }

    pub fn inverse(&self, v: usize, x: f32) -> f32 {
        x * self.std[v] + self.mean[v]
    }
}

/// Forecasting modes: multivariate → multivariate (M), univariate (S), multivariate → target (MS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Mode {
    #[value(name = "M", alias = "m")]
    M,
    #[value(name = "S", alias = "s")]
    S,
    #[value(name = "MS", alias = "ms")]
    MS,
}

impl std::str::FromStr for Mode {
    type Err = InvalidConfig;
    fn from_str(s: &str) -> Result<Self, InvalidConfig> {
        match s {
            "M" | "m" => Ok(Mode::M),
            "S" | "s" => Ok(Mode::S),
            "MS" | "ms" => Ok(Mode::MS),
            o => Err(InvalidConfig(format!("unknown mode '{o}' (M, S, MS)"))),
        }
    }
}

/// One split, z-scored: `rows × vars` values (the input variables of the mode) and which of
/// them are forecast targets.
#[derive(Debug, Clone)]
pub struct Segment {
    pub values: Vec<f32>,
    /// The segment's first row in the table.
    pub first_row: usize,
    pub rows: usize,
    pub vars: usize,
    pub targets: Vec<usize>,
}

impl Segment {
    /// Windows of lookback `l` and horizon `h` at stride 1: `rows − l − h + 1` (all of them).
    pub fn windows(&self, l: usize, h: usize) -> usize {
        (self.rows + 1).saturating_sub(l + h)
    }

    /// Window `i`: lookback `[l, vars]` and the future `[h, vars]`.
    pub fn window(&self, i: usize, l: usize, h: usize) -> (&[f32], &[f32]) {
        let v = self.vars;
        (&self.values[i * v..(i + l) * v], &self.values[(i + l) * v..(i + l + h) * v])
    }
}

/// A table cut into z-scored train / val / test segments under a protocol and mode.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Segment,
    pub val: Segment,
    pub test: Segment,
    pub scaler: Scaler,
    /// Names of the segment variables.
    pub names: Vec<String>,
    /// Row ranges in the table.
    pub ranges: [Range<usize>; 3],
}

impl Splits {
    pub fn new(
        t: &Table,
        protocol: Protocol,
        lookback: usize,
        mode: Mode,
        target: &str,
    ) -> Result<Self, InvalidConfig> {
        let ranges = protocol.splits(t.rows, lookback)?;
        let tgt = t
            .index_of(target)
            .ok_or_else(|| InvalidConfig(format!("no target column '{target}' (columns: {})", t.names.join(", "))))?;
        let scaler = Scaler::fit(t, ranges[0].clone());
        let z = scaler.transform(t);
        let all = t.vars();
        let (cols, targets): (Vec<usize>, Vec<usize>) = match mode {
            Mode::M => ((0..all).collect(), (0..all).collect()),
            Mode::S => (vec![tgt], vec![0]),
            Mode::MS => ((0..all).collect(), vec![tgt]),
        };
        let seg = |r: &Range<usize>| Segment {
            values: r.clone().flat_map(|i| cols.iter().map(move |&c| (i, c))).map(|(i, c)| z[i * all + c]).collect(),
            first_row: r.start,
            rows: r.len(),
            vars: cols.len(),
            targets: targets.clone(),
        };
        let scaler = Scaler {
            mean: cols.iter().map(|&c| scaler.mean[c]).collect(),
            std: cols.iter().map(|&c| scaler.std[c]).collect(),
        };
        Ok(Self {
            train: seg(&ranges[0]),
            val: seg(&ranges[1]),
            test: seg(&ranges[2]),
            scaler,
            names: cols.iter().map(|&c| t.names[c].clone()).collect(),
            ranges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dates: &[&str]) -> Table {
        let rows = dates.len();
        Table {
            names: vec!["a".into()],
            dates: Some(dates.iter().map(|d| d.to_string()).collect()),
            values: vec![0.0; rows],
            rows,
        }
    }

    #[test]
    fn rows_per_day_from_the_date_step() {
        assert_eq!(
            table(&["2016-07-01 00:00:00", "2016-07-01 01:00:00", "2016-07-01 02:00:00"]).rows_per_day(),
            Some(24)
        );
        assert_eq!(table(&["2016-07-01 23:45", "2016-07-02 00:00", "2016-07-02 00:15"]).rows_per_day(), Some(96));
        assert_eq!(table(&["2020/12/31 23:50", "2021/01/01 00:00"]).rows_per_day(), Some(144));
        // Daily data, uneven steps, no dates, unparsable dates: no daily cycle.
        assert_eq!(table(&["1990-01-01", "1990-01-02", "1990-01-03"]).rows_per_day(), None);
        assert_eq!(table(&["2016-07-01 00:00", "2016-07-01 01:00", "2016-07-01 03:00"]).rows_per_day(), None);
        assert_eq!(table(&["x", "y"]).rows_per_day(), None);
        assert_eq!(table(&["99999999999999-01-01", "2016-13-01"]).rows_per_day(), None, "out of range");
        assert_eq!(table(&["2016-01-01 9999999999:00", "2016-01-01 00:99"]).rows_per_day(), None);
        assert_eq!(Table::generated().rows_per_day(), None);
    }

    #[test]
    fn seconds_across_a_leap_day() {
        assert_eq!(seconds("1970-01-01 00:00:01"), Some(1));
        assert_eq!(seconds("2016-03-01 00:00").unwrap() - seconds("2016-02-28 00:00").unwrap(), 2 * 86_400);
    }
}
