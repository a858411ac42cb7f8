//! What every request of the gateway shares: the data layer (once connected), the Redis
//! structures built over it, the configured services and the token verifier.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::OnceCell;
use udl::config::{GatewayConfig, ServiceAccess};
use udl::redis::{Admissions, EmbeddingCache, GenerationCache, RateLimiter, SessionStore};
use udl::{DataLayer, Result};

use crate::access::token_digest;
use crate::jwt::JwtVerifier;
use crate::problem::Problem;

/// A configured service, its token kept only as a digest.
pub(crate) struct KnownService {
    pub(crate) access: ServiceAccess,
    pub(crate) token_digest: Option<[u8; 32]>,
}

/// The gateway's shared state.
pub struct Gateway {
    data: Arc<OnceCell<DataLayer>>,
    ready: OnceLock<Ready>,
    pub(crate) config: GatewayConfig,
    pub(crate) verifier: JwtVerifier,
    pub(crate) services: Vec<KnownService>,
}

/// The data layer and the Redis structures the routes use, built once it is connected.
pub struct Ready {
    /// The data layer.
    pub data: DataLayer,
    /// Rate limits for `/v1/rate-limits/check`.
    pub limiter: RateLimiter,
    /// The gateway's own admission: rate limits and token revocation in one round trip.
    pub admissions: Admissions,
    /// Sessions and the JWT revocation list.
    pub sessions: SessionStore,
    /// Embeddings by model and text.
    pub embeddings: EmbeddingCache,
    /// LLM responses by model, prompt and parameters.
    pub generations: GenerationCache,
}

/// How long a caller is told to wait while udl is still connecting its stores.
const STARTING_RETRY: Duration = Duration::from_secs(2);

impl Gateway {
    /// The gateway `config` describes, over the data layer `data` will hold once connected.
    /// Fails (`Config`) when the JWK set cannot be read.
    pub fn new(config: GatewayConfig, data: Arc<OnceCell<DataLayer>>) -> Result<Self> {
        let verifier = JwtVerifier::from_file(&config.jwt)?;
        let services = config
            .services
            .iter()
            .map(|access| KnownService {
                access: access.clone(),
                token_digest: access.token.as_ref().map(|t| token_digest(t.expose())),
            })
            .collect();
        Ok(Gateway {
            data,
            ready: OnceLock::new(),
            config,
            verifier,
            services,
        })
    }

    /// The data layer, when connected.
    pub(crate) fn data(&self) -> Option<&DataLayer> {
        self.data.get()
    }

    /// The connected data layer and its Redis structures, or 503 while udl is starting.
    pub(crate) fn ready(&self) -> Result<&Ready, Problem> {
        if let Some(ready) = self.ready.get() {
            return Ok(ready);
        }
        let starting = || Problem::busy("udl is still connecting its stores", STARTING_RETRY);
        let data = self.data.get().ok_or_else(starting)?;
        let redis = data.redis().map_err(Problem::from)?.clone();
        let ttl = self.config.cache_ttl;
        let sessions = SessionStore::new(redis.clone(), self.config.session_idle);
        Ok(self.ready.get_or_init(|| Ready {
            data: data.clone(),
            limiter: RateLimiter::new(redis.clone()),
            admissions: Admissions::new(redis.clone(), sessions.clone()),
            sessions,
            embeddings: EmbeddingCache::new(redis.clone(), ttl),
            generations: GenerationCache::new(redis, ttl),
        }))
    }
}
