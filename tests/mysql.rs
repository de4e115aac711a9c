//! Logging in to MySQL: over TLS when the server offers it (MySQL 8's first
//! `caching_sha2_password` login needs TLS or RSA), and errors that say what failed; the
//! schema as versioned migrations.

mod common;

use common::server_env;
use edm::config::InventoryStoreArgs;
use edm::store::inventory::InventoryStore;
use sqlx::Row;

/// `mysql://USER:PASSWORD@host:port/DATABASE` on the test server.
fn url(user: &str, password: &str, database: &str) -> String {
    let server = server_env("EDM_TEST_MYSQL_URL");
    let address = server.rsplit_once('@').map(|(_, a)| a).unwrap_or(&server);
    format!(
        "mysql://{user}:{password}@{}/{database}",
        address.trim_end_matches('/')
    )
}

#[tokio::test]
async fn a_user_that_requires_tls_logs_in_over_tls() {
    // scripts/test-servers.sh gives MariaDB a certificate and a user `edm_tls` that must
    // use TLS (REQUIRE SSL): a client without TLS is refused.
    let database = format!(
        "edm_tls_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mysql = InventoryStoreArgs::new(url("edm_tls", "inventorypw", &database));
    edm::setup::create_database(&mysql.inventory_store)
        .await
        .expect("the TLS user logs in");
    let store = InventoryStore::connect_unchecked(&mysql)
        .await
        .expect("pool");
    let row = sqlx::query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .fetch_one(store.pool())
        .await
        .expect("status");
    let cipher: String = row.try_get(1).expect("value");
    assert!(!cipher.is_empty(), "the session is not encrypted");
    let drop = format!("DROP DATABASE `{database}`");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(store.pool())
        .await
        .expect("drop");
}

#[tokio::test]
async fn a_wrong_password_is_named_as_such_not_as_a_server_down() {
    let mysql = InventoryStoreArgs::new(url("root", "not-the-password", "inventory"));
    let error = InventoryStore::connect(&mysql)
        .await
        .expect_err("refused")
        .to_string();
    assert!(error.contains("refused user `root`"), "{error}");
    assert!(error.contains("password"), "{error}");
    assert!(!error.contains("Is it running"), "{error}");
    assert!(
        !error.contains("not-the-password"),
        "the password is not shown: {error}"
    );
}

#[tokio::test]
async fn a_closed_port_says_nothing_answers() {
    let port = common::servers::free_port();
    let mysql = InventoryStoreArgs::new(format!(
        "mysql://root:inventorypw@127.0.0.1:{port}/inventory"
    ));
    let error = InventoryStore::connect(&mysql)
        .await
        .expect_err("nothing there")
        .to_string();
    assert!(error.contains("nothing answers as MySQL"), "{error}");
    assert!(error.contains("docker compose"), "{error}");
}

#[tokio::test]
async fn the_schema_is_versioned_migrations_recorded_once_over_an_older_database() {
    let database = format!(
        "edm_schema_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mysql = InventoryStoreArgs::new(url("root", "inventorypw", &database));
    edm::setup::create_database(&mysql.inventory_store)
        .await
        .expect("database");
    // As an older edm, or the compose stack's first start, left it: the tables and the
    // items, no record of migrations; then the stock moved.
    let pool = sqlx::MySqlPool::connect(&mysql.inventory_store)
        .await
        .expect("connect");
    for script in [
        include_str!("../sql/01_schema.sql"),
        include_str!("../sql/02_seed.sql"),
    ] {
        sqlx::raw_sql(script)
            .execute(&pool)
            .await
            .expect("older schema");
    }
    sqlx::query("UPDATE inventory SET quantity = 7 WHERE id = 1")
        .execute(&pool)
        .await
        .expect("update");

    let store = InventoryStore::connect_unchecked(&mysql)
        .await
        .expect("store");
    store.apply_schema().await.expect("migrations");
    store.apply_schema().await.expect("migrations again");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("migrations table");
    assert_eq!(versions, vec![1, 2]);
    let item = store.item(1).await.expect("item").expect("item 1");
    assert_eq!(
        item.quantity, 7,
        "a recorded migration does not touch the data"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE `{database}`")))
        .execute(&pool)
        .await
        .expect("drop");
}
