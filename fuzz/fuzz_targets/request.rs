//! One request frame (without its length prefix) through the whole request path of
//! `edm broker`: header, body, handler, answer. Whatever the bytes, the broker must answer
//! or close the connection, never panic or abort. Time is paused and moves on by itself,
//! so a fetch or a join that waits costs no real time.
#![no_main]

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use edm_broker::fuzzing::Target;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    })
}

/// One broker for the whole run, as a real one serves request after request (its limits
/// keep what it holds bounded).
fn target() -> &'static Mutex<Target> {
    static TARGET: OnceLock<Mutex<Target>> = OnceLock::new();
    TARGET.get_or_init(|| Mutex::new(Target::default()))
}

fuzz_target!(|frame: &[u8]| {
    let mut target = target().lock().unwrap_or_else(|p| p.into_inner());
    // A request may wait as long as a client allows (a join, up to its rebalance timeout:
    // days, if it says so); ten minutes of the paused clock stand for "still waiting".
    let answer = runtime().block_on(async {
        let waiting = target.answer(Bytes::copy_from_slice(frame));
        tokio::time::timeout(std::time::Duration::from_secs(600), waiting).await
    });
    if let Ok(Ok(Some(answer))) = answer {
        assert!(answer.len() >= 8, "an answer has its length and correlation id");
    }
});
