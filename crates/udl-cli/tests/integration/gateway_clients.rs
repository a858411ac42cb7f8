//! The gateway's clients as the platform's services use them: the Python example
//! (`examples/clients/python`, on `clients/python`, httpx) writes a patient's journey through a
//! real `udl serve`, then the Go example (`examples/clients/go`, on `clients/go`, net/http)
//! reads it back as a clinician. `scripts/services up` installs httpx and builds the Go one.

use std::path::PathBuf;
use std::process::Command;

use udl_gateway::dev_issuer::TokenRequest;

use crate::gateway::{Gateway, CLINIC_APP, CLINIC_TOKEN};
use crate::gateway_client::Transport;

fn repository(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn run(what: &str, mut command: Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("the {what} could not start ({e}); run scripts/services up"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the {what} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_python_and_go_clients_run_their_examples_against_udl_serve() {
    let gw = Gateway::start(CLINIC_APP, true, Transport::Plain).await;
    let patient = uuid::Uuid::new_v4().to_string();
    let clinician = uuid::Uuid::new_v4().to_string();
    let token = |sub: &str, role: &str| {
        let roles = [role];
        gw.issuer.token(&TokenRequest::new(sub, &roles)).0
    };
    let env = [
        ("UDL_GATEWAY_URL", format!("http://{}", gw.daemon.address)),
        ("UDL_SERVICE_TOKEN", CLINIC_TOKEN.to_owned()),
        ("UDL_PATIENT_ID", patient.clone()),
        ("UDL_CLINICIAN_ID", clinician.clone()),
        ("UDL_PATIENT_TOKEN", token(&patient, "patient")),
        ("UDL_CLINICIAN_TOKEN", token(&clinician, "clinician")),
        (
            "UDL_STRANGER_TOKEN",
            token(&uuid::Uuid::new_v4().to_string(), "clinician"),
        ),
    ];

    let mut python = Command::new(repository(".local/consumers-venv/bin/python"));
    python
        .arg(repository("examples/clients/python/journey.py"))
        .envs(env.iter().map(|(k, v)| (*k, v)));
    let out = run("Python example", python);
    assert!(out.contains("stranger refused: 403"), "{out}");
    assert!(
        out.contains("rate limit decisions: [True, True, False]"),
        "{out}"
    );
    assert!(out.contains("python journey done"), "{out}");

    let mut go = Command::new(repository(".local/bin/gateway-journey"));
    go.envs(env.iter().map(|(k, v)| (*k, v)));
    let out = run("Go example", go);
    assert!(out.contains("conversations of the patient: 1"), "{out}");
    assert!(out.contains("retrieved \"fake coping tip 1\""), "{out}");
    assert!(out.contains("stranger refused: 403"), "{out}");
    assert!(out.contains("go journey done"), "{out}");
    gw.stop_and_drop_mongo().await;
}
