//! The event bus: sanitized events published to a NATS JetStream stream, subjects
//! `<prefix>.<entity>.<action>`, each as a structured-mode CloudEvent whose `Nats-Msg-Id` is the
//! event id, so the stream stores a replayed event once (within its duplicate window). Every
//! publish is awaited until the server has stored it; batches publish in commit order.

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::Subject;
use futures_util::future::try_join_all;
use udl_core::{Error, ErrorKind, Result};

use crate::event::{ChangeEvent, ChangeKind};
use crate::in_flight::{PublishTurn, PublishTurns};

/// Where and how events are published.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// `nats://` or `tls://` URL.
    pub url: String,
    /// JetStream stream, created (or brought up to these settings) by udl.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<entity>.<action>`.
    pub subject_prefix: String,
    /// How long the stream remembers a message id.
    pub duplicate_window: Duration,
    /// How long the stream keeps events.
    pub max_age: Duration,
}

/// Publishes events to JetStream.
pub struct NatsSink {
    jetstream: jetstream::Context,
    prefix: String,
    /// Each entity and action's subject, made once (a subject clones by reference count).
    subjects: Mutex<HashMap<(&'static str, ChangeKind), Subject>>,
}

fn failed(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Error {
    // async-nats errors name the operation and the server's reason, never a payload.
    move |e| Error::new(ErrorKind::Unavailable, format!("nats {what} failed: {e}"))
}

impl NatsSink {
    /// Connects and makes sure of the stream: it captures `<subject_prefix>.>`, on disk, with
    /// the configured duplicate window and age.
    pub async fn connect(settings: &NatsSettings) -> Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name("udl change relay")
            .connect(settings.url.as_str())
            .await
            .map_err(|e| failed("connect")(&e))?;
        let jetstream = jetstream::new(client);
        let config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            storage: stream::StorageType::File,
            duplicate_window: settings.duplicate_window,
            max_age: settings.max_age,
            ..Default::default()
        };
        jetstream
            .create_or_update_stream(config)
            .await
            .map_err(|e| failed("stream setup")(&e))?;
        Ok(NatsSink {
            jetstream,
            prefix: settings.subject_prefix.clone(),
            subjects: Mutex::new(HashMap::new()),
        })
    }

    /// The subject of `event`.
    pub fn subject_of(&self, event: &ChangeEvent) -> Subject {
        let mut subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
        subjects
            .entry((event.entity, event.kind))
            .or_insert_with(|| {
                Subject::from(format!(
                    "{}.{}.{}",
                    self.prefix,
                    event.entity,
                    event.kind.as_str()
                ))
            })
            .clone()
    }

    /// Publishes `events` in order and returns when the server has stored each; idempotent by
    /// event id within the duplicate window (the relay's batches go through `write`).
    pub async fn publish(&self, events: &[&ChangeEvent]) -> Result<()> {
        self.write(events, &PublishTurns::default().next()).await
    }

    /// Publishes `events` once every earlier batch has (`turn`), and returns when the server
    /// has stored each; idempotent by event id within the duplicate window.
    pub(crate) async fn write(&self, events: &[&ChangeEvent], turn: &PublishTurn) -> Result<()> {
        turn.wait().await;
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let message = PublishMessage::build()
                .message_id(&event.id)
                .header("Content-Type", "application/cloudevents+json")
                .payload(event.to_cloudevent_text().into());
            let ack = self
                .jetstream
                .send_publish(self.subject_of(event), message)
                .await
                .map_err(|e| match e.kind() {
                    PublishErrorKind::MaxPayloadExceeded => Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "event {} is larger than the NATS server takes ({e})",
                            event.id
                        ),
                    ),
                    _ => failed("publish")(&e),
                })?;
            acks.push(ack.into_future());
        }
        // Sent in order: the next batch may send while these are being stored.
        turn.done();
        try_join_all(acks)
            .await
            .map_err(|e| failed("publish acknowledgement")(&e))?;
        Ok(())
    }
}
