//! The example consumers of udl's change events (`examples/consumers`), as `scripts/services
//! up` installs them: each reads a JetStream stream from its start to the last event present
//! and prints one line per event, `<id> <type> <subject>`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which consumer.
#[derive(Clone, Copy, Debug)]
pub enum Consumer {
    /// `examples/consumers/python/ce_consumer.py` (nats-py).
    Python,
    /// `examples/consumers/go` (nats.go).
    Go,
}

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The command running `consumer` over `stream` on the test NATS server.
pub fn command(consumer: Consumer, stream: &str) -> Command {
    let mut command = match consumer {
        Consumer::Python => {
            let mut c = Command::new(repository(".local/consumers-venv/bin/python"));
            c.arg(repository("examples/consumers/python/ce_consumer.py"));
            c
        }
        Consumer::Go => Command::new(repository(".local/bin/ce-consumer")),
    };
    command
        .env("UDL_NATS_URL", crate::servers::nats_url())
        .env("UDL_NATS_STREAM", stream);
    command
}

/// Runs `consumer` over `stream` on the test NATS server; the lines it printed. Panics (the
/// test fails) when it cannot run or fails.
pub fn read_stream(consumer: Consumer, stream: &str) -> Vec<String> {
    let output = command(consumer, stream).output().unwrap_or_else(|e| {
        panic!("the {consumer:?} consumer could not start ({e}); run scripts/services up")
    });
    assert!(
        output.status.success(),
        "the {consumer:?} consumer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
