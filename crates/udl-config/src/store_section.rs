//! A store's config section, defined in the store's own crate: udl-config reads the layered
//! tree and reports problems; each backend says what its section holds.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::problem::{ConfigError, Problem};
use crate::reader::Section;
use crate::resilience::ResilienceSettings;
use crate::UdlConfig;

/// A store's section (`[postgres]`, `[mongo]`, ...), implemented by the store's backend.
pub trait StoreConfig:
    Clone + fmt::Debug + fmt::Display + PartialEq + Send + Sync + Sized + 'static
{
    /// The section's name: `"postgres"` reads `[postgres]` and `UDL__POSTGRES__*`.
    const SECTION: &'static str;

    /// Reads the section, reporting every problem (`None` when a required key is missing).
    fn read(section: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self>;

    /// Timeout, concurrency limit, retries and breaker of the store's resilience layer.
    fn resilience(&self) -> &ResilienceSettings;

    /// When the store's connection would be plaintext: the key to change and how, for
    /// `security.require_tls` to refuse it (`None`: the connection is encrypted).
    fn plaintext(&self) -> Option<(&'static str, &'static str)>;

    /// How [`UdlConfig::from_sources`] finds and reads this section.
    const READER: StoreReader = StoreReader {
        section: Self::SECTION,
        read: read_shared::<Self>,
    };

    /// This section alone from `file` and `env`, as a configuration holding only this store
    /// would read it (for a store's own tests and tools); a problem when it is absent.
    fn from_sources(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config = UdlConfig::from_sources(&[Self::READER], file, env)?;
        config.store::<Self>().cloned().ok_or_else(|| ConfigError {
            problems: vec![Problem {
                key: Self::SECTION.into(),
                problem: "not configured".into(),
            }],
        })
    }
}

fn read_shared<S: StoreConfig>(
    section: Section<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Arc<dyn AnyStoreConfig>> {
    S::read(section, problems).map(|c| Arc::new(c) as Arc<dyn AnyStoreConfig>)
}

/// Reads one store's section into the form [`UdlConfig`] holds.
pub type ReadSection = fn(Section<'_>, &mut Vec<Problem>) -> Option<Arc<dyn AnyStoreConfig>>;

/// How one store's section is found in the tree and read.
#[derive(Clone, Copy)]
pub struct StoreReader {
    /// The section's name.
    pub section: &'static str,
    /// Reads it.
    pub read: ReadSection,
}

/// A store section of any kind, as [`UdlConfig`] holds it.
pub trait AnyStoreConfig: fmt::Debug + fmt::Display + Send + Sync {
    /// The section's name.
    fn section(&self) -> &'static str;
    /// See [`StoreConfig::resilience`].
    fn resilience(&self) -> &ResilienceSettings;
    /// See [`StoreConfig::plaintext`].
    fn plaintext(&self) -> Option<(&'static str, &'static str)>;
    /// For [`UdlConfig::store`]'s downcast.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same section with the same settings.
    fn same_as(&self, other: &dyn AnyStoreConfig) -> bool;
}

impl<T: StoreConfig> AnyStoreConfig for T {
    fn section(&self) -> &'static str {
        T::SECTION
    }

    fn resilience(&self) -> &ResilienceSettings {
        StoreConfig::resilience(self)
    }

    fn plaintext(&self) -> Option<(&'static str, &'static str)> {
        StoreConfig::plaintext(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn AnyStoreConfig) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}
