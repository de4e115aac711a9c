//! Private server instances for tests that stop a server mid-run (the shared ones are
//! used by every other test at the same time).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server_env;

/// A port for a server a test starts, free now and given to no other test of this
/// process. Taken below Linux's ephemeral range (32768–60999), which the kernel hands to
/// outgoing connections and to `bind(0)`: a port there could be taken between this check
/// and the server's start. Each process starts at a place of its own in 30000–32767, so
/// test binaries run side by side rarely meet, and a port in use is skipped.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// `count` consecutive free ports (a broker and its controller); the first.
pub fn free_ports(count: u32) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 30_000;
    const RANGE: u32 = 2_760;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(97) % RANGE,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..RANGE {
        let first = FIRST + NEXT.fetch_add(count, Ordering::Relaxed) % RANGE;
        if (first..first + count).all(|port| TcpListener::bind(("127.0.0.1", port as u16)).is_ok())
        {
            return first as u16;
        }
    }
    panic!("no {count} free ports in {FIRST}..{}", FIRST + RANGE)
}

/// Waits until something listens on `port` (or, with `open == false`, until nothing does).
pub fn wait_port(port: u16, open: bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() != open {
        assert!(
            Instant::now() < deadline,
            "port {port} never became open={open}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private MariaDB in a directory of its own.
pub struct PrivateMysql {
    dir: PathBuf,
    /// Its port.
    pub port: u16,
}

impl PrivateMysql {
    /// Initialises and starts it.
    pub fn start() -> Self {
        let dir = PathBuf::from(format!(
            "/var/tmp/edm-private-mysql-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mysql = Self {
            dir,
            port: free_port(),
        };
        mysql.start_again();
        mysql
    }

    /// `mysql://root:…@127.0.0.1:PORT` (no database).
    pub fn url(&self) -> String {
        format!("mysql://root:inventorypw@127.0.0.1:{}", self.port)
    }

    /// Starts it (again).
    pub fn start_again(&self) {
        let status = Command::new(server_env("EDM_TEST_SERVERS_SCRIPT"))
            .arg("start-mysql")
            .env("EDM_TEST_STATE_DIR", &self.dir)
            .env("EDM_TEST_MYSQL_PORT", self.port.to_string())
            .stdout(Stdio::null())
            .status()
            .expect("run test-servers.sh start-mysql");
        assert!(status.success(), "private MariaDB did not start");
    }

    /// Stops it (SIGTERM, as `systemctl stop` would) and waits until the port is closed.
    pub fn stop(&self) {
        let pid = std::fs::read_to_string(self.dir.join("mariadb.pid")).expect("pid file");
        let _ = Command::new("kill").arg(pid.trim()).status();
        wait_port(self.port, false, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "MariaDB {pid} did not exit");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateMysql {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("mariadb.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child server process killed when dropped.
pub struct PrivateServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl PrivateServer {
    /// An `edm broker` (in memory) of its own.
    pub fn broker() -> Self {
        Self::broker_on(free_port(), &[])
    }

    /// An `edm broker` on `port` with `args` (e.g. `--data-dir DIR`).
    pub fn broker_on(port: u16, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_edm"))
            .args(["broker", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start edm broker");
        wait_port(port, true, Duration::from_secs(30));
        Self { child, port }
    }

    /// A moto DynamoDB endpoint.
    pub fn moto() -> Self {
        let port = free_port();
        let child = Command::new(server_env("EDM_TEST_MOTO_BIN"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        wait_port(port, true, Duration::from_secs(60));
        Self { child, port }
    }

    /// Stops it with SIGTERM, as a service manager does, and waits until it has exited.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        wait_port(self.port, false, Duration::from_secs(30));
    }

    /// Kills it and waits until its port is closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        wait_port(self.port, false, Duration::from_secs(30));
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Apache Kafka of its own (one KRaft node, `scripts/test-servers.sh
/// start-apache-kafka`), in a directory of its own, for tests that restart it.
pub struct PrivateApacheKafka {
    dir: PathBuf,
    /// Its port (its controller listens on the next one).
    pub port: u16,
}

impl PrivateApacheKafka {
    /// Formats and starts it.
    pub fn start() -> Self {
        let kafka = Self {
            dir: PathBuf::from(format!(
                "/var/tmp/edm-private-kafka-{}",
                uuid::Uuid::new_v4().simple()
            )),
            port: free_ports(2),
        };
        kafka.script("start-apache-kafka", false);
        kafka
    }

    fn script(&self, command: &str, keep_data: bool) {
        let status = Command::new(server_env("EDM_TEST_SERVERS_SCRIPT"))
            .arg(command)
            .env("EDM_TEST_STATE_DIR", &self.dir)
            .env("EDM_TEST_APACHE_KAFKA_PORT", self.port.to_string())
            .env("EDM_TEST_KEEP_DATA", if keep_data { "1" } else { "0" })
            .stdout(Stdio::null())
            .status()
            .expect("run test-servers.sh");
        assert!(status.success(), "test-servers.sh {command} failed");
    }

    /// Stops it with SIGTERM (a controlled shutdown) and waits until it has exited.
    pub fn terminate(&self) {
        self.script("stop-apache-kafka", false);
        wait_port(self.port, false, Duration::from_secs(60));
    }

    /// Kills it with SIGKILL.
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("apache-kafka.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            let _ = std::fs::remove_file(self.dir.join("apache-kafka.pid"));
        }
        wait_port(self.port, false, Duration::from_secs(60));
    }

    /// Starts it again on the data it has.
    pub fn start_again(&self) {
        self.script("start-apache-kafka", true);
    }
}

impl Drop for PrivateApacheKafka {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
