//! The comparison's report: the table, the one-line conclusion drawn from the measured numbers,
//! and the accuracy-by-length plot.

use crate::data::TestSets;
use anyhow::Result;
use ssm_core::backbone::BackboneConfig;
use ssm_core::plot;
use std::path::Path;

fn accuracy_at(r: &serde_json::Value, len: &str) -> f64 {
    r["test_accuracy_by_length"][len].as_f64().unwrap_or(f64::NAN)
}

/// Test loss at the training length, in bits per scored token.
fn bits(r: &serde_json::Value) -> f64 {
    r["test_bits_per_token"].as_f64().unwrap_or(f64::NAN)
}

fn forward_ms(cost: &[serde_json::Value], label: &str, len: usize) -> Option<f64> {
    let row = cost.iter().find(|r| r["model"] == label && r["len"] == len)?;
    row["forward_seconds"].as_f64().map(|s| s * 1e3)
}

pub fn print_table(results: &[serde_json::Value], tests: &TestSets, cost: &[serde_json::Value], lens: &[usize]) {
    let mut head = format!("\n{:<24} {:>9} {:>8}", "model", "params", "train s");
    for (len, _) in tests {
        head.push_str(&format!(" {:>9}", format!("acc@{len}")));
    }
    head.push_str(&format!(" {:>9}", "bits/tok"));
    for l in lens {
        head.push_str(&format!(" {:>10}", format!("ms@{l}")));
    }
    println!("{head}");
    for r in results {
        let label = r["mixer"].as_str().unwrap_or("?");
        let mut line = format!("{label:<24} {:>9} {:>8.1}", r["params"], r["train_seconds"].as_f64().unwrap_or(0.0));
        for (len, _) in tests {
            line.push_str(&format!(" {:>9.4}", accuracy_at(r, len)));
        }
        line.push_str(&format!(" {:>9.4}", bits(r)));
        for &l in lens {
            line.push_str(&format!(
                " {:>10}",
                forward_ms(cost, label, l).map_or("skipped".into(), |m| format!("{m:.1}"))
            ));
        }
        println!("{line}");
    }
}

/// The same table as markdown (`results.md`), with the conclusion under it.
pub fn markdown_table(
    results: &[serde_json::Value],
    tests: &TestSets,
    cost: &[serde_json::Value],
    lens: &[usize],
    conclusion: &str,
) -> String {
    let mut head = "| model | params | train s |".to_string();
    for (len, _) in tests {
        head.push_str(&format!(" acc@{len} |"));
    }
    head.push_str(" test bits/token |");
    for l in lens {
        head.push_str(&format!(" fwd ms@{l} |"));
    }
    let cols = 4 + tests.len() + lens.len();
    let mut out = format!("{head}\n|{}\n", "---|".repeat(cols));
    for r in results {
        let label = r["mixer"].as_str().unwrap_or("?");
        out.push_str(&format!("| {label} | {} | {:.1} |", r["params"], r["train_seconds"].as_f64().unwrap_or(0.0)));
        for (len, _) in tests {
            out.push_str(&format!(" {:.3} |", accuracy_at(r, len)));
        }
        out.push_str(&format!(" {:.3} |", bits(r)));
        for &l in lens {
            out.push_str(&format!(" {} |", forward_ms(cost, label, l).map_or("skipped".into(), |m| format!("{m:.1}"))));
        }
        out.push('\n');
    }
    format!("{out}\n> {conclusion}\n")
}

/// One line from the measured numbers: where the best SSM stands against the attention
/// baseline (the model with L²-sized activations) in accuracy at each test length, and in
/// forward-pass time at the longest length both ran.
pub fn conclude(
    models: &[(String, BackboneConfig)],
    results: &[serde_json::Value],
    lengths: &[String],
    cost: &[serde_json::Value],
) -> String {
    let quadratic = |cfg: &BackboneConfig| cfg.layers.iter().any(|b| b.mixer.quadratic_bytes(1, 2).is_some());
    let get = |label: &str| results.iter().find(|r| r["mixer"] == label);
    let ssms: Vec<&str> = models.iter().filter(|(_, c)| !quadratic(c)).map(|(l, _)| l.as_str()).collect();
    let Some(base) = models.iter().find(|(_, c)| quadratic(c)).map(|(l, _)| l.as_str()) else {
        return "conclusion: no attention baseline in this comparison".into();
    };
    let (Some(b), false) = (get(base), ssms.is_empty()) else {
        return "conclusion: no SSM in this comparison".into();
    };
    let mut parts = Vec::new();
    for len in lengths {
        let best =
            ssms.iter().filter_map(|l| get(l)).max_by(|x, y| accuracy_at(x, len).total_cmp(&accuracy_at(y, len)));
        if let Some(s) = best {
            let (sa, ba) = (accuracy_at(s, len), accuracy_at(b, len));
            let verdict = if sa > ba + 0.02 {
                "beats"
            } else if sa + 0.02 < ba {
                "trails"
            } else {
                "matches"
            };
            let name = s["mixer"].as_str().unwrap_or("?");
            parts.push(format!("at length {len} {name} {verdict} {base} in accuracy ({sa:.2} vs {ba:.2})"));
        }
    }
    let both = |l: usize| forward_ms(cost, base, l).is_some() && ssms.iter().any(|s| forward_ms(cost, s, l).is_some());
    let mut lens: Vec<usize> = cost.iter().filter_map(|r| r["len"].as_u64().map(|l| l as usize)).collect();
    lens.sort_unstable();
    lens.dedup();
    if let Some(&l) = lens.iter().rev().find(|&&l| both(l)) {
        let fastest =
            ssms.iter().filter_map(|s| forward_ms(cost, s, l).map(|m| (s, m))).min_by(|x, y| x.1.total_cmp(&y.1));
        if let (Some((s, sm)), Some(bm)) = (fastest, forward_ms(cost, base, l)) {
            parts.push(format!(
                "at {l} tokens the {base} forward pass takes {:.1}× as long as {s}'s ({bm:.0} vs {sm:.0} ms)",
                bm / sm
            ));
        }
    }
    if let Some(&l) = lens.iter().rev().find(|&&l| !both(l) && ssms.iter().any(|s| forward_ms(cost, s, l).is_some())) {
        parts.push(format!("at {l} tokens {base} exceeds the memory guard while the SSMs run"));
    }
    format!("conclusion: {}.", parts.join("; "))
}

/// `compare.png`: accuracy against test length (bars when there is one length).
pub fn plot_accuracy(path: &Path, task: &str, results: &[serde_json::Value], tests: &TestSets) -> Result<()> {
    let numeric: Vec<(String, f64)> =
        tests.iter().filter_map(|(l, _)| l.parse::<f64>().ok().map(|x| (l.clone(), x))).collect();
    if numeric.len() < 2 {
        let bars: Vec<(String, f64)> = results
            .iter()
            .map(|r| (r["mixer"].as_str().unwrap_or("?").to_string(), r["test_accuracy"].as_f64().unwrap_or(0.0)))
            .collect();
        return Ok(plot::bar_chart(path, &format!("{task}: test accuracy"), "accuracy", &bars, 1.0)?);
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = results
        .iter()
        .map(|r| {
            (
                r["mixer"].as_str().unwrap_or("?").to_string(),
                numeric.iter().map(|(l, x)| (*x, accuracy_at(r, l))).collect(),
            )
        })
        .collect();
    let title = format!("{task}: test accuracy by sequence length (trained at {})", numeric[0].0);
    Ok(plot::line_chart(path, &title, "sequence length", "accuracy", &series, plot::Scale::Log, plot::Scale::Linear)?)
}
