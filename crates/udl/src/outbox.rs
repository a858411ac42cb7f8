//! `Transaction::emit`: the transactional outbox. An event emitted inside a transaction is
//! committed or discarded with it, and the change relay delivers it in commit order to every
//! sink, sanitized by the event's declarations like a captured row.

use udl_core::{AccessContext, Entity, Error, ErrorKind, Result};
use udl_postgres::models::AccessOutcome;
use udl_privacy::audit::new_entry;
use udl_sync::outbox::{outbox_prefix, sanitize_event, EventPlan};

use crate::Transaction;

impl Transaction {
    /// Emits `event` (an entity declared with `store = "outbox"`) with this transaction: the
    /// relay sends it as `ce.<event>.emitted` once the transaction commits, never if it rolls
    /// back. Its fields are sanitized here by their declarations (the WAL holds tokens, never
    /// a sensitive value); an event with a PII or PHI field is recorded in the access log as
    /// emitted by `ctx`. A declaration that is not sound, or an event too large for the bus,
    /// is refused (`InvalidInput`) and nothing is written.
    pub async fn emit<E: Entity>(&self, ctx: &AccessContext, event: E) -> Result<()> {
        let meta = E::meta();
        let plan = EventPlan::new(meta).map_err(|why| Error::new(ErrorKind::InvalidInput, why))?;
        let privacy = self.data.privacy("the outbox")?;
        let message = sanitize_event(&plan, event.into_record(), &privacy.vault)?;
        if meta.is_sensitive() {
            let mut entry = new_entry(ctx, meta.name, "emit", AccessOutcome::Allowed);
            entry.patient_id = ctx.patient().map(str::to_owned);
            privacy.audit.append(entry).await?;
        }
        let tokens: Vec<(&str, &str, &str)> = message
            .vault
            .iter()
            .map(|v| (v.kind, v.value.as_str(), v.token.as_str()))
            .collect();
        // Kept before the event exists: a token of an event that is rolled back names nothing.
        privacy.vault.keep_many(&tokens).await?;
        let prefix = outbox_prefix(self.data.postgres()?.schema());
        self.tx
            .emit_logical_message(&prefix, &message.content)
            .await
    }
}
