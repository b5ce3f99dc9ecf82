//! `ssm-compare survey`: the survey page's combined table — every family on every task — and
//! the survey's claims checked against it, read from the runs `scripts/survey.sh` leaves in
//! `--runs` (one folder per task holding the comparison's metrics.json, and `speed/speed.json`).
//! Nothing is trained here: the text is computed from the measured numbers.

use crate::dir_name;
use crate::speed::log_slope;
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct SurveyArgs {
    /// The folder with one run per task (`scripts/survey.sh` writes runs/survey).
    #[arg(long, default_value = "runs/survey")]
    pub runs: PathBuf,
}

/// What a column shows of a family's result.
#[derive(Clone, Copy)]
enum Metric {
    /// Test accuracy at the training length.
    Accuracy,
    /// Test accuracy at another length.
    AccuracyAt(&'static str),
    /// Test loss in bits per token (lower is better).
    Bits,
}

/// (run folder, column title, metric, part of the long-range mean rank).
const COLUMNS: &[(&str, &str, Metric, bool)] = &[
    ("induction", "induction @64", Metric::Accuracy, false),
    ("induction", "induction @1024", Metric::AccuracyAt("1024"), false),
    ("selective-copying", "selective copying", Metric::Accuracy, false),
    ("mqar", "MQAR", Metric::Accuracy, false),
    ("listops", "ListOps", Metric::Accuracy, true),
    ("image", "image", Metric::Accuracy, true),
    ("pathfinder", "Pathfinder", Metric::Accuracy, true),
    ("text", "text", Metric::Accuracy, true),
    ("language", "LM bits/char", Metric::Bits, false),
];

/// The families of the comparison in `dir` whose learning rate was still rising, below the
/// run's peak, at their last evaluation (each family's own metrics.json in `dir/<family>/`).
fn never_at_peak(dir: &Path) -> Vec<String> {
    let Ok(m) = read_json(&dir.join("metrics.json")) else { return Vec::new() };
    let peak = m["train"]["lr"].as_f64().unwrap_or(f64::NAN);
    let rows = m["results"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter_map(|r| r["mixer"].as_str())
        .filter(|f| {
            let Ok(own) = read_json(&dir.join(dir_name(f)).join("metrics.json")) else { return false };
            let lrs: Vec<f64> =
                own["epochs"].as_array().into_iter().flatten().filter_map(|e| e["lr"].as_f64()).collect();
            // rising at every evaluation (two at least), below the peak: the warm-up never ended
            lrs.len() >= 2 && lrs.windows(2).all(|w| w[1] > w[0]) && lrs.last().is_some_and(|&l| l < 0.99 * peak)
        })
        .map(str::to_string)
        .collect()
}

/// Every family's score in every column present (`None`: the run lacks the family).
struct Table {
    families: Vec<String>,
    columns: Vec<(&'static str, Metric, bool)>,
    /// scores[column][family]
    scores: Vec<Vec<Option<f64>>>,
    /// The test split's majority-class share per column, where the run records it.
    majority: Vec<Option<f64>>,
    /// Per run folder present: the families whose learning rate never reached its peak (the
    /// time ran out inside the warm-up).
    warming: Vec<(&'static str, Vec<String>)>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

fn score(r: &Value, m: Metric) -> Option<f64> {
    match m {
        Metric::Accuracy => r["test_accuracy"].as_f64(),
        Metric::AccuracyAt(len) => r["test_accuracy_by_length"][len].as_f64(),
        Metric::Bits => r["test_bits_per_token"].as_f64(),
    }
    .filter(|v| v.is_finite())
}

fn read_table(runs: &Path) -> Result<Table> {
    let mut results: BTreeMap<&str, (Vec<Value>, Option<f64>)> = BTreeMap::new();
    let mut families: Vec<String> = Vec::new();
    for &(folder, ..) in COLUMNS {
        let path = runs.join(folder).join("metrics.json");
        if results.contains_key(folder) || !path.exists() {
            continue;
        }
        let metrics = read_json(&path)?;
        let rows = metrics["results"].as_array().cloned().unwrap_or_default();
        for r in &rows {
            let name = r["mixer"].as_str().unwrap_or("?").to_string();
            if !families.contains(&name) {
                families.push(name);
            }
        }
        results.insert(folder, (rows, metrics["task_config"]["test_majority"].as_f64()));
    }
    if results.is_empty() {
        bail!("{}: no task run found (run scripts/survey.sh)", runs.display());
    }
    let warming = results.keys().map(|&folder| (folder, never_at_peak(&runs.join(folder)))).collect();
    let (mut columns, mut scores, mut majority) = (Vec::new(), Vec::new(), Vec::new());
    for &(folder, title, metric, long) in COLUMNS {
        let Some((rows, maj)) = results.get(folder) else { continue };
        majority.push(maj.filter(|_| matches!(metric, Metric::Accuracy)));
        let find = |f: &String| rows.iter().find(|r| r["mixer"] == f.as_str()).and_then(|r| score(r, metric));
        columns.push((title, metric, long));
        scores.push(families.iter().map(find).collect());
    }
    Ok(Table { families, columns, scores, majority, warming })
}

impl Table {
    /// Rank of each family in column `c` (1: best; a family without a score ranks last).
    fn ranks(&self, c: usize) -> Vec<f64> {
        let lower_better = matches!(self.columns[c].1, Metric::Bits);
        let key = |v: Option<f64>| v.map_or(f64::NEG_INFINITY, |x| if lower_better { -x } else { x });
        let col = &self.scores[c];
        col.iter().map(|&v| 1.0 + col.iter().filter(|&&o| key(o) > key(v)).count() as f64).collect()
    }

    /// Mean rank over the long-range columns present, per family, and how many there are.
    fn long_range_rank(&self) -> (Vec<f64>, usize) {
        let cols: Vec<usize> = (0..self.columns.len()).filter(|&c| self.columns[c].2).collect();
        let mut mean = vec![0.0; self.families.len()];
        for &c in &cols {
            for (m, r) in mean.iter_mut().zip(self.ranks(c)) {
                *m += r / cols.len() as f64;
            }
        }
        (mean, cols.len())
    }

    fn column(&self, title: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.0 == title)
    }

    fn get(&self, c: usize, family: &str) -> Option<f64> {
        self.scores[c][self.families.iter().position(|f| f == family)?]
    }
}

/// (slope of forward + backward time, fwd+bwd ms at the longest length) per family.
fn speed(runs: &Path) -> Result<BTreeMap<String, (Option<f64>, String)>> {
    let path = runs.join("speed/speed.json");
    let mut out = BTreeMap::new();
    if !path.exists() {
        return Ok(out);
    }
    let rows = read_json(&path)?["results"].as_array().cloned().unwrap_or_default();
    let max_len = rows.iter().filter_map(|r| r["len"].as_u64()).max().unwrap_or(0);
    for r in &rows {
        let label = r["model"].as_str().unwrap_or("?").to_string();
        if r["len"] == max_len {
            let ms = r["forward_backward_seconds"].as_f64().map_or("skipped".into(), |s| format!("{:.0}", s * 1e3));
            out.insert(label.clone(), (log_slope(&rows, &label, "forward_backward_seconds"), ms));
        }
    }
    Ok(out)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The combined markdown table.
fn table_md(t: &Table, speed: &BTreeMap<String, (Option<f64>, String)>) -> String {
    let (mean, n_long) = t.long_range_rank();
    let mut out = "| family |".to_string();
    for (title, ..) in &t.columns {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str(&format!(" long-range mean rank ({n_long} tasks) | fwd+bwd slope | fwd+bwd ms @16k |\n|---|"));
    out.push_str(&"---|".repeat(t.columns.len() + 3));
    out.push('\n');
    for (i, f) in t.families.iter().enumerate() {
        out.push_str(&format!("| {f} |"));
        for (c, (_, metric, _)) in t.columns.iter().enumerate() {
            let digits = if matches!(metric, Metric::Bits) { 3 } else { 2 };
            out.push_str(&format!(" {} |", cell(t.scores[c][i], digits)));
        }
        let (slope, ms) = speed.get(f).cloned().unwrap_or((None, "–".into()));
        out.push_str(&format!(" {} | {} | {ms} |\n", cell((n_long > 0).then_some(mean[i]), 1), cell(slope, 2)));
    }
    if t.majority.iter().any(Option::is_some) {
        out.push_str("| *majority class* |");
        for m in &t.majority {
            out.push_str(&format!(" {} |", cell(*m, 2)));
        }
        out.push_str(" | | |\n");
    }
    out
}

/// Families whose score in column `title` is at least `lo` and at most `hi`.
fn families_within(t: &Table, title: &str, lo: f64, hi: f64) -> Vec<String> {
    let Some(c) = t.column(title) else { return Vec::new() };
    t.families.iter().filter(|f| t.get(c, f).is_some_and(|v| (lo..=hi).contains(&v))).cloned().collect()
}

/// The survey's claims, each with what the table says about it.
fn claims_md(t: &Table, speed: &BTreeMap<String, (Option<f64>, String)>) -> String {
    let mut out = String::new();
    if t.column("induction @64").is_some() {
        let (solved, failed) =
            (families_within(t, "induction @64", 0.9, 1.0), families_within(t, "induction @64", 0.0, 0.2));
        out.push_str(&format!(
            "- **Recall needs input-dependent (selective) state updates** (survey: the time-invariant SSMs fail \
             induction heads and selective copying). Here induction heads at the training length is solved \
             (≥ 0.9) by {} and not learned (≤ 0.2) by {}.\n",
            list_or_none(&solved),
            list_or_none(&failed)
        ));
    }
    let (mean, n_long) = t.long_range_rank();
    if n_long > 0 {
        let mut order: Vec<usize> = (0..t.families.len()).collect();
        order.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]));
        let place = |f: &str| order.iter().position(|&i| t.families[i] == f).map(|p| p + 1);
        let top: Vec<String> = order.iter().take(3).map(|&i| format!("{} ({:.1})", t.families[i], mean[i])).collect();
        let leaders: Vec<String> = ["s5", "mega"]
            .iter()
            .filter_map(|f| place(f).map(|p| format!("{f} #{p} of {}", t.families.len())))
            .collect();
        let verdict =
            if ["s5", "mega"].iter().any(|f| place(f).is_some_and(|p| p <= 3)) { "agrees" } else { "does not agree" };
        out.push_str(&format!(
            "- **S5 and Mega lead the long-range tasks** (survey). Here, by mean rank over {n_long} long-range \
             tasks, the top three are {}; {} — this {verdict} (agreement = S5 or Mega in the top three).\n",
            top.join(", "),
            leaders.join(", ")
        ));
    }
    if let Some(c) = t.column("LM bits/char") {
        let att = t.get(c, "attention");
        let mut better: Vec<(String, f64)> = t
            .families
            .iter()
            .filter(|f| f.as_str() != "attention")
            .filter_map(|f| Some((f.clone(), t.get(c, f)?)))
            .filter(|(_, v)| att.is_some_and(|a| *v < a))
            .collect();
        better.sort_by(|a, b| a.1.total_cmp(&b.1));
        let list: Vec<String> = better.iter().map(|(f, v)| format!("{f} {v:.3}")).collect();
        let hgrn_ahead = better.iter().any(|(f, _)| f == "hgrn");
        let only_hgrn = hgrn_ahead && better.len() == 1;
        out.push_str(&format!(
            "- **SSMs trail attention on language modelling, except HGRN** (survey). Here attention reaches {} \
             bits/char; ahead of it: {}. HGRN is {} attention — {}.\n",
            cell(att, 3),
            if list.is_empty() { "no family".into() } else { list.join(", ") },
            if hgrn_ahead { "ahead of" } else { "behind" },
            if only_hgrn {
                "this agrees"
            } else if better.is_empty() {
                "the first half agrees, the exception does not"
            } else {
                "this does not agree: other families beat attention as well"
            }
        ));
        if let (Some(a), Some(m)) = (att, t.get(c, "mamba")) {
            out.push_str(&format!(
                "- **Mamba closes the gap** (survey). Here Mamba reaches {m:.3} bits/char, {:+.3} against \
                 attention (negative: better).\n",
                m - a
            ));
        }
    }
    let warm: Vec<String> = t
        .warming
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(folder, v)| format!("{folder}: {}", v.join(", ")))
        .collect();
    if !warm.is_empty() {
        out.push_str(&format!(
            "- *Caveat*: these runs ended inside their learning-rate warm-up, the rate rising at every \
             evaluation and never at its peak (runs made before the runner capped the warm-up at 5 % \
             of a time budget's steps kept 200 warm-up steps) — {}.\n",
            warm.join("; ")
        ));
    }
    if !speed.is_empty() {
        let linear: Vec<String> =
            speed.iter().filter(|(_, (s, _))| s.is_some_and(|s| s <= 1.2)).map(|(f, _)| f.clone()).collect();
        let steeper: Vec<String> = speed
            .iter()
            .filter(|(_, (s, _))| s.is_some_and(|s| s > 1.2))
            .map(|(f, (s, _))| format!("{f} {:.2}", s.unwrap_or(f64::NAN)))
            .collect();
        out.push_str(&format!(
            "- **SSMs are linear in length, attention quadratic** (survey). Here {} of {} families have a \
             forward + backward slope ≤ 1.2; steeper: {}.\n",
            linear.len(),
            speed.len(),
            list_or_none(&steeper)
        ));
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// `ssm-compare survey`: prints the table and the claims as markdown.
pub fn run_survey(a: SurveyArgs) -> Result<()> {
    let t = read_table(&a.runs)?;
    let s = speed(&a.runs)?;
    println!("{}\n## The survey's claims against this table\n\n{}", table_md(&t, &s), claims_md(&t, &s));
    Ok(())
}
