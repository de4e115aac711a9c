//! The books of a lab run, checked: every order final, stock consistent with its history,
//! every saga's history consistent with how it ended.

use std::collections::HashMap;

use serde_json::Value;

use crate::event::reason;
use crate::store::inventory::{InventoryError, InventoryStore};
use crate::store::orders::{OrderStore, OrderStoreError};

/// Errors reading the stores for the check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// MySQL failed.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// DynamoDB failed.
    #[error(transparent)]
    Orders(#[from] OrderStoreError),
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Books {
    /// Orders that ended ORDER_COMPLETE.
    pub completed: usize,
    /// Orders that ended ORDER_CANCEL.
    pub cancelled: usize,
    /// Orders not final yet.
    pub open: usize,
    /// Every broken rule.
    pub violations: Vec<Violation>,
}

/// The rules the books keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Every order ends ORDER_COMPLETE or ORDER_CANCEL.
    Final,
    /// Each saga's stock history matches how its order ended.
    History,
    /// Stock equals its starting value plus its history, and never goes below zero.
    Stock,
}

/// One broken rule, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// What was found, in words.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Books {
    /// Whether every rule holds.
    pub fn hold(&self) -> bool {
        self.violations.is_empty()
    }

    /// Whether `rule` holds.
    pub fn keeps(&self, rule: Rule) -> bool {
        self.violations.iter().all(|v| v.rule != rule)
    }

    /// The checks as ✓/✗ lines, with (up to 20 of) the violations.
    pub fn render(&self) -> String {
        let mark = |ok: bool| if ok { "✓" } else { "✗" };
        let mut out = String::from("Invariants\n");
        out.push_str(&format!(
            "  {} every order final ({} ORDER_COMPLETE, {} ORDER_CANCEL, {} open)\n",
            mark(self.keeps(Rule::Final)),
            self.completed,
            self.cancelled,
            self.open
        ));
        out.push_str(&format!(
            "  {} stock consistent with history, never below zero; every saga's history matches its outcome\n",
            mark(self.keeps(Rule::History) && self.keeps(Rule::Stock))
        ));
        for violation in self.violations.iter().take(20) {
            out.push_str(&format!("      {violation}\n"));
        }
        if self.violations.len() > 20 {
            out.push_str(&format!(
                "      … and {} more\n",
                self.violations.len() - 20
            ));
        }
        out
    }
}

/// How an order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Completed,
    Cancelled,
    Open,
}

/// How an order ended, and what is wrong with its stock history (`rows` rows of the
/// transaction summing to `sum`), if anything.
fn judge(status: &str, why: Option<&str>, rows: i64, sum: i64) -> (Ending, Option<String>) {
    match (status, why) {
        ("ORDER_COMPLETE", _) => (
            Ending::Completed,
            (rows != 1 || sum >= 0)
                .then(|| format!("completed but history has {rows} rows summing to {sum}")),
        ),
        // Rejected before any stock moved.
        ("ORDER_CANCEL", Some(why @ (reason::OUT_OF_STOCK | reason::UNKNOWN_ITEM))) => (
            Ending::Cancelled,
            (rows != 0).then(|| format!("rejected ({why}) but history has {rows} rows")),
        ),
        // Cancelled by an order service of before issue 11 when Kafka acknowledged its
        // event late: no stock moved, or — the event reached the broker after all — the
        // late compensation gave back what the inventory took (−q, +q).
        ("ORDER_CANCEL", Some(why @ reason::EVENT_NOT_SENT)) => (
            Ending::Cancelled,
            (rows != 0 && (rows != 2 || sum != 0)).then(|| {
                format!("cancelled ({why}) but history has {rows} rows summing to {sum} (expected none, or −q, +q)")
            }),
        ),
        ("ORDER_CANCEL", _) => (
            Ending::Cancelled,
            (rows != 2 || sum != 0).then(|| {
                format!("cancelled but history has {rows} rows summing to {sum} (expected −q, +q)")
            }),
        ),
        (other, _) => (Ending::Open, Some(format!("not final: {other}"))),
    }
}

/// Checks the books against the stock each item had before the run (`initial`).
pub async fn check(
    stock: &InventoryStore,
    orders: &OrderStore,
    initial: &HashMap<i32, i32>,
) -> Result<Books, CheckError> {
    let mut books = Books::default();
    let history: HashMap<String, (i64, i64)> = stock
        .history_by_transaction()
        .await?
        .into_iter()
        .map(|(tx, rows, sum)| (tx, (rows, sum)))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for order in orders.all_orders().await? {
        let tx = order
            .get("transaction_id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let status = order.get("status").and_then(Value::as_str).unwrap_or("?");
        let why = order.get("reason").and_then(Value::as_str);
        let (rows, sum) = history.get(&tx).copied().unwrap_or((0, 0));
        let (ending, problem) = judge(status, why, rows, sum);
        match ending {
            Ending::Completed => books.completed += 1,
            Ending::Cancelled => books.cancelled += 1,
            Ending::Open => books.open += 1,
        }
        if let Some(problem) = problem {
            let rule = match ending {
                Ending::Open => Rule::Final,
                Ending::Completed | Ending::Cancelled => Rule::History,
            };
            books.violations.push(Violation {
                rule,
                detail: format!("order {tx}: {problem}"),
            });
        }
        seen.insert(tx);
    }
    for tx in history.keys().filter(|tx| !seen.contains(*tx)) {
        books.violations.push(Violation {
            rule: Rule::History,
            detail: format!("history rows of {tx}, which is no order"),
        });
    }
    let changes: HashMap<i32, i64> = stock.history_by_item().await?.into_iter().collect();
    for item in stock.items().await? {
        let before = initial.get(&item.id).copied().unwrap_or(item.quantity);
        let change = changes.get(&item.id).copied().unwrap_or(0);
        if i64::from(before) + change != i64::from(item.quantity) {
            books.violations.push(Violation {
                rule: Rule::Stock,
                detail: format!(
                    "item {} ({}): stock {} but {before} + history {change} = {}",
                    item.id,
                    item.name,
                    item.quantity,
                    i64::from(before) + change
                ),
            });
        }
        if item.quantity < 0 {
            books.violations.push(Violation {
                rule: Rule::Stock,
                detail: format!("item {} stock below zero: {}", item.id, item.quantity),
            });
        }
    }
    Ok(books)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_the_history_it_must_have() {
        let ok = |status, why, rows, sum| judge(status, why, rows, sum).1.is_none();
        assert!(ok("ORDER_COMPLETE", None, 1, -3));
        assert!(
            !ok("ORDER_COMPLETE", None, 2, 0),
            "a completed order that got its stock back"
        );
        assert!(ok("ORDER_CANCEL", Some(reason::OUT_OF_STOCK), 0, 0));
        assert!(!ok("ORDER_CANCEL", Some(reason::UNKNOWN_ITEM), 2, 0));
        assert!(ok("ORDER_CANCEL", Some(reason::PAYMENT_DECLINED), 2, 0));
        assert!(
            !ok("ORDER_CANCEL", Some(reason::PAYMENT_DECLINED), 1, -3),
            "stock lost"
        );
        // The late-compensation path of an event acknowledged too late.
        assert!(ok("ORDER_CANCEL", Some(reason::EVENT_NOT_SENT), 0, 0));
        assert!(ok("ORDER_CANCEL", Some(reason::EVENT_NOT_SENT), 2, 0));
        assert!(
            !ok("ORDER_CANCEL", Some(reason::EVENT_NOT_SENT), 1, -3),
            "stock lost"
        );
        assert_eq!(judge("ORDER_CREATED", None, 0, 0).0, Ending::Open);
    }

    #[test]
    fn each_rule_is_marked_by_its_own_violations() {
        let open = Books {
            open: 1,
            violations: vec![Violation {
                rule: Rule::Final,
                detail: "order t: not final: ORDER_CREATED".into(),
            }],
            ..Books::default()
        };
        let lines: Vec<String> = open.render().lines().map(str::to_string).collect();
        assert!(lines[1].starts_with("  ✗ every order final"), "{lines:?}");
        assert!(lines[2].starts_with("  ✓ stock consistent"), "{lines:?}");
        let lost = Books {
            violations: vec![Violation {
                rule: Rule::Stock,
                detail: "item 1 stock below zero: -1".into(),
            }],
            ..Books::default()
        };
        let lines: Vec<String> = lost.render().lines().map(str::to_string).collect();
        assert!(lines[1].starts_with("  ✓ every order final"), "{lines:?}");
        assert!(lines[2].starts_with("  ✗ stock consistent"), "{lines:?}");
    }
}
