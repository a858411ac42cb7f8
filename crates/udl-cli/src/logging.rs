//! Where the command's logs go and how they look. Logs go to standard error (standard output
//! carries the command's own answer), one event per line: human-readable text, or JSON objects
//! with `UDL_LOG_FORMAT=json` for a log shipper. Which events: `UDL_LOG` if set, else
//! `RUST_LOG` (the ecosystem's convention), both in `tracing`'s filter syntax
//! (`info`, `udl_postgres=debug,warn`); by default warnings and errors, and `info` for `udl serve`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter variables, the more specific first.
const FILTER_VARIABLES: [&str; 2] = ["UDL_LOG", "RUST_LOG"];

/// Installs the process's log subscriber; `default_level` applies when no variable is set.
pub fn init(default_level: &str) {
    let filter = filter(default_level);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match std::env::var("UDL_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        Ok("text") | Err(_) => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => {
            builder.with_ansi(std::io::stderr().is_terminal()).init();
            tracing::warn!(
                format = other,
                "UDL_LOG_FORMAT is not text or json; logging text"
            );
        }
    }
}

fn filter(default_level: &str) -> EnvFilter {
    for variable in FILTER_VARIABLES {
        let Ok(text) = std::env::var(variable) else {
            continue;
        };
        match EnvFilter::try_new(&text) {
            Ok(filter) => return filter,
            // The subscriber is not installed yet, so this one line goes straight to stderr.
            Err(e) => eprintln!("udl: ignoring {variable} ({e}); logging at {default_level}"),
        }
        break;
    }
    EnvFilter::new(default_level)
}
