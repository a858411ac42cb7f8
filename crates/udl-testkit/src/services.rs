//! The local servers as `scripts/services` manages them, for the crash and failover tests: kill
//! one as a crash would, start it again; the three-member replica set made on demand.

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services")
}

fn run(args: &[&str]) {
    let out = Command::new(script())
        .args(args)
        .output()
        .expect("scripts/services runs");
    assert!(
        out.status.success(),
        "scripts/services {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills `server` (`postgres`, `cassandra`, `ferretdb`) with SIGKILL and waits until it is gone.
pub fn crash(server: &str) {
    run(&["crash", server]);
}

/// Starts whatever is down and waits until every server answers.
pub fn up() {
    run(&["up"]);
}

/// Starts whatever is down when dropped: a crash test that fails half-way leaves no server down
/// for the tests after it.
pub struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("up").output();
    }
}

/// The on-demand three-member MongoDB replica set (`rs3` on 27031-27033) of the failover
/// test, started afresh; stopped, its data removed, when dropped.
pub struct ReplicaSet3;

impl ReplicaSet3 {
    /// Starts the members, initiates the set and waits until one of them is primary.
    pub fn up() -> Self {
        run(&["replica3", "up"]);
        ReplicaSet3
    }

    /// The connection string naming every member.
    pub fn url() -> String {
        "mongodb://127.0.0.1:27031,127.0.0.1:27032,127.0.0.1:27033/?replicaSet=rs3".to_owned()
    }

    /// Kills the member listening on `port` with SIGKILL and waits until it is gone.
    pub fn crash(port: u16) {
        run(&["replica3", "crash", &port.to_string()]);
    }
}

impl Drop for ReplicaSet3 {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["replica3", "down"]).output();
    }
}
