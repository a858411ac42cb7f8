//! Every example runs against the real servers, each in namespaces of its own, and exits 0.

use std::process::Command;

use base64::Engine as _;
use udl_testkit::servers;

/// A fresh key ring for `[privacy]`: one random 32-byte key-encryption key.
fn key_ring() -> String {
    let key = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Runs the example binary at `path` with every store configured, and checks it succeeded.
fn run(name: &str, path: &str) {
    let namespace = servers::unique_namespace("ex");
    let output = Command::new(path)
        .env("UDL__POSTGRES__URL", servers::postgres_url())
        .env("UDL__POSTGRES__SCHEMA", &namespace)
        .env("UDL__MONGO__URL", servers::mongo_url())
        .env("UDL__MONGO__DATABASE", &namespace)
        .env("UDL__REDIS__URL", servers::redis_url())
        .env("UDL__REDIS__KEY_PREFIX", format!("{namespace}:"))
        .env("UDL__PRIVACY__KEY_RING", key_ring())
        .output()
        .unwrap_or_else(|e| panic!("example {name} could not start: {e}"));
    assert!(
        output.status.success(),
        "example {name} failed ({}); is every server up (scripts/services up)?\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rag_retrieval() {
    run("rag_retrieval", env!("CARGO_BIN_EXE_rag_retrieval"));
}

#[test]
fn phi_read_with_consent() {
    run(
        "phi_read_with_consent",
        env!("CARGO_BIN_EXE_phi_read_with_consent"),
    );
}
