//! `udl demo`: the whole layer at work in a minute. It empties and migrates a namespace of its
//! own (`udl_demo`) in the four stores, starts the gateway in this process with a stand-in
//! auth service, walks a realistic journey through it over HTTP with fake data (see
//! `journey`), checks the note's PHI is ciphertext at rest, and ends with a summary on the
//! terminal and the patient's compliance report as an HTML page, whose path it prints.

mod http;
mod journey;
mod namespace;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use udl::privacy::audit::report;
use udl::{AccessContext, DataLayer, Error, ErrorKind, Purpose, Result, Role, StoreKind};
use udl_gateway::dev_issuer::DevIssuer;

use journey::{Journey, NOTE_TEXT};

/// The stand-in auth service's issuer and the audience it signs for.
const ISSUER: &str = "udl-demo-auth";
const AUDIENCE: &str = "udl";

/// Runs the demo with the stores `config_file` and the environment configure.
pub async fn run(config_file: Option<&Path>) -> Result<ExitCode> {
    let dir = std::env::temp_dir().join("udl-demo");
    let io = |e: std::io::Error| Error::new(ErrorKind::Config, format!("udl demo: {}", e.kind()));
    std::fs::create_dir_all(dir.join("spool")).map_err(io)?;
    let issuer = DevIssuer::new(ISSUER, AUDIENCE)?;
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks()).map_err(io)?;
    let service_token = format!(
        "demo-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let config = namespace::demo_config(config_file, &dir, &jwks, &service_token)?;

    println!("udl demo: a day on a therapy platform, through udl's gateway\n");
    namespace::fresh(&config).await?;
    println!(
        "  namespace {} emptied and migrated in PostgreSQL, MongoDB, ScyllaDB and Redis",
        namespace::NAMESPACE
    );
    let data = DataLayer::connect(&config).await?;
    let outcome = walk(&data, &config, &issuer, service_token, &dir).await;
    crate::commands::closing(data, async |_| Ok(())).await?;
    outcome
}

async fn walk(
    data: &DataLayer,
    config: &udl::UdlConfig,
    issuer: &DevIssuer,
    service_token: String,
    dir: &Path,
) -> Result<ExitCode> {
    let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(data.clone())));
    let gateway_config = config
        .gateway
        .clone()
        .ok_or_else(|| Error::new(ErrorKind::Internal, "no gateway"))?;
    let router = udl_gateway::router(Arc::new(udl_gateway::Gateway::new(gateway_config, cell)?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("udl demo cannot listen: {}", e.kind()),
            )
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Config, format!("udl demo: {}", e.kind())))?
        .to_string();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    println!("  gateway listening on http://{address}; a stand-in auth service signs the tokens\n");

    let mut journey = Journey::new(address, service_token, issuer);
    let note_id = journey.walk().await;
    let sealed = match &note_id {
        Some(id) => sealed_at_rest(data, id).await?,
        None => false,
    };
    server.abort();
    for step in &journey.steps {
        let mark = if step.ok { "✔" } else { "✖" };
        println!(
            "  {mark} {:<80} {:>6.1} ms",
            step.what,
            step.took.as_secs_f64() * 1000.0
        );
    }
    if let Some(stats) = data.cache_stats(StoreKind::MONGO) {
        println!(
            "  ✔ the playbook's three reads: {} from MongoDB, {} from this process's cache",
            stats.loads, stats.l1_hits
        );
    }
    let mark = if sealed { "✔" } else { "✖" };
    println!("  {mark} in MongoDB the note's text is ciphertext: the PHI is sealed at rest");

    let auditor = AccessContext::new(
        "udl-demo-privacy-officer",
        Role::Auditor,
        Purpose::Operations,
    )?;
    let pg = data.postgres()?;
    let accounting = report::accounting(pg, &journey.patient, None, None).await?;
    report::record_reading(data.audit_writer()?, &auditor, Some(&journey.patient)).await?;
    let page = dir.join("patient-compliance-report.html");
    std::fs::write(&page, accounting.to_html()).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("udl demo cannot write the report: {}", e.kind()),
        )
    })?;
    let count = |pred: &dyn Fn(&report::Disclosure) -> bool| {
        accounting.disclosures.iter().filter(|d| pred(d)).count()
    };
    println!(
        "\n  The patient's access log: {} accesses, {} refused, {} break-glass.",
        accounting.disclosures.len(),
        count(&|d| d.outcome != "allowed"),
        count(&|d| d.break_glass)
    );
    println!("  Compliance report for the patient: {}", page.display());
    println!(
        "  The demo's data stays in the {} namespace until the next udl demo.",
        namespace::NAMESPACE
    );
    let all_ok = sealed && journey.steps.iter().all(|s| s.ok);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether the note's stored document holds no plaintext of its PHI.
async fn sealed_at_rest(data: &DataLayer, note_id: &str) -> Result<bool> {
    let id = uuid::Uuid::parse_str(note_id).map_err(|_| Error::invalid("note id"))?;
    use mongodb::bson::{doc, spec::BinarySubtype, Binary, Document};
    let key = Binary {
        subtype: BinarySubtype::Uuid,
        bytes: id.as_bytes().to_vec(),
    };
    let raw = data
        .mongo()?
        .database()
        .collection::<Document>("conversations")
        .find_one(doc! {"_id": key})
        .await
        .map_err(|_| Error::new(ErrorKind::Unavailable, "MongoDB: cannot read the note back"))?;
    Ok(raw.is_some_and(|doc| !doc.to_string().contains(NOTE_TEXT)))
}
