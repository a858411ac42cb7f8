//! The `udl` command.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 invalid configuration or usage,
//! 3 a store could not be reached.

mod args;
mod audit;
mod cdc;
mod commands;
mod compliance;
mod demo;
mod exit;
mod jobs;
mod keys;
mod logging;
mod media;
mod progress_bar;
mod retention;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// udl: the unified data layer's command-line tool.
#[derive(Parser)]
#[command(name = "udl", version, about)]
struct Cli {
    /// TOML config file (default: $UDL_CONFIG if set). Environment variables
    /// (UDL__POSTGRES__URL, ...) override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Check every configured store once; exit 0 ready, 1 degraded, 2 down.
    Health {
        /// Bound on each store's connect and round trip, e.g. "2s".
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Run the daemon: /health/live, /health/ready, /metrics and, with [gateway], the HTTP/JSON
    /// API under /v1 on serve.addr, until SIGTERM.
    Serve,
    /// Walk a fake therapy-platform journey through the gateway in a namespace of its own
    /// (udl_demo), then print a summary and the path of the patient's compliance report.
    Demo,
    /// Configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The PHI access log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Compliance reports from the PHI access log.
    Compliance {
        #[command(subcommand)]
        action: ComplianceAction,
    },
    /// Change data capture: PostgreSQL changes as sanitized ce.* events in ScyllaDB.
    Cdc {
        #[command(subcommand)]
        action: CdcAction,
    },
    /// Field-encryption keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The media_assets rights registry.
    Media {
        #[command(subcommand)]
        action: MediaAction,
    },
    /// Maintenance jobs (retention_purge, media_rights_prune): list them, run one now.
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Legal holds: what they cover is never deleted by retention while they stand.
    Hold {
        #[command(subcommand)]
        action: HoldAction,
    },
    /// Retention: the deletion receipts of every purge.
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
}

#[derive(Subcommand)]
enum JobsAction {
    /// Every job, its schedule and its last run.
    List,
    /// Run a job now (refused while another process runs it).
    Run {
        /// The job (retention_purge, media_rights_prune).
        name: String,
        /// Report what it would do; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum HoldAction {
    /// Place a hold on a patient's data, a data class, or a patient within a class.
    Place {
        /// The patient (subject) whose data is held.
        #[arg(long, value_parser = args::patient_id)]
        patient: Option<String>,
        /// The data class held (phi_access_log, phi_change_history, redaction_ledger,
        /// interaction_logs).
        #[arg(long, value_parser = retention::data_class)]
        class: Option<udl::jobs::retention::DataClass>,
        /// Why: a case or matter reference, never patient data.
        #[arg(long)]
        reason: String,
        /// Who places it.
        #[arg(long, value_parser = args::actor_id)]
        actor: String,
    },
    /// Release a hold.
    Release {
        /// The hold's id.
        id: uuid::Uuid,
        /// Who releases it.
        #[arg(long, value_parser = args::actor_id)]
        actor: String,
    },
    /// The holds in force (--all: also released ones).
    List {
        /// Include released holds.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum RetentionAction {
    /// What each purge deleted or held back, oldest first.
    Receipts {
        /// Only receipts recorded at or after this time (a date or an RFC 3339 time).
        #[arg(long, value_parser = audit::parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
enum MediaAction {
    /// Register an asset: its content file is hashed (sha256) and checked against --sha256.
    Register {
        /// Where the content lives (unique).
        #[arg(long)]
        uri: String,
        /// Who supplied it.
        #[arg(long)]
        source: String,
        /// The license it is used under.
        #[arg(long)]
        license: String,
        /// When the license ends (a date or an RFC 3339 time); never when absent.
        #[arg(long, value_parser = audit::parse_time)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// How long it is kept once disabled, e.g. "7d".
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// The content, hashed to register it.
        #[arg(long)]
        file: PathBuf,
        /// The sha256 the content must have (hex).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Every asset, by URI; --status keeps one status.
    List {
        /// active, disabled or removed.
        #[arg(long)]
        status: Option<String>,
    },
    /// One asset, by id or URI.
    Show {
        /// Its id or its URI.
        which: String,
    },
}

#[derive(Subcommand)]
enum CdcAction {
    /// Run the change relay (streaming, or standing by for another process) until SIGTERM.
    Run,
    /// The slot, its confirmed position and lag, and whether the relay runs or halted and why.
    Status,
    /// Compare every registered entity's table with its declaration; exit 1 on a mismatch.
    Check,
    /// What was done to the fields of one event (read as an auditor, and audited).
    Ledger {
        /// The event id (`0000000001A2B3C4-00000`).
        #[arg(long)]
        event: String,
        /// Who is reading (recorded in the access log as an auditor).
        #[arg(long, value_parser = args::actor_id)]
        actor: String,
    },
    /// Copy an existing table's rows to the sinks through the relay (batch sync) while
    /// streaming goes on, with a progress bar; resumes after a crash.
    Snapshot {
        /// The registered PostgreSQL entity (table) to copy.
        entity: String,
        /// Only rows where FIELD=VALUE (or !=, <, <=, >, >=) on a public or internal field;
        /// repeat to require several.
        #[arg(long = "where", value_name = "CONDITION")]
        conditions: Vec<udl::sync::snapshot::Condition>,
        /// Rows read per chunk.
        #[arg(long, default_value_t = udl::sync::snapshot::DEFAULT_CHUNK_ROWS)]
        chunk_rows: u32,
        /// Queue the snapshot and print its id without waiting for it.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Add a key version and re-encrypt every stored value sealed under an older one.
    Rotate {
        /// Finish an interrupted rotation: re-encrypt without adding another version.
        #[arg(long)]
        resume: bool,
        /// Records read and re-encrypted per batch (1 to 100000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
}

#[derive(Subcommand)]
enum ComplianceAction {
    /// With --patient: every access to that patient's data (the accounting of disclosures);
    /// without: accesses by actor, purpose and outcome.
    Report {
        /// Who is reading the report (recorded in the access log as an auditor).
        #[arg(long, value_parser = args::actor_id)]
        actor: String,
        /// The patient whose accesses to list (their user id, a UUID).
        #[arg(long, value_parser = args::patient_id)]
        patient: Option<String>,
        /// Only accesses at or after this time (a date or an RFC 3339 time).
        #[arg(long, value_parser = audit::parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only accesses before this time.
        #[arg(long, value_parser = audit::parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: compliance::Format,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the hash chain; exit 0 when intact, 1 at the first edited or deleted entry.
    Verify {
        /// Only entries logged at or after this time (a date or an RFC 3339 time).
        #[arg(long, value_parser = audit::parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only entries logged before this time.
        #[arg(long, value_parser = audit::parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration (a no-op when none is pending).
    Up,
    /// List migrations and whether each is applied, pending or modified.
    Status,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration and print it with secrets redacted.
    Check,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::usage()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    logging::init(match cli.command {
        Command::Serve
        | Command::Cdc {
            action: CdcAction::Run,
        } => "info",
        // The demo's own lines tell the story; a break-glass warning would only interrupt it.
        Command::Demo => "error",
        _ => "warn",
    });
    let config_path = cli
        .config
        .or_else(|| std::env::var_os("UDL_CONFIG").map(PathBuf::from));
    let config = match udl::config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return exit::usage();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("udl: cannot start the async runtime: {e}");
            return exit::failed();
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Config {
                action: ConfigAction::Check,
            } => commands::config_check(&config),
            Command::Migrate {
                action: MigrateAction::Up,
            } => commands::migrate_up(&config).await,
            Command::Migrate {
                action: MigrateAction::Status,
            } => commands::migrate_status(&config).await,
            Command::Health { timeout } => commands::health(&config, timeout).await,
            Command::Serve => serve::run(config).await,
            Command::Demo => demo::run(config_path.as_deref()).await,
            Command::Audit {
                action: AuditAction::Verify { from, to },
            } => audit::verify(&config, from, to).await,
            Command::Compliance {
                action:
                    ComplianceAction::Report {
                        actor,
                        patient,
                        from,
                        to,
                        format,
                    },
            } => compliance::report(&config, &actor, patient.as_deref(), from, to, format).await,
            Command::Cdc { action } => match action {
                CdcAction::Run => cdc::run(&config).await,
                CdcAction::Status => cdc::status(&config).await,
                CdcAction::Check => cdc::check(&config).await,
                CdcAction::Ledger { event, actor } => cdc::ledger(&config, &actor, &event).await,
                CdcAction::Snapshot {
                    entity,
                    conditions,
                    chunk_rows,
                    no_wait,
                } => cdc::snapshot(&config, &entity, &conditions, chunk_rows, no_wait).await,
            },
            Command::Keys {
                action: KeysAction::Rotate { resume, batch },
            } => keys::rotate(&config, resume, batch as usize).await,
            Command::Media { action } => match action {
                MediaAction::Register {
                    uri,
                    source,
                    license,
                    expires_at,
                    grace,
                    file,
                    sha256,
                } => {
                    let registration = media::Registration {
                        uri: &uri,
                        source: &source,
                        license: &license,
                        expires_at,
                        grace,
                        file: &file,
                        sha256: sha256.as_deref(),
                    };
                    media::register(&config, registration).await
                }
                MediaAction::List { status } => media::list(&config, status.as_deref()).await,
                MediaAction::Show { which } => media::show(&config, &which).await,
            },
            Command::Jobs { action } => match action {
                JobsAction::List => jobs::list(&config).await,
                JobsAction::Run { name, dry_run } => jobs::run(&config, &name, dry_run).await,
            },
            Command::Hold { action } => match action {
                HoldAction::Place {
                    patient,
                    class,
                    reason,
                    actor,
                } => retention::place(&config, patient, class, &reason, &actor).await,
                HoldAction::Release { id, actor } => retention::release(&config, id, &actor).await,
                HoldAction::List { all } => retention::list(&config, all).await,
            },
            Command::Retention {
                action: RetentionAction::Receipts { since },
            } => retention::receipts(&config, since).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("udl: {e}");
            exit::for_error(&e)
        }
    }
}
