//! Property-based fuzzing of the four HTTP APIs from their own OpenAPI documents, with
//! schemathesis (PyPI; `scripts/prerequisites.sh` installs it into `var/schemathesis`), against
//! the whole system on real servers and with a staff token: no answer may be a 5xx, nor differ
//! from what the document says (status, content type, headers, body schema), nor accept what it
//! says is invalid or unauthenticated. `SCHEMATHESIS` may name another `st`.

use std::{fmt::Write as _, path::PathBuf, process::Stdio, time::Duration};

use chrono::{Duration as Span, Utc};
use serde_json::json;
use slotcast_e2e::{INBOUND_KEY, Stack, TEST_SECRET};
use slotcast_links::OfferSigner;
use uuid::Uuid;

/// What schemathesis checks on every answer: no 5xx; the status, content type, headers and
/// body as documented; a 4xx for every request the document says is invalid; 401 without the
/// token an operation requires; 405 with `Allow` for an undocumented method.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,\
                      negative_data_rejection,ignored_auth,missing_required_header,\
                      unsupported_method,allow_header_conformance";

/// Fuzzed test cases per operation: enough to reach every documented input shape, few enough
/// to keep the four runs within about a minute and a half on two cores.
const MAX_EXAMPLES: &str = "100";

/// The most one service's run may take before the test gives up on it.
const BUDGET: Duration = Duration::from_secs(90);

/// `SCHEMATHESIS` if set, else the project's venv, else `st` on the `PATH`.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return Some(path.into());
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../var/schemathesis/bin/st");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("st"))
        .find(|st| st.is_file())
}

/// Rows that exist, so that fuzzed requests reach past "not found" into the handlers' logic.
struct Seed {
    practitioner: Uuid,
    patient: Uuid,
    /// Booked by the patient's appointment.
    booked: Uuid,
    /// Open, offered by `offer`.
    open: Uuid,
    appointment: Uuid,
    entry: Uuid,
    notification: Uuid,
    offer: String,
    preferences: String,
}

async fn seed(stack: &Stack) -> anyhow::Result<Seed> {
    let practitioner = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Fuzz", "specialty": "GP", "timezone": "Europe/Paris"}),
        )
        .await?;
    let patient = stack
        .create(
            "/v1/patients",
            json!({"name": "Ada", "email": "ada@patients.example"}),
        )
        .await?;
    let entry = stack
        .create(
            "/v1/waitlist",
            json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new"}),
        )
        .await?;
    let start = Utc::now() + Span::days(2);
    let (status, slots) = stack
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            json!({"slots": [
                {"starts_at": start, "ends_at": start + Span::minutes(30)},
                {"starts_at": start + Span::hours(1), "ends_at": start + Span::hours(2)},
            ]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "slots: {status} {slots}");
    let slot = |i: usize| -> anyhow::Result<Uuid> {
        Ok(slots["slots"][i]["id"]
            .as_str()
            .unwrap_or_default()
            .parse()?)
    };
    let (booked, open) = (slot(0)?, slot(1)?);
    // The patient waits: matching tells them, and the in-app feed gets a notification.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let notification: Uuid = loop {
        let feed = stack.feed(patient).await?;
        if let Some(id) = feed.first().and_then(|n| n["id"].as_str()?.parse().ok()) {
            break id;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no seed notification"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": patient, "slot_id": booked}),
        )
        .await?;
    let signer = OfferSigner::new(TEST_SECRET);
    Ok(Seed {
        practitioner,
        patient,
        booked,
        open,
        appointment,
        entry,
        notification,
        offer: signer.sign(
            Uuid::now_v7(),
            patient,
            entry,
            &[open],
            Utc::now() + Span::days(1),
        )?,
        preferences: signer.sign_preferences(patient)?,
    })
}

/// A schemathesis configuration that gives each operation of `service` the seeded rows as its
/// path parameters (every other parameter and the bodies are still generated).
fn config(seed: &Seed, service: &str) -> String {
    let practitioner = seed.practitioner.to_string();
    let patient = seed.patient.to_string();
    let booked = seed.booked.to_string();
    let open = seed.open.to_string();
    let appointment = seed.appointment.to_string();
    let entry = seed.entry.to_string();
    let notification = seed.notification.to_string();
    let by_operation: Vec<(&str, Vec<(&str, &str)>)> = match service {
        "scheduling" => vec![
            ("read_practitioner", vec![("id", &practitioner)]),
            ("update_practitioner", vec![("id", &practitioner)]),
            ("create_slots", vec![("id", &practitioner)]),
            ("list_slots", vec![("id", &practitioner)]),
            ("read_patient", vec![("id", &patient)]),
            ("read_preferences", vec![("id", &patient)]),
            ("update_preferences", vec![("id", &patient)]),
            ("read_slot", vec![("id", &booked)]),
            ("withdraw_slot", vec![("id", &booked)]),
            ("read_appointment", vec![("id", &appointment)]),
            ("cancel_appointment", vec![("id", &appointment)]),
            ("update_waitlist_entry", vec![("id", &entry)]),
            ("leave_waitlist", vec![("id", &entry)]),
            ("show_offer", vec![("token", &seed.offer)]),
            ("claim_offer", vec![("token", &seed.offer)]),
            ("show_preferences_link", vec![("token", &seed.preferences)]),
            (
                "change_preferences_by_link",
                vec![("token", &seed.preferences)],
            ),
            ("show_unsubscribe_link", vec![("token", &seed.preferences)]),
            ("unsubscribe", vec![("token", &seed.preferences)]),
        ],
        "matching" => vec![
            ("slot_offers", vec![("id", &open)]),
            ("decisions", vec![("id", &open)]),
        ],
        // The gateway's callbacks with the right key; a report's id and token are random, so
        // a report finds nothing (its own tests send real ones).
        "sms-notifier" => vec![
            ("sms_inbound", vec![("token", INBOUND_KEY)]),
            ("sms_inbound_twilio", vec![("token", INBOUND_KEY)]),
        ],
        _ => vec![
            ("list_notifications", vec![("id", &patient)]),
            ("mark_read", vec![("id", &patient), ("nid", &notification)]),
        ],
    };
    let mut toml = String::new();
    for (operation, parameters) in by_operation {
        let values: Vec<String> = parameters
            .iter()
            .map(|(name, value)| format!("\"path.{name}\" = \"{value}\""))
            .collect();
        let _ = writeln!(
            toml,
            "[[operations]]\ninclude-operation-id = \"{operation}\"\nparameters = {{ {} }}\n",
            values.join(", ")
        );
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_http_apis_finds_no_server_error_and_no_undocumented_answer() {
    let st = schemathesis().expect(
        "schemathesis is missing: run scripts/prerequisites.sh (or `make prerequisites`), which \
         installs it into var/schemathesis, or set SCHEMATHESIS to its `st`",
    );
    // The abuse limits would answer the fuzzer's failed authentications with 429 (they have
    // tests of their own).
    let stack = Stack::start_unlimited().await.expect("the system starts");
    let seed = seed(&stack).await.expect("the seed rows");
    let sms = stack.sms.as_ref().expect("a texting stack");
    let dir = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (service, base, skip) in [
        ("scheduling", &stack.scheduling, None),
        ("matching", &stack.matching, None),
        // An open stream never ends: its own tests cover it (tests/api/stream.rs).
        (
            "inapp-notifier",
            &stack.inapp,
            Some("/v1/patients/{id}/notifications/stream"),
        ),
        ("sms-notifier", sms, None),
    ] {
        let config_file = dir.path().join(format!("{service}.toml"));
        std::fs::write(&config_file, config(&seed, service)).unwrap();
        let mut command = tokio::process::Command::new(&st);
        command
            .arg("--config-file")
            .arg(&config_file)
            .arg("run")
            .arg(format!("{base}/openapi.json"));
        if let Some(path) = skip {
            command.args(["--exclude-path", path]);
        }
        let run = command
            .args(["--checks", CHECKS])
            .args([
                "--header",
                &format!("Authorization: Bearer {}", stack.staff),
            ])
            .args(["--max-examples", MAX_EXAMPLES])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--seed", "15"])
            .args(["--workers", "2"])
            .args(["--request-timeout", "10"])
            .args(["--suppress-health-check", "all"])
            .env("NO_COLOR", "1")
            // Its cache and reports stay out of the source tree.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(BUDGET, run)
            .await
            .unwrap_or_else(|_| panic!("schemathesis on {service} overran its budget"))
            .expect("schemathesis runs");
        let log = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failed.push(format!(
                "{service}: schemathesis exited with {}\n{log}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        } else if std::env::var_os("TEST_LOG").is_some() {
            println!("{service}:\n{log}");
        }
    }
    stack.stop().await.expect("the system stops cleanly");
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
