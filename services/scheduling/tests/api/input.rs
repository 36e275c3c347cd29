use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn malformed_json_gets_400_problem_json() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/practitioners", app.base))
        .bearer_auth(&app.staff)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_gets_422() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "Dr X", "specialty": "GP"}),
        json!({"name": 5, "specialty": "GP", "timezone": "UTC"}),
        json!({"name": "Dr X", "specialty": "GP", "timezone": "UTC", "surprise": true}),
        json!({"name": "Dr X", "specialty": "GP", "timezone": "Mars/Olympus"}),
        json!({"name": "  ", "specialty": "GP", "timezone": "UTC"}),
    ] {
        let res = app
            .post("/v1/practitioners", Some(&app.staff), body.clone())
            .await;
        assert_problem(res, 422).await;
    }
    let res = app
        .post(
            "/v1/patients",
            Some(&app.staff),
            json!({"name": "P", "email": "not-an-address"}),
        )
        .await;
    assert_problem(res, 422).await;
}

#[tokio::test]
async fn a_json_array_in_place_of_an_object_gets_422_and_changes_nothing() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let patient = app.create_patient("Ann").await;
    // serde reads a struct from an array of its fields: `[]` or `[false, null, null]` would
    // change it.
    for (path, body) in [
        (format!("/v1/practitioners/{practitioner}"), json!([])),
        (
            format!("/v1/patients/{patient}/preferences"),
            json!([false, null, null]),
        ),
        (
            format!("/v1/patients/{patient}/preferences"),
            json!([null, null, null]),
        ),
    ] {
        let res = if path.contains("preferences") {
            app.put(&path, Some(&app.staff), body).await
        } else {
            app.patch(&path, Some(&app.staff), body).await
        };
        let problem = assert_problem(res, 422).await;
        assert_eq!(
            problem["detail"], "the body must be a JSON object",
            "{path}"
        );
    }
    let res = app
        .get(
            &format!("/v1/patients/{patient}/preferences"),
            Some(&app.staff),
        )
        .await;
    let preferences: serde_json::Value = res.json().await.unwrap();
    assert_eq!(preferences["email"], true);
    // Leading whitespace is still an object.
    let res = app
        .client
        .put(format!("{}/v1/patients/{patient}/preferences", app.base))
        .bearer_auth(&app.staff)
        .header("content-type", "application/json")
        .body(" \n {\"inapp\": false}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/patients", app.base))
        .bearer_auth(&app.staff)
        .body("name=P")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415).await;
}

#[tokio::test]
async fn a_malformed_id_gets_400_and_an_unknown_one_404() {
    let app = spawn_app().await;
    assert_problem(
        app.get("/v1/practitioners/not-a-uuid/slots", Some(&app.staff))
            .await,
        400,
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/v1/practitioners/{unknown}"), Some(&app.staff))
            .await,
        404,
    )
    .await;
    assert_problem(
        app.delete(&format!("/v1/slots/{unknown}"), Some(&app.staff))
            .await,
        404,
    )
    .await;
    assert_problem(app.get("/v1/nothing-here", Some(&app.staff)).await, 404).await;
}

#[tokio::test]
async fn the_ops_endpoints_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn a_wrong_method_or_an_oversized_body_gets_a_problem_too() {
    let app = spawn_app().await;
    assert_problem(
        app.send(
            reqwest::Method::PUT,
            "/v1/patients",
            Some(&app.staff),
            Some(json!({})),
        )
        .await,
        405,
    )
    .await;
    let huge = "x".repeat(300 * 1024);
    let res = app
        .post(
            "/v1/patients",
            Some(&app.staff),
            json!({"name": huge, "email": "a@b.example"}),
        )
        .await;
    assert_problem(res, 413).await;
}

#[tokio::test]
async fn times_outside_the_years_2000_to_9999_get_a_4xx_not_a_5xx() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let patient = app.create_patient("Alice").await;
    let body = json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new", "earliest": "-5000-01-01T00:00:00Z"});
    assert_problem(app.post("/v1/waitlist", Some(&app.staff), body).await, 422).await;
    let slots = json!({"slots": [{"starts_at": "2030-01-01T10:00:00Z", "ends_at": "+12000-01-01T00:00:00Z"}]});
    assert_problem(
        app.post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
            slots,
        )
        .await,
        422,
    )
    .await;
    // A short slot far in the future: its length is fine, its year is not.
    let slots = json!({"slots": [{"starts_at": "+99999-01-01T10:00:00Z", "ends_at": "+99999-01-01T10:30:00Z"}]});
    let path = format!("/v1/practitioners/{practitioner}/slots");
    let refused = assert_problem(app.post(&path, Some(&app.staff), slots).await, 422).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("RFC 3339"),
        "{refused}"
    );
    // RFC 3339, and still a year no backend stores the same way.
    let slots = json!({"slots": [{"starts_at": "0001-01-01T10:00:00Z", "ends_at": "0001-01-01T10:30:00Z"}]});
    let refused = assert_problem(app.post(&path, Some(&app.staff), slots).await, 422).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("between the years 2000 and 9999"),
        "{refused}"
    );
    let path = format!("/v1/practitioners/{practitioner}/slots?from=-5000-01-01T00:00:00Z");
    assert_problem(app.get(&path, Some(&app.staff)).await, 400).await;
}

#[tokio::test]
async fn a_time_that_is_not_rfc_3339_gets_422_naming_the_form() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let path = format!("/v1/practitioners/{practitioner}/slots");
    for (starts_at, ends_at) in [
        ("2030-01-01 10:00:00Z", "2030-01-01 10:30:00Z"),
        ("2030-01-01T10:00:00", "2030-01-01T10:30:00"),
        ("2030-01-01T10:00Z", "2030-01-01T10:30Z"),
        ("1893456000", "1893457800"),
    ] {
        let body = json!({"slots": [{"starts_at": starts_at, "ends_at": ends_at}]});
        let refused = assert_problem(app.post(&path, Some(&app.staff), body).await, 422).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("RFC 3339"),
            "{refused}"
        );
    }
    let body = json!({"slots": [{"starts_at": "2030-01-01T10:00:00+01:00", "ends_at": "2030-01-01t09:30:00z"}]});
    assert_eq!(app.post(&path, Some(&app.staff), body).await.status(), 201);
    let query = format!("{path}?from=2030-01-01%2010:00:00Z");
    assert_problem(app.get(&query, Some(&app.staff)).await, 400).await;
}

#[tokio::test]
async fn an_address_the_notifier_could_not_send_to_gets_422() {
    let app = spawn_app().await;
    for bad in [
        "two@@example.test",
        "a..b@example.test",
        "victim@clinic.test@attacker.test",
    ] {
        let body = json!({"name": "Eve", "email": bad, "locale": "en"});
        let refused =
            assert_problem(app.post("/v1/patients", Some(&app.staff), body).await, 422).await;
        assert!(
            !refused.to_string().contains(bad),
            "the answer does not repeat the address: {refused}"
        );
    }
    let body = json!({"name": "Grace", "email": " grace@example.test ", "locale": "en"});
    let res = app.post("/v1/patients", Some(&app.staff), body).await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    assert_eq!(created["email"], "grace@example.test");
}
