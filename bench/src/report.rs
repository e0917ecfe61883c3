//! Rows of figures: the table printed at the end and the JSON written beside it.

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: String,
    pub metric: String,
    /// `None` when the case failed or ran out of time before measuring it.
    pub value: Option<f64>,
    pub unit: String,
    /// The target, where it sets one (never asserted: this is a benchmark).
    pub target: String,
    pub note: String,
}

impl Row {
    pub fn new(case: &str, metric: &str, value: f64, unit: &str) -> Row {
        Row {
            case: case.to_string(),
            metric: metric.to_string(),
            value: value.is_finite().then_some(value),
            unit: unit.to_string(),
            target: String::new(),
            note: String::new(),
        }
    }

    /// A case that measured nothing (more): why.
    pub fn failed(case: &str, note: String) -> Row {
        Row {
            case: case.to_string(),
            metric: "(stopped)".into(),
            value: None,
            unit: String::new(),
            target: String::new(),
            note,
        }
    }

    pub fn target(mut self, target: &str) -> Row {
        self.target = target.to_string();
        self
    }
}

/// The `q` quantile (0..=1) of `values` by nearest rank; NaN for none.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The p50 and p99 rows of `what` (milliseconds), the target on the p99.
pub fn latency_rows(case: &str, what: &str, values: &mut [f64], target: &str) -> [Row; 2] {
    [
        Row::new(case, &format!("{what} p50"), percentile(values, 0.5), "ms"),
        Row::new(case, &format!("{what} p99"), percentile(values, 0.99), "ms").target(target),
    ]
}

/// A value with as many decimals as it needs to be read.
fn shown(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

pub fn table(rows: &[Row]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header(["case", "metric", "value", "unit", "target", "note"]);
    for row in rows {
        table.add_row([
            row.case.clone(),
            row.metric.clone(),
            shown(row.value),
            row.unit.clone(),
            row.target.clone(),
            row.note.clone(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }
}
