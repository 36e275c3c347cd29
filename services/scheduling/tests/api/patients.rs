//! A patient's phone number: kept in E.164 whatever the spacing it came with; anything that is
//! not a valid number in international form is refused and creates nobody.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_phone_number_is_kept_in_e164() {
    let app = spawn_app().await;
    for (given, kept) in [
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+49-151-23456789", "+4915123456789"),
        ("+1 (415) 555-0132", "+14155550132"),
    ] {
        let body = json!({"name": "Ada", "email": "ada@patients.example", "phone": given});
        let res = app.post("/v1/patients", Some(&app.staff), body).await;
        assert_eq!(res.status(), 201, "{given}");
        let created: Value = res.json().await.unwrap();
        assert_eq!(created["phone"], kept, "{given}");
        let id = created["id"].as_str().unwrap();
        let read: Value = app
            .get(&format!("/v1/patients/{id}"), Some(&app.staff))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(read["phone"], kept);
    }
    let body = json!({"name": "Grace", "email": "grace@patients.example"});
    let created: Value = app
        .post("/v1/patients", Some(&app.staff), body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["phone"], Value::Null);
}

#[tokio::test]
async fn a_phone_number_not_in_international_form_is_refused() {
    let app = spawn_app().await;
    for phone in [
        "06 12 34 56 78",
        "+33 6 12",
        "+999 123 456 789",
        "call me",
        "",
    ] {
        let body = json!({"name": "Ada", "email": "ada@patients.example", "phone": phone});
        let res = app.post("/v1/patients", Some(&app.staff), body).await;
        let problem = assert_problem(res, 422).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("+33612345678"), "{phone}: {detail}");
    }
    // A number where text is expected is refused as the wrong type.
    let body = json!({"name": "Ada", "email": "ada@patients.example", "phone": 33612345678u64});
    let res = app.post("/v1/patients", Some(&app.staff), body).await;
    assert_problem(res, 422).await;
}
