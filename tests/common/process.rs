//! `edm` subcommands as separate processes, the way a student runs them, for tests that
//! kill or signal them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::LabConfig;

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
                "{} ignored SIGTERM for 30 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
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
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_edm"));
    command
        .env("EDM_BOOTSTRAP_SERVERS", &config.kafka.bootstrap_servers)
        .env("EDM_TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("EDM_KAFKA_PROPERTIES", properties.join(","))
        .env("EDM_MYSQL_URL", &config.mysql.mysql_url)
        .env("EDM_DYNAMODB_ENDPOINT", &config.dynamo.dynamodb_endpoint)
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
