//! `edm lab --saga both`: the two styles' runs of the same orders, side by side — what a
//! student compares: messages and latency per saga, where the saga's state lives, who
//! decides, how it is compensated, what ends a stuck saga, and the same invariants.

use crate::orchestration::SagaStyle;

/// What one style's demonstration showed, for the comparison.
pub struct Shown {
    pub style: SagaStyle,
    /// Per demo saga: messages on the topics, and ms from the POST to the final status.
    pub sagas: Vec<(usize, Option<i64>)>,
    /// Per demo saga: its transaction id.
    pub transactions: Vec<String>,
    /// Whether every invariant held.
    pub hold: bool,
}

/// The comparison table of `shown` (one entry per style, same demo orders `stories`).
pub fn render(shown: &[Shown], stories: &[String]) -> String {
    const LABEL: usize = 30;
    const COLUMN: usize = 42;
    let mut out = String::from("\nSide by side: the same orders, both SAGA styles\n");
    let mut row = |label: &str, cells: Vec<String>| {
        out.push_str(&format!("  {label:<LABEL$}"));
        for cell in cells {
            out.push_str(&format!(" {cell:<COLUMN$}"));
        }
        let end = out.trim_end_matches(' ').len();
        out.truncate(end);
        out.push('\n');
    };
    row(
        "",
        shown.iter().map(|s| s.style.as_str().to_string()).collect(),
    );
    for (n, story) in stories.iter().enumerate() {
        row(&format!("{}) {story}", n + 1), Vec::new());
        let messages = shown
            .iter()
            .map(|s| s.sagas.get(n).map_or("?".into(), |(m, _)| format!("{m}")))
            .collect();
        row("   messages on the topics", messages);
        let latency = shown
            .iter()
            .map(|s| match s.sagas.get(n) {
                Some((_, Some(ms))) => format!("{ms} ms"),
                _ => "?".into(),
            })
            .collect();
        row("   POST → final status", latency);
    }
    for (i, (label, _)) in SagaStyle::Choreography.traits().iter().enumerate() {
        row(
            label,
            shown
                .iter()
                .map(|s| s.style.traits()[i].1.to_string())
                .collect(),
        );
    }
    let verdict = |hold: bool| match hold {
        true => "✓ hold".to_string(),
        false => "✗ broken".to_string(),
    };
    row(
        "invariants",
        shown.iter().map(|s| verdict(s.hold)).collect(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_style_gets_a_column_with_its_figures() {
        let shown = [
            Shown {
                style: SagaStyle::Choreography,
                sagas: vec![(3, Some(5)), (4, Some(7))],
                transactions: Vec::new(),
                hold: true,
            },
            Shown {
                style: SagaStyle::Orchestration,
                sagas: vec![(4, Some(6)), (6, None)],
                transactions: Vec::new(),
                hold: false,
            },
        ];
        let table = render(&shown, &["alice: ok".into(), "bob: declined".into()]);
        let line = |start: &str| {
            table
                .lines()
                .filter(|l| l.trim_start().starts_with(start))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line("messages"),
            ["messages on the topics 3 4", "messages on the topics 4 6"]
        );
        assert_eq!(
            line("POST"),
            [
                "POST → final status 5 ms 6 ms",
                "POST → final status 7 ms ?"
            ]
        );
        assert_eq!(line("invariants"), ["invariants ✓ hold ✗ broken"]);
        assert!(table.contains("choreography") && table.contains("orchestration"));
    }
}
