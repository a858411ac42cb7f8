//! Changes made by another process: how long after another udl process's MongoDB write
//! returns this process's vector index holds the new document, and its cached reads serve
//! the changed record. Both arrive through MongoDB's change feed.
//!
//! The writer is this binary started again as `udl-bench follow-writer`; it writes through
//! its own `MongoStore` (no cache, as another service would) and answers each write with the
//! wall-clock time it was acknowledged, so the two processes share one clock.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use udl::mongo::{MongoStore, EXACT_SCAN_LIMIT};
use udl::{field, Changes, DataLayer, Error, ErrorKind, Repository, Result, StoreKind};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::servers;
use uuid::Uuid;

use crate::fixture::ctx;

/// Changes measured per path.
const SAMPLES: usize = 500;
/// A change not seen by then is reported as an error, not a figure.
const DEADLINE: Duration = Duration::from_secs(10);
/// Between two looks at the index or the cache; both looks are in-process and cheap.
const POLL: Duration = Duration::from_micros(200);

/// Runs the scenario and prints its lines.
pub async fn run() -> Result<()> {
    let database = servers::unique_namespace("bench");
    let prefix = format!("{database}:");
    let vars = vec![
        ("UDL__MONGO__URL".to_owned(), servers::mongo_url()),
        ("UDL__MONGO__DATABASE".to_owned(), database),
        ("UDL__REDIS__URL".to_owned(), servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX".to_owned(), prefix.clone()),
    ];
    let config = udl::config::from_sources(None, vars.clone()).map_err(config_error)?;
    let data = DataLayer::connect(&config).await?;
    let outcome = measure(&data, vars).await;
    let _ = data.mongo()?.database().drop().await;
    crate::cache::delete_prefixed(data.redis()?, &prefix).await;
    data.shutdown(Duration::from_secs(1)).await;
    outcome
}

async fn measure(data: &DataLayer, vars: Vec<(String, String)>) -> Result<()> {
    let notes = data.repository_in::<Note>(StoreKind::MONGO)?;
    let seeded = EXACT_SCAN_LIMIT as i64 + 1_000;
    let batch: Vec<Note> = (0..seeded)
        .map(|n| Note {
            embedding: Some(in_plane(n)),
            active: true,
            ..note(n)
        })
        .collect();
    let id = batch[0].id;
    notes.create_many(ctx(), batch).await?;
    // Above the exact-scan limit the first search builds the index and starts following.
    notes
        .nearest(
            ctx(),
            "embedding",
            &[1.0, 0.0, 0.0],
            1,
            &field("active").eq(true),
        )
        .await?;
    let mut writer = Writer::start(vars).await?;

    let mut index = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES as i64 {
        let before = indexed(data)?;
        let acked = writer.send(&format!("create {}", seeded + n)).await?;
        let seen = true_at(
            "the new vector in the index",
            || Ok(indexed(data)? > before),
        )
        .await?;
        index.push(since(acked, seen));
    }

    let mut cache = Vec::with_capacity(SAMPLES);
    // The first change also proves the cache is followed; only later ones are timed.
    for n in 0..=SAMPLES {
        let title = format!("fake title {n}");
        for _ in 0..2 {
            notes.get_required(ctx(), &id).await?; // cached before the change
        }
        let acked = writer.send(&format!("title {id} {title}")).await?;
        let seen = title_served_at(&notes, &id, &title).await?;
        if n > 0 {
            cache.push(since(acked, seen));
        }
    }
    writer.finish().await?;

    println!(
        "follow: another process's MongoDB write returned -> visible here, {SAMPLES} changes, ms"
    );
    println!("{:<24} {:>8} {:>8} {:>8}", "path", "p50", "p99", "max");
    for (name, mut latencies) in [("vector_index", index), ("cached_read", cache)] {
        latencies.sort_by(f64::total_cmp);
        let at = |share: f64| {
            latencies[((latencies.len() as f64 * share) as usize).min(latencies.len() - 1)]
        };
        println!(
            "{name:<24} {:>8.2} {:>8.2} {:>8.2}",
            at(0.50),
            at(0.99),
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}

/// Live vectors in this process's index of the notes' embeddings.
fn indexed(data: &DataLayer) -> Result<usize> {
    Ok(data
        .mongo()?
        .vector_indexes()
        .into_iter()
        .find(|s| s.field == "embedding")
        .map_or(0, |s| s.vectors))
}

/// When `visible` first held, looked at every [`POLL`].
async fn true_at(what: &str, visible: impl Fn() -> Result<bool>) -> Result<SystemTime> {
    let started = Instant::now();
    while !visible()? {
        if started.elapsed() > DEADLINE {
            return Err(not_seen(what));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(SystemTime::now())
}

/// When a read of `id` through the cache first served `title`, looked at every [`POLL`].
async fn title_served_at(notes: &Repository<Note>, id: &Uuid, title: &str) -> Result<SystemTime> {
    let started = Instant::now();
    while notes.get_required(ctx(), id).await?.title != title {
        if started.elapsed() > DEADLINE {
            return Err(not_seen("the changed title in the cached reads"));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(SystemTime::now())
}

fn not_seen(what: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what} was not seen within {DEADLINE:?}"),
    )
}

/// Milliseconds from `acked` to `seen`; a change seen before its writer heard back counts 0.
fn since(acked: SystemTime, seen: SystemTime) -> f64 {
    seen.duration_since(acked)
        .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
}

/// Seeded notes lie in the x-y plane.
fn in_plane(n: i64) -> Vec<f32> {
    let angle = n as f32 * 2.399_963;
    vec![angle.cos(), angle.sin(), 0.0]
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, e.to_string())
}

/// The writer process or its commands went wrong.
fn writer_error(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("writer process: {e}"))
}

/// The other process, spoken to by lines.
struct Writer {
    child: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
}

impl Writer {
    async fn start(vars: Vec<(String, String)>) -> Result<Self> {
        let exe = std::env::current_exe().map_err(writer_error)?;
        let mut child = Command::new(exe)
            .arg("follow-writer")
            .envs(vars)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| writer_error(format!("cannot start: {e}")))?;
        let commands = child.stdin.take().expect("piped");
        let answers = BufReader::new(child.stdout.take().expect("piped")).lines();
        Ok(Writer {
            child,
            commands,
            answers,
        })
    }

    /// Sends one command; the time the writer's write was acknowledged.
    async fn send(&mut self, command: &str) -> Result<SystemTime> {
        self.commands
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(writer_error)?;
        self.commands.flush().await.map_err(writer_error)?;
        let answer = self.answers.next_line().await.map_err(writer_error)?;
        let nanos: u64 = answer
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| writer_error(format!("answered {answer:?}")))?;
        Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
    }

    async fn finish(mut self) -> Result<()> {
        drop(self.commands);
        let _ = self.child.wait().await;
        Ok(())
    }
}

/// The writer process: `create RANK` adds a note pointing out of the x-y plane, `title ID
/// TEXT` changes a note's title; each answered with the acknowledgement time in Unix
/// nanoseconds. Ends at end of input.
pub async fn writer() -> Result<()> {
    let vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("UDL__MONGO__"))
        .collect();
    let config = udl::config::from_sources(None, vars).map_err(config_error)?;
    let store = MongoStore::connect(
        config
            .store::<udl::mongo::MongoConfig>()
            .expect("mongo configured"),
    )
    .await?;
    let notes: Repository<Note> = store.repository()?;
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = commands.next_line().await.map_err(writer_error)? {
        match line.split_once(' ') {
            Some(("create", rank)) => {
                let rank: i64 = rank.parse().map_err(|_| writer_error("bad rank"))?;
                let angle = rank as f32 * 2.399_963;
                let created = Note {
                    embedding: Some(vec![0.1 * angle.cos(), 0.1 * angle.sin(), 1.0]),
                    active: true,
                    ..note(rank)
                };
                notes.create(ctx(), created).await?;
            }
            Some(("title", rest)) => {
                let (id, title) = rest
                    .split_once(' ')
                    .ok_or_else(|| writer_error("bad command"))?;
                let id: Uuid = id.parse().map_err(|_| writer_error("bad id"))?;
                let changes = Changes::new().set("title", title.to_owned());
                notes.update(ctx(), &id, changes).await?;
            }
            _ => return Err(writer_error(format!("unknown command {line:?}"))),
        }
        let acked = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        println!("{acked}");
    }
    Ok(())
}
