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
    /// Every broken rule, in words.
    pub violations: Vec<String>,
}

impl Books {
    /// Whether every rule holds.
    pub fn hold(&self) -> bool {
        self.violations.is_empty()
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
        let rejected = matches!(
            why,
            Some(reason::OUT_OF_STOCK | reason::UNKNOWN_ITEM | reason::EVENT_NOT_SENT)
        );
        let problem = match status {
            "ORDER_COMPLETE" => {
                books.completed += 1;
                (rows != 1 || sum >= 0)
                    .then(|| format!("completed but history has {rows} rows summing to {sum}"))
            }
            "ORDER_CANCEL" if rejected => {
                books.cancelled += 1;
                (rows != 0).then(|| {
                    format!(
                        "rejected ({}) but history has {rows} rows",
                        why.unwrap_or("")
                    )
                })
            }
            "ORDER_CANCEL" => {
                books.cancelled += 1;
                (rows != 2 || sum != 0).then(|| {
                    format!(
                        "cancelled but history has {rows} rows summing to {sum} (expected −q, +q)"
                    )
                })
            }
            other => {
                books.open += 1;
                Some(format!("not final: {other}"))
            }
        };
        if let Some(problem) = problem {
            books.violations.push(format!("order {tx}: {problem}"));
        }
        seen.insert(tx);
    }
    for tx in history.keys().filter(|tx| !seen.contains(*tx)) {
        books
            .violations
            .push(format!("history rows of {tx}, which is no order"));
    }
    let changes: HashMap<i32, i64> = stock.history_by_item().await?.into_iter().collect();
    for item in stock.items().await? {
        let before = initial.get(&item.id).copied().unwrap_or(item.quantity);
        let change = changes.get(&item.id).copied().unwrap_or(0);
        if i64::from(before) + change != i64::from(item.quantity) {
            books.violations.push(format!(
                "item {} ({}): stock {} but {before} + history {change} = {}",
                item.id,
                item.name,
                item.quantity,
                i64::from(before) + change
            ));
        }
        if item.quantity < 0 {
            books.violations.push(format!(
                "item {} stock below zero: {}",
                item.id, item.quantity
            ));
        }
    }
    Ok(books)
}
