//! One connection type for a single server and for a cluster, so every structure built on
//! [`crate::RedisStore`] works on both and switching is a configuration change.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A multiplexed, self-reconnecting connection to a single Redis server or to a Redis
/// Cluster (which routes each command to the node owning its keys and follows slot moves).
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether this is a connection to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }

    /// Runs every command of `pipeline`, ignoring replies. On a single server that is one
    /// round trip; a cluster cannot take a pipeline whose keys live on several nodes, so there
    /// each command goes to its own node, concurrently: no order between them is kept, and
    /// callers that need one send the commands in steps.
    pub async fn apply(&mut self, pipeline: &Pipeline) -> RedisResult<()> {
        match &mut self.0 {
            Inner::Single(c) => pipeline.query_async(c).await,
            Inner::Cluster(c) => {
                let sends = pipeline.cmd_iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { cmd.query_async::<Value>(&mut c).await }
                });
                futures_util::future::try_join_all(sends).await.map(drop)
            }
        }
    }

    /// Deletes every key matching `pattern` by walking the keyspace (`SCAN`, then `UNLINK`),
    /// and returns whether it could: a cluster's keys are spread over nodes this walk does not
    /// visit, so there it does nothing and says so.
    pub async fn unlink_matching(&mut self, pattern: &str) -> RedisResult<bool> {
        let Inner::Single(c) = &mut self.0 else {
            return Ok(false);
        };
        let mut cursor = 0_u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(c)
                .await?;
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(&keys).query_async::<()>(c).await?;
            }
            if next == 0 {
                return Ok(true);
            }
            cursor = next;
        }
    }

    pub(crate) fn single(connection: ConnectionManager) -> Self {
        RedisConnection(Inner::Single(connection))
    }

    pub(crate) fn cluster(connection: ClusterConnection) -> Self {
        RedisConnection(Inner::Cluster(connection))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}
