//! The local servers as `scripts/services` manages them, for the crash tests: kill one as a
//! crash would, start it again.

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
