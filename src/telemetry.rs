//! Logging to stderr: one readable line per saga step, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber (call once, at start): every saga step at `info`.
pub fn init() {
    init_with_default("info,rdkafka=warn,aws_config=warn,sqlx=warn");
}

/// Installs the log subscriber with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .try_init();
}
