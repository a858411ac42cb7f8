//! A child process for the change relay's crash and failover tests
//! (`tests/change_capture_crashes.rs`): connects the data layer configured in its environment,
//! runs the change relay, and prints each state the relay enters (`state running`,
//! `state standby`, ...) until it is killed.

use std::io::Write as _;

use udl::sync::RelayState;
use udl::{DataLayer, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let config = udl::config::load(None)
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let data = DataLayer::connect(&config).await?;
    let relay = data.configured_relay(&config).await?;
    let mut state = relay.state();
    tokio::spawn(async move {
        loop {
            let line = match &*state.borrow_and_update() {
                RelayState::Starting => None,
                RelayState::Standby => Some("state standby".to_owned()),
                RelayState::Running => Some("state running".to_owned()),
                RelayState::Halted(why) => Some(format!("state halted {why}")),
                RelayState::Stopped => Some("state stopped".to_owned()),
            };
            if let Some(line) = line {
                let mut out = std::io::stdout();
                writeln!(out, "{line}").expect("stdout");
                out.flush().expect("stdout");
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    });
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    relay.run(stopped).await
}
