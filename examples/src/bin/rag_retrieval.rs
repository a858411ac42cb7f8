//! Retrieval for the AI pipeline: document chunks written and found again through every layer.
//! The chunk text is PHI, sealed at rest; the embedding stays searchable because its field
//! says why (`plaintext = "similarity search"`). Every read and write is put to the access
//! policy and audited. Needs `[postgres]`, `[mongo]` and `[privacy]`.

use udl::mongo::models::DocumentChunk;
use udl::{field, AccessContext, Page, Purpose, Result, Role, SortKey};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let patient = Uuid::new_v4().to_string();
    // The patient asking a question in the chat: they may reach the chunks of their upload.
    let ctx = AccessContext::new(patient.clone(), Role::Patient, Purpose::PatientRequest)?
        .for_patient(patient)?;

    let chunks = data.repository::<DocumentChunk>()?;
    let document = Uuid::new_v4();
    let texts = [
        "fake note about sleep",
        "fake note about breathing",
        "fake recipe",
    ];
    let embeddings = [[0.9, 0.1, 0.0], [0.7, 0.3, 0.1], [0.0, 0.1, 0.9]];
    for (n, (text, embedding)) in texts.iter().zip(embeddings).enumerate() {
        chunks
            .create(&ctx, chunk(document, n, text, &embedding))
            .await?;
    }

    let in_order = chunks
        .list(
            &ctx,
            &field("document_id").eq(document),
            &[SortKey::asc("chunk_index")],
            Page::first(10),
        )
        .await?;
    assert_eq!(in_order.items.len(), 3);

    let question = [1.0, 0.2, 0.0];
    let hits = chunks
        .nearest(
            &ctx,
            "embedding",
            &question,
            2,
            &field("content_type").eq("patient_upload"),
        )
        .await?;
    for (chunk, similarity) in &hits {
        println!("chunk {} similarity {similarity:.3}", chunk.chunk_index);
    }
    assert_eq!(hits[0].0.text, "fake note about sleep");
    Ok(())
}

fn chunk(document: Uuid, n: usize, text: &str, embedding: &[f32]) -> DocumentChunk {
    DocumentChunk {
        id: Uuid::new_v4(),
        document_id: document,
        chunk_index: n as i64,
        text: text.to_owned(),
        embedding: embedding.to_vec(),
        embedding_model: "fake-embed-3d".into(),
        dimension: embedding.len() as i64,
        content_type: "patient_upload".into(),
        metadata: serde_json::json!({ "page": 1 }),
        source_media_asset_id: None,
        created_at: chrono::Utc::now(),
    }
}
