//! Where a lab run keeps its stock and its orders: always stores of its own, so that it
//! never writes to a table or a file it did not create for the run. On a MySQL server it
//! is given, a database of its own (`edm_lab_<id>`); on DynamoDB, a table of its own;
//! otherwise SQLite files in the run's own directory — also when it is given a SQLite
//! URL, which names the student's own file (exported as EDM_MYSQL_URL or
//! EDM_DYNAMODB_ENDPOINT for the walkthrough without Docker): the lab leaves that file
//! alone.

use std::path::Path;

use super::args::LabArgs;
use super::embedded;
use crate::config::{InventoryStoreArgs, OrderStoreArgs};

/// A run's stores, and what to tell the student about them.
#[derive(Debug, Clone)]
pub struct RunStores {
    pub inventory: InventoryStoreArgs,
    pub orders: OrderStoreArgs,
    /// The MySQL database the run created (dropped at the end), if on MySQL.
    pub mysql_database: Option<String>,
    /// Whether a store is a SQLite file in the run's directory.
    pub uses_dir: bool,
    /// Where the stock is, in words.
    pub stock_label: String,
    /// Where the orders are, in words.
    pub orders_label: String,
}

fn is_sqlite(url: &str) -> bool {
    url.trim_start().to_ascii_lowercase().starts_with("sqlite:")
}

/// The stores of run `id`, from the servers `args` name (flags or environment), with its
/// SQLite files in `dir`.
pub fn plan(args: &LabArgs, id: &str, dir: &Path) -> anyhow::Result<RunStores> {
    let own_file = |file: &str| embedded::sqlite_url(dir, file);
    let given = |url: &Option<String>| url.clone().filter(|u| !is_sqlite(u));
    let note = |url: &Option<String>, variable: &str| match url {
        Some(url) if is_sqlite(url) => format!(
            " ({variable} names a SQLite file, {url}: the lab leaves it alone and uses this file of its own)"
        ),
        _ => String::new(),
    };
    let (inventory_store, mysql_database, stock_label) = match given(&args.inventory_store) {
        Some(url) => {
            let mut url = url::Url::parse(&url)?;
            let database = format!("edm_lab_{id}");
            url.set_path(&database);
            let label = format!(
                "MySQL {} (this run's database)",
                crate::store::inventory::redact(url.as_str())
            );
            (url.to_string(), Some(database), label)
        }
        None => {
            let label = format!(
                "embedded SQLite {}{}",
                dir.join("inventory.db").display(),
                note(&args.inventory_store, "EDM_MYSQL_URL")
            );
            (own_file("inventory.db"), None, label)
        }
    };
    let table = format!("edm_lab_{id}");
    let (order_store, orders_label) = match given(&args.order_store) {
        Some(endpoint) => {
            let label = format!("DynamoDB {endpoint}, table {table} (this run's table)");
            (endpoint, label)
        }
        None => {
            let label = format!(
                "embedded SQLite {}{}",
                dir.join("orders.db").display(),
                note(&args.order_store, "EDM_DYNAMODB_ENDPOINT")
            );
            (own_file("orders.db"), label)
        }
    };
    let uses_dir = is_sqlite(&inventory_store) || is_sqlite(&order_store);
    Ok(RunStores {
        inventory: InventoryStoreArgs {
            inventory_store,
            mysql_pool_size: 8,
        },
        orders: OrderStoreArgs {
            order_store,
            dynamodb_region: args.dynamodb_region.clone(),
            orders_table: table,
            dynamodb_connections: crate::config::DEFAULT_DYNAMODB_CONNECTIONS,
        },
        mysql_database,
        uses_dir,
        stock_label,
        orders_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lab: LabArgs,
    }

    fn lab_args(flags: &[&str]) -> LabArgs {
        let mut argv = vec!["lab"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).expect("flags").lab
    }

    #[test]
    fn a_sqlite_url_given_to_the_lab_is_left_alone() {
        let dir = Path::new("/tmp/edm-lab-abc");
        let args = lab_args(&[
            "--mysql-url",
            "sqlite:///home/student/edm-inventory.db",
            "--dynamodb-endpoint",
            "sqlite:///home/student/edm-orders.db",
        ]);
        let stores = plan(&args, "abc", dir).expect("plan");
        assert_eq!(
            stores.inventory.inventory_store,
            "sqlite:///tmp/edm-lab-abc/inventory.db"
        );
        assert_eq!(
            stores.orders.order_store,
            "sqlite:///tmp/edm-lab-abc/orders.db"
        );
        assert_eq!(stores.mysql_database, None);
        assert!(
            stores
                .stock_label
                .starts_with("embedded SQLite /tmp/edm-lab-abc/inventory.db")
        );
        assert!(
            stores.stock_label.contains("leaves it alone"),
            "{}",
            stores.stock_label
        );
        assert!(
            !stores.orders_label.contains("DynamoDB"),
            "{}",
            stores.orders_label
        );
    }

    #[test]
    fn servers_given_get_a_database_and_a_table_of_the_run() {
        let args = lab_args(&[
            "--mysql-url",
            "mysql://root:pw@127.0.0.1:3306/inventory",
            "--dynamodb-endpoint",
            "http://127.0.0.1:4566",
        ]);
        let stores = plan(&args, "abc", Path::new("/tmp/x")).expect("plan");
        assert_eq!(stores.mysql_database.as_deref(), Some("edm_lab_abc"));
        assert!(stores.inventory.inventory_store.ends_with("/edm_lab_abc"));
        assert_eq!(stores.orders.orders_table, "edm_lab_abc");
        assert!(!stores.uses_dir);
        assert!(stores.stock_label.starts_with("MySQL"));
        assert!(stores.orders_label.starts_with("DynamoDB"));
    }
}
