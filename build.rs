//! Rebuilds when a schema migration is added under `sql/`: `sqlx::migrate!` embeds the
//! files, and cargo does not otherwise notice a new file in a directory.

fn main() {
    println!("cargo:rerun-if-changed=sql");
}
