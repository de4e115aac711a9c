//! `edm setup`: creates the MySQL database (or SQLite file), tables and seed items and the
//! order table,
//! so no step of the walkthrough needs a hand-typed statement.

use sqlx::Connection;
use sqlx::mysql::MySqlConnection;

use crate::config::{InventoryStoreArgs, OrderStoreArgs};
use crate::store::inventory::{Dialect, InventoryError, InventoryStore, redact};
use crate::store::orders::OrderStore;

/// `edm setup` flags: the two stores.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub mysql: InventoryStoreArgs,
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
}

/// `edm setup`: prepares both stores and says what it did.
pub async fn command(args: SetupArgs) -> anyhow::Result<()> {
    let report = run(&args.mysql, &args.dynamo).await?;
    println!(
        "MySQL: database `{}` has tables inventory, inventory_history, inventory_saga_step and the 5 seed items",
        report.database
    );
    let table_state = match report.table_created {
        true => "created",
        false => "already exists",
    };
    println!(
        "DynamoDB: table `{}` {table_state}",
        args.dynamo.orders_table
    );
    Ok(())
}

/// What `setup` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The MySQL database that now holds the schema.
    pub database: String,
    /// Whether the DynamoDB table was created (false: it existed).
    pub table_created: bool,
}

/// Creates the MySQL database if missing (the URL's path names it).
pub async fn create_database(inventory_store: &str) -> Result<String, InventoryError> {
    let mut url =
        url::Url::parse(inventory_store).map_err(|e| InventoryError::BadUrl(e.to_string()))?;
    let database = url.path().trim_start_matches('/').to_string();
    if database.is_empty() {
        return Err(InventoryError::BadUrl(format!(
            "{} names no database (expected …/inventory)",
            redact(inventory_store)
        )));
    }
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Err(InventoryError::BadUrl(format!(
            "database name `{database}`: use letters, digits and underscores"
        )));
    }
    url.set_path("");
    let mut connection = MySqlConnection::connect(url.as_str())
        .await
        .map_err(|detail| InventoryError::Unreachable {
            address: redact(inventory_store),
            user: crate::store::inventory::login::user_of(inventory_store),
            detail,
        })?;
    let statement = format!("CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(database)
}

/// Applies `sql/` to MySQL and creates the DynamoDB table.
pub async fn run(
    mysql: &InventoryStoreArgs,
    dynamo: &OrderStoreArgs,
) -> anyhow::Result<SetupReport> {
    let database = match Dialect::of_url(&mysql.inventory_store)? {
        Dialect::MySql => create_database(&mysql.inventory_store).await?,
        Dialect::Sqlite => mysql.inventory_store.clone(),
    };
    let store = InventoryStore::connect_unchecked(mysql).await?;
    store.apply_schema().await?;
    let orders = OrderStore::connect(dynamo).await?;
    let table_created = orders.ensure_table().await?;
    Ok(SetupReport {
        database,
        table_created,
    })
}
