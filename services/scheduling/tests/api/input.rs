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
