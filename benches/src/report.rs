//! The results: a Markdown table (printed and written to benches/out) and an
//! SVG bar chart drawn by hand.

use std::fmt::Write as _;
use std::time::Duration;

/// What a load row measured, or why it has no number.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Measured {
        rate: f64,
        p50: Duration,
        p99: Duration,
    },
    /// It ran and answered wrongly, or could not start: a failure, not a number.
    Failed(String),
    /// Not runnable here (stated, not faked).
    NotRun(String),
}

/// What a ratio should be: a throughput ratio at least a floor, a latency
/// ratio at most a ceiling.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    pub(crate) fn value(self) -> f64 {
        match self {
            Self::AtLeast(g) | Self::AtMost(g) => g,
        }
    }

    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(g) => value >= g,
            Self::AtMost(g) => value <= g,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AtLeast(g) => write!(f, "≥ {g}×"),
            Self::AtMost(g) => write!(f, "≤ {g:.1}×"),
        }
    }
}

/// A ratio against something, with its goal.
#[derive(Debug, Clone)]
pub(crate) struct Ratio {
    pub(crate) value: f64,
    /// What the ratio is, e.g. `÷ axum bare` or `reissue HS256 ÷ this`.
    pub(crate) of: String,
    pub(crate) goal: Option<Goal>,
}

impl Ratio {
    pub(crate) fn met(&self) -> Option<bool> {
        self.goal.map(|g| g.met(self.value))
    }
}

/// One row of the load table.
#[derive(Debug, Clone)]
pub(crate) struct LoadRow {
    pub(crate) key: &'static str,
    pub(crate) group: &'static str,
    pub(crate) name: String,
    pub(crate) unit: &'static str,
    pub(crate) outcome: Outcome,
    /// Throughput ÷ the bare route of the same stack.
    pub(crate) vs_bare: Option<f64>,
    /// The first is charted; those with a goal are checked.
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) note: Option<String>,
}

impl LoadRow {
    pub(crate) fn rate(&self) -> Option<f64> {
        match self.outcome {
            Outcome::Measured { rate, .. } => Some(rate),
            _ => None,
        }
    }
}

/// One row of the micro table.
#[derive(Debug, Clone)]
pub(crate) struct MicroRow {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) baseline: String,
    pub(crate) ratio: Option<String>,
    pub(crate) goal: String,
    pub(crate) met: Option<bool>,
}

fn fmt_rate(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.1} k", rate / 1000.0)
    } else {
        format!("{rate:.0}")
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn met_cell(ratio: &Ratio) -> &'static str {
    match ratio.met() {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    }
}

/// The load table, Markdown.
pub(crate) fn load_table(rows: &[LoadRow]) -> String {
    let mut s = String::new();
    s.push_str("| group | row | rate | p50 | p99 | ÷ bare | ratio | of | goal | met |\n");
    s.push_str("|---|---|--:|--:|--:|--:|--:|---|--:|---|\n");
    for r in rows {
        let (rate, p50, p99) = match &r.outcome {
            Outcome::Measured { rate, p50, p99 } => (
                format!("{} {}", fmt_rate(*rate), r.unit),
                fmt_duration(*p50),
                fmt_duration(*p99),
            ),
            Outcome::Failed(why) => (
                format!("FAILED: {}", one_line(why)),
                String::new(),
                String::new(),
            ),
            Outcome::NotRun(why) => (
                format!("not run: {}", one_line(why)),
                String::new(),
                String::new(),
            ),
        };
        let bare = r.vs_bare.map(|v| format!("{v:.2}×")).unwrap_or_default();
        let cells: Vec<[String; 4]> = r
            .ratios
            .iter()
            .map(|q| {
                [
                    format!("{:.2}×", q.value),
                    q.of.clone(),
                    q.goal.map(|g| g.to_string()).unwrap_or_default(),
                    met_cell(q).to_owned(),
                ]
            })
            .collect();
        let column = |i: usize| {
            cells
                .iter()
                .map(|c| c[i].as_str())
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let (ratio, of, goal, met) = (column(0), column(1), column(2), column(3));
        let name = match &r.note {
            Some(n) => format!("{} ({n})", r.name),
            None => r.name.clone(),
        };
        let _ = writeln!(
            s,
            "| {} | {name} | {rate} | {p50} | {p99} | {bare} | {ratio} | {of} | {goal} | {met} |",
            r.group,
        );
    }
    s
}

/// The micro table, Markdown.
pub(crate) fn micro_table(rows: &[MicroRow]) -> String {
    let mut s = String::new();
    s.push_str(
        "| measure | reissue | baseline | ratio | goal | met |\n|---|--:|---|---|---|---|\n",
    );
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {met} |",
            r.name,
            r.value,
            r.baseline,
            r.ratio.as_deref().unwrap_or_default(),
            r.goal
        );
    }
    s
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().replace('|', "/");
    if line.len() > 120 {
        format!("{}…", &line[..line.floor_char_boundary(120)])
    } else {
        line
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of the load rows: throughput on the left, the ratio
/// against its goal on the right (green met, red missed, grey no goal).
pub(crate) fn svg(rows: &[LoadRow], title: &str, subtitle: &str) -> String {
    const ROW_H: f64 = 22.0;
    const LABEL_W: f64 = 330.0;
    const RATE_W: f64 = 240.0;
    // Room for the rate label after the longest bar, then the ratio's name.
    const GAP: f64 = 340.0;
    const RATIO_W: f64 = 240.0;
    const TOP: f64 = 78.0;
    let width = LABEL_W + RATE_W + GAP + RATIO_W + 70.0;
    // A heading line before each group, then its rows.
    let mut lines: Vec<(usize, Option<&LoadRow>)> = Vec::new();
    for r in rows {
        if lines
            .last()
            .and_then(|l| l.1)
            .is_none_or(|last| last.group != r.group)
        {
            lines.push((lines.len(), None));
        }
        lines.push((lines.len(), Some(r)));
    }
    let bottom = TOP + ROW_H * lines.len() as f64;
    let height = bottom + 40.0;
    let max_rate = rows.iter().filter_map(LoadRow::rate).fold(1.0, f64::max);
    let max_ratio = rows
        .iter()
        .filter_map(|r| {
            r.ratios
                .first()
                .map(|q| q.value.max(q.goal.map_or(0.0, Goal::value)))
        })
        .fold(1.2, f64::max)
        .min(4.0);
    let rate_x = LABEL_W;
    let ratio_x = LABEL_W + RATE_W + GAP;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#,
        xml(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="40" fill="#555">{}</text>"##,
        xml(subtitle)
    );
    let _ = writeln!(
        s,
        r#"<text x="{rate_x}" y="{}" font-weight="bold">throughput (per second)</text>"#,
        TOP - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{ratio_x}" y="{}" font-weight="bold">ratio (| = goal)</text>"#,
        TOP - 12.0
    );
    // Ratio gridlines at 0.5, 1.0, ...
    let mut g = 0.5;
    while g <= max_ratio + 1e-9 {
        let x = ratio_x + RATIO_W * g / max_ratio;
        let dash = if (g - 1.0).abs() < 1e-9 {
            ""
        } else {
            r#" stroke-dasharray="3,3""#
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#bbb"{dash}/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{g:.1}×</text>"##,
            TOP - 4.0,
            bottom,
            bottom + 14.0
        );
        g += 0.5;
    }
    for (i, (line, row)) in lines.iter().enumerate() {
        let y = TOP + ROW_H * *line as f64;
        let Some(r) = row else {
            let group = lines.get(i + 1).and_then(|l| l.1).map_or("", |r| r.group);
            let _ = writeln!(
                s,
                r##"<line x1="10" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="10" y="{}" font-weight="bold">{}</text>"##,
                width - 10.0,
                y + 16.0,
                xml(group)
            );
            continue;
        };
        let label = &r.name;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 8.0,
            y + 15.0,
            xml(label)
        );
        match &r.outcome {
            Outcome::Measured { rate, p99, .. } => {
                let w = RATE_W * rate / max_rate;
                let _ = writeln!(
                    s,
                    r##"<rect x="{rate_x}" y="{}" width="{w:.1}" height="{}" fill="#4a78b5"/><text x="{:.1}" y="{}" fill="#222">{} {} · p99 {}</text>"##,
                    y + 4.0,
                    ROW_H - 8.0,
                    rate_x + w + 4.0,
                    y + 15.0,
                    fmt_rate(*rate),
                    r.unit,
                    fmt_duration(*p99)
                );
            }
            Outcome::Failed(_) | Outcome::NotRun(_) => {
                let what = if matches!(r.outcome, Outcome::Failed(_)) {
                    "failed"
                } else {
                    "not run"
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{rate_x}" y="{}" fill="#b00">{what}</text>"##,
                    y + 15.0
                );
            }
        }
        if let Some(q) = r.ratios.first() {
            let color = match q.met() {
                Some(true) => "#3a9a4a",
                Some(false) => "#c8413b",
                None => "#999",
            };
            let w = RATIO_W * q.value.min(max_ratio) / max_ratio;
            let goal_x = q.goal.map(|g| RATIO_W * g.value() / max_ratio);
            let _ = writeln!(
                s,
                r#"<rect x="{ratio_x}" y="{}" width="{w:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{}">{:.2}×</text>"#,
                y + 4.0,
                ROW_H - 8.0,
                ratio_x + w.max(goal_x.unwrap_or(0.0)) + 5.0,
                y + 15.0,
                q.value
            );
            if let Some(gx) = goal_x {
                let x = ratio_x + gx;
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black" stroke-width="2"/>"#,
                    y + 2.0,
                    y + ROW_H - 2.0
                );
            }
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="end" fill="#555" font-size="10">{}</text>"##,
                ratio_x - 6.0,
                y + 15.0,
                xml(&q.of)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
