//! A PostgreSQL transaction through the data layer: a subscription is cancelled and its final
//! invoice written together, or neither is. Its repositories carry the same privacy layers as
//! any other. Needs `[postgres]` and `[privacy]`.

use udl::postgres::models::{
    Invoice, InvoiceStatus, Subscription, SubscriptionStatus, User, UserStatus,
};
use udl::{AccessContext, Changes, Result, Role};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let ctx = AccessContext::system("billing");
    let (user, subscription) = (Uuid::new_v4(), Uuid::new_v4());
    let now = chrono::Utc::now();
    data.repository::<User>()?
        .create(
            &ctx,
            User {
                id: user,
                email: format!("fake-{user}@example.test"),
                display_name: "Fake Payer".into(),
                role: Role::Patient,
                status: UserStatus::Active,
                created_at: now,
                updated_at: now,
                version: 1,
            },
        )
        .await?;
    data.repository::<Subscription>()?
        .create(
            &ctx,
            Subscription {
                id: subscription,
                user_id: user,
                plan: "therapy-monthly".into(),
                status: SubscriptionStatus::Active,
                current_period_start: now,
                current_period_end: now + chrono::Duration::days(30),
                cancel_at: None,
                external_ref: None,
                created_at: now,
                version: 1,
            },
        )
        .await?;

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
    Ok(())
}
