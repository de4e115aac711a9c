//! `edm` subcommands as separate processes, the way a student runs them, for tests that
//! kill or signal them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use edm::store::inventory::InventoryStore;
use edm::store::orders::OrderStore;

use super::servers::wait_port;
use super::{LabConfig, Placed, check_invariants, place_orders, stock_by_item};

/// What a test drives a stack of `edm` processes with: the order service's URL, and the
/// stores (with the stock before) to check the books against.
pub struct Stack {
    http: reqwest::Client,
    url: String,
    stock: InventoryStore,
    orders: OrderStore,
    initial: std::collections::HashMap<i64, i32>,
}

impl Stack {
    /// Waits for the order service on `port`, opens the lab's stores, reads the stock.
    pub async fn attach(config: &LabConfig, port: u16) -> Self {
        wait_port(port, true, Duration::from_secs(30));
        let stock = InventoryStore::connect(&config.mysql)
            .await
            .expect("inventory store");
        let orders = OrderStore::connect(&config.dynamo)
            .await
            .expect("order store");
        let initial = stock_by_item(&stock).await;
        Self {
            http: reqwest::Client::new(),
            url: format!("http://127.0.0.1:{port}/v1/order"),
            stock,
            orders,
            initial,
        }
    }

    /// Places the orders numbered `range` at once.
    pub async fn place(&self, range: std::ops::Range<usize>) -> Vec<Placed> {
        place_orders(&self.http, &self.url, range).await
    }

    /// Waits (up to `limit`) until every placed order is final.
    pub async fn check_within(&self, placed: &[Placed], limit: Duration) {
        super::wait_all_terminal(&self.orders, placed, limit).await;
    }

    /// Waits for every placed order to finish and checks the books; returns (completed,
    /// cancelled).
    pub async fn check(&self, placed: &[Placed]) -> (usize, usize) {
        check_invariants(&self.stock, &self.orders, placed, &self.initial).await
    }
}

/// A running `edm` subcommand whose output goes to a log file.
pub struct EdmProcess {
    /// The subcommand.
    pub name: String,
    args: Vec<String>,
    config: LabConfig,
    child: Child,
    /// Where its stderr and stdout go (appended across restarts).
    pub log: PathBuf,
}

impl EdmProcess {
    /// Starts `edm <subcommand> <args>` against the lab's servers.
    pub fn spawn(config: &LabConfig, subcommand: &str, args: &[&str]) -> Self {
        let instance = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let log =
            std::env::temp_dir().join(format!("edm-{}-{subcommand}-{instance}.log", config.id));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = start(config, subcommand, &args, &log);
        Self {
            name: subcommand.to_string(),
            args,
            config: config.clone(),
            child,
            log,
        }
    }

    /// How many saga steps it has logged so far.
    pub fn steps(&self) -> usize {
        self.output().matches(" → ").count()
    }

    /// Waits (up to 60 s) until it has logged `steps` saga steps; returns how many it has.
    /// Only for a process that is sure to get work without more orders (the only instance
    /// of its kind, with orders already queued for it).
    pub async fn wait_busy(&self, steps: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logged = self.steps();
            if logged >= steps {
                return logged;
            }
            assert!(
                Instant::now() < deadline,
                "{} did no work:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills it with SIGKILL (no chance to commit or flush anything).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again with the same arguments.
    pub fn restart(&mut self) {
        self.child = start(&self.config, &self.name, &self.args, &self.log);
    }

    /// Sends SIGTERM and waits for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} ignored SIGTERM for 30 s:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` for it to exit by itself; its status, or `None` if it still
    /// runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `limit` until it has logged `text`; fails with its log otherwise.
    pub async fn wait_for_output(&self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.output().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{}: no `{text}` within {limit:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything it logged so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for EdmProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `edm` with the lab's servers in its environment (output not redirected).
pub fn edm_command(config: &LabConfig) -> Command {
    let properties: Vec<String> = config
        .kafka
        .kafka_properties()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_edm"));
    command
        .env("EDM_BOOTSTRAP_SERVERS", &config.kafka.bootstrap_servers)
        .env("EDM_TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("EDM_KAFKA_PROPERTIES", properties.join(","))
        .env("EDM_MYSQL_URL", &config.mysql.inventory_store)
        .env("EDM_DYNAMODB_ENDPOINT", &config.dynamo.order_store)
        .env("EDM_ORDERS_TABLE", &config.dynamo.orders_table)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

fn start(config: &LabConfig, subcommand: &str, args: &[String], log: &PathBuf) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    edm_command(config)
        .arg(subcommand)
        .args(args)
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("start edm")
}
