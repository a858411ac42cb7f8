//! Concurrent GETs coalesced into MGETs. A cache hit is one small GET, and under load most of
//! its cost is per command (a reply channel in the client, a dispatch in the server). One batch
//! is out at a time; the GETs that arrive meanwhile go out together as the next MGET, so
//! batches grow with load, and a lone GET is sent at once (no timer, no waiting to fill).

use tokio::sync::{mpsc, oneshot};
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::{classify, RedisConnection, RedisStore};

type Reply = oneshot::Sender<Result<Option<Vec<u8>>>>;

/// Most keys in one MGET.
const MAX_BATCH: usize = 128;

/// A GET that shares its round trip with the other GETs pending at the same moment.
#[derive(Clone)]
pub struct CoalescedGet {
    requests: mpsc::UnboundedSender<(String, Reply)>,
}

impl CoalescedGet {
    /// Starts the batching task on `store`'s connection (so call it inside a Tokio runtime).
    /// The task ends when the last clone of this handle is dropped.
    pub fn new(store: &RedisStore) -> Self {
        let (requests, pending) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(store.clone(), pending));
        CoalescedGet { requests }
    }

    /// The value at `key` (a full key, prefix included), or `None` when there is none.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || {
            Error::new(
                ErrorKind::Unavailable,
                "the Redis batching task has stopped",
            )
            .with_store(StoreKind::REDIS)
            .with_operation("get")
        };
        self.requests.send((key, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn dispatch(store: RedisStore, mut pending: mpsc::UnboundedReceiver<(String, Reply)>) {
    let mut conn = store.connection();
    while let Some(first) = pending.recv().await {
        // Everything that queued while the previous batch was out goes in this one.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (keys, replies): (Vec<String>, Vec<Reply>) = batch.into_iter().unzip();
        match get_all(&mut conn, &keys).await {
            Ok(values) => {
                for (reply, value) in replies.into_iter().zip(values) {
                    let _ = reply.send(Ok(value));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone_without_source()));
                }
            }
        }
    }
}

/// One value per key, in order: a GET for one key, an MGET for more.
async fn get_all(conn: &mut RedisConnection, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
    let values: Vec<Option<Vec<u8>>> = if let [key] = keys {
        let value = redis::cmd("GET").arg(key).query_async(conn).await;
        vec![value.map_err(|e| classify(&e, "get"))?]
    } else {
        let values = redis::cmd("MGET").arg(keys).query_async(conn).await;
        values.map_err(|e| classify(&e, "get"))?
    };
    if values.len() != keys.len() {
        return Err(
            Error::new(ErrorKind::DataCorruption, "MGET answered another count")
                .with_store(StoreKind::REDIS)
                .with_operation("get"),
        );
    }
    Ok(values)
}
