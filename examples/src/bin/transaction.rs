//! Transactions through the data layer. PostgreSQL: a subscription is cancelled and its final
//! invoice written together, or neither is. MongoDB (a replica set): an AI answer is recorded
//! and its conversation touched together. Their repositories carry the same privacy layers as
//! any other. Needs `[postgres]`, `[mongo]` and `[privacy]`.

use udl::mongo::models::{AiResponse, Conversation, ConversationStatus};
use udl::postgres::models::{Invoice, InvoiceStatus, Subscription, SubscriptionStatus};
use udl::{AccessContext, Changes, Json, Result};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let ctx = AccessContext::system("billing");
    let (user, subscription) =
        udl_examples::fake_subscriber(&data, &ctx, "therapy-monthly").await?;
    let now = chrono::Utc::now();

    let final_invoice = Invoice {
        id: Uuid::new_v4(),
        subscription_id: subscription,
        user_id: user,
        amount_cents: 1_250,
        currency: "USD".into(),
        status: InvoiceStatus::Open,
        issued_at: now,
        paid_at: None,
        version: 1,
    };
    let work_ctx = ctx.clone();
    data.transaction(|tx| async move {
        let subs = tx.repository::<Subscription>()?;
        let invoices = tx.repository::<Invoice>()?;
        subs.update(
            &work_ctx,
            &subscription,
            Changes::new().set("status", SubscriptionStatus::Cancelled),
        )
        .await?;
        invoices.create(&work_ctx, final_invoice).await?;
        Ok(())
    })
    .await?; // committed; an Err rolls back

    let cancelled = data
        .repository::<Subscription>()?
        .get_required(&ctx, &subscription)
        .await?;
    assert_eq!(cancelled.status, SubscriptionStatus::Cancelled);

    let conversation = Conversation {
        id: Uuid::new_v4(),
        patient_id: user,
        title: Some("fake check-in".into()),
        messages: Json(Vec::new()),
        status: ConversationStatus::Active,
        started_at: now,
        updated_at: now,
        version: 1,
    };
    let conversation_id = data
        .repository::<Conversation>()?
        .create(&ctx, conversation)
        .await?;
    let answer = AiResponse {
        id: Uuid::new_v4(),
        conversation_id,
        patient_id: user,
        model: "fake-model".into(),
        prompt_hash: "fake-hash".into(),
        response_text: "fake: let's breathe together".into(),
        retrieved_chunk_ids: Json(Vec::new()),
        tokens_in: 12,
        tokens_out: 7,
        latency_ms: 80,
        feedback: None,
        created_at: now,
    };
    data.mongo_transaction(|tx| {
        let (answer, ctx) = (answer.clone(), ctx.clone());
        async move {
            tx.repository::<AiResponse>()?.create(&ctx, answer).await?;
            tx.repository::<Conversation>()?
                .update(
                    &ctx,
                    &conversation_id,
                    Changes::new().set("updated_at", now),
                )
                .await?;
            Ok(())
        }
    })
    .await?; // committed; an Err aborts; run again after a write conflict
    Ok(())
}
