//! What the change-capture tests share: relays started in the test process, the events
//! `ce_events` holds, and a JetStream stream of the test's own.

use std::time::Duration;

use udl::sync::{Relay, RelaySettings, RelayState};
use udl::{DataLayer, RelaySinks, UdlConfig};
use udl_testkit::wait;

use crate::common::World;

/// One event as `ce_events` holds it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) subject: Option<String>,
    pub(crate) position: i64,
    pub(crate) data: serde_json::Value,
}

pub(crate) async fn stored_events(data: &DataLayer) -> Vec<Stored> {
    let scylla = data.scylla().unwrap();
    let cql = format!(
        "SELECT id, type, subject, position, data FROM \"{}\".ce_events",
        scylla.keyspace()
    );
    let rows = scylla
        .session()
        .get_session()
        .query_unpaged(cql, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut events: Vec<Stored> = rows
        .rows::<(String, String, Option<String>, i64, String)>()
        .unwrap()
        .map(|r| {
            let (id, event_type, subject, position, data) = r.unwrap();
            Stored {
                id,
                event_type,
                subject,
                position,
                data: serde_json::from_str(&data).unwrap(),
            }
        })
        .collect();
    events.sort_by(|a, b| a.id.cmp(&b.id));
    events
}

/// The events about `subject`, once there are `count` of them.
pub(crate) async fn events_of(data: &DataLayer, subject: &str, count: usize) -> Vec<Stored> {
    wait::until(
        &format!("{count} events about one session in ScyllaDB"),
        Duration::from_secs(30),
        || async {
            let found: Vec<Stored> = stored_events(data)
                .await
                .into_iter()
                .filter(|e| e.subject.as_deref() == Some(subject))
                .collect();
            (found.len() >= count).then_some(found)
        },
    )
    .await
}

pub(crate) struct Running {
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    pub(crate) task: tokio::task::JoinHandle<udl::Result<()>>,
    pub(crate) state: tokio::sync::watch::Receiver<RelayState>,
}

pub(crate) fn config_of(w: &World) -> UdlConfig {
    udl::config::from_sources(None, w.vars.clone()).unwrap()
}

/// A JetStream stream and subjects of the test's own on the real NATS server.
pub(crate) struct Bus {
    pub(crate) stream: String,
    pub(crate) prefix: String,
}

impl Bus {
    pub(crate) fn of(w: &World) -> Bus {
        let name: String = w
            .namespace
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Bus {
            stream: format!("T_{name}"),
            prefix: format!("t{name}.ce"),
        }
    }

    /// The test's configuration with `[nats]` pointing at this bus.
    pub(crate) fn config(&self, w: &World) -> UdlConfig {
        let mut vars = w.vars.clone();
        vars.extend([
            (
                "UDL__NATS__URL".to_owned(),
                udl_testkit::servers::nats_url(),
            ),
            ("UDL__NATS__STREAM".to_owned(), self.stream.clone()),
            ("UDL__NATS__SUBJECT_PREFIX".to_owned(), self.prefix.clone()),
        ]);
        udl::config::from_sources(None, vars).unwrap()
    }

    pub(crate) async fn jetstream() -> async_nats::jetstream::Context {
        let client = async_nats::connect(udl_testkit::servers::nats_url())
            .await
            .unwrap();
        async_nats::jetstream::new(client)
    }

    /// Every message of the stream, read with NATS's own client.
    pub(crate) async fn messages(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let mut stream = Bus::jetstream()
            .await
            .get_stream(&self.stream)
            .await
            .unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut messages = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            messages.push(stream.get_raw_message(seq).await.unwrap());
        }
        messages
    }

    pub(crate) async fn delete(&self) {
        Bus::jetstream()
            .await
            .delete_stream(&self.stream)
            .await
            .unwrap();
    }
}

pub(crate) fn settings(w: &World) -> RelaySettings {
    RelaySettings {
        halt_retry: Duration::from_secs(3600),
        ..RelaySettings::for_schema(&w.namespace)
    }
}

/// The test's relay (slot and publication of its schema) into the sinks `config` names.
pub(crate) async fn configured_relay(w: &World, config: &UdlConfig) -> Relay {
    w.data
        .change_relay(config, settings(w), RelaySinks::Configured)
        .await
        .unwrap()
}

pub(crate) async fn start(relay: Relay) -> Running {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = relay.state();
    let task = tokio::spawn(async move { relay.run(stopped).await });
    let mut running = Running { stop, task, state };
    running
        .reaches("the relay streams", |s| *s == RelayState::Running)
        .await;
    running
}

impl Running {
    pub(crate) async fn reaches(
        &mut self,
        what: &str,
        done: impl Fn(&RelayState) -> bool,
    ) -> RelayState {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(Duration::from_secs(30), async {
            state.wait_for(|s| done(s)).await.map(|s| s.clone())
        })
        .await;
        match reached {
            Ok(reached) => reached.unwrap(),
            Err(_) => panic!("{what}: still {:?}", *self.state.borrow()),
        }
    }

    pub(crate) async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

pub(crate) async fn drop_capture(w: &World) {
    let s = settings(w);
    udl::sync::slot::drop_capture(w.data.postgres().unwrap(), &s.slot, &s.publication)
        .await
        .unwrap();
}

/// Waits until the test's relay has acknowledged the WAL written so far.
pub(crate) async fn wait_acknowledged(w: &World) {
    w.wait_acknowledged(&settings(w).slot, Duration::from_secs(120))
        .await;
}
