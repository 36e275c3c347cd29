//! Texts through the Twilio Messages API shape, against the test-support stand-in: sent with
//! the account's credentials, reported by signed status callbacks, and patients' texts taken
//! from signed webhooks only.

use slotcast_events::{SmsDelivered, SmsFailed, SmsSent};
use slotcast_test_support::{DENIED_PREFIX, twilio_signature};
use sms_notifier::deliveries::Status;

use crate::helpers::{INBOUND_KEY, PATIENCE, Texts, notification, spawn_app_with};

/// What a status callback for `sid` posts.
fn status_form(sid: &str, status: &str) -> Vec<(String, String)> {
    [
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// POSTs `form` to `url` with `signature`, if any.
async fn post(url: &str, form: &[(String, String)], signature: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).form(form);
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    request.send().await.expect("the app answers")
}

#[tokio::test]
async fn a_consenting_patient_gets_one_text_through_twilio_and_its_sid_is_kept() {
    let app = spawn_app_with(Texts::Twilio).await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    let messages = app.twilio().wait_for_messages(1, PATIENCE).await.unwrap();
    let message = &messages[0];
    assert_eq!(message.to, "+33612345678");
    assert_eq!(message.from.as_deref(), Some("slotcast"));
    assert!(
        message
            .body
            .starts_with("Dr Ada Lovelace: 2 times are free: 1) Tue 1 Dec 09:30, 2) 14:30."),
        "{}",
        message.body
    );
    let link = message.body.rsplit(' ').next().unwrap();
    assert!(link.starts_with(&app.url("/s/")), "{link}");

    let sent = app.wait_for_events::<SmsSent>(1).await;
    assert_eq!(
        sent[0].data.gateway_id.as_deref(),
        Some(message.sid.as_str())
    );
    let id = event.data.notification_id;
    let delivery = app
        .wait_for_delivery(id, "the sid recorded", |d| d.gateway_id.is_some())
        .await;
    assert_eq!(delivery.gateway_id.as_deref(), Some(message.sid.as_str()));
    assert_eq!(
        message.status_callback.as_deref(),
        Some(
            app.url(&format!("/v1/sms/reports/{id}/{}", delivery.report_key))
                .as_str()
        )
    );
}

#[tokio::test]
async fn signed_status_callbacks_mark_the_text_delivered_once() {
    let app = spawn_app_with(Texts::Twilio).await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    let callbacks = app.twilio().wait_for_callbacks(2, PATIENCE).await.unwrap();
    assert_eq!(
        callbacks
            .iter()
            .map(|c| (c.status.as_str(), c.answered))
            .collect::<Vec<_>>(),
        [("sent", 200), ("delivered", 200)]
    );
    let id = event.data.notification_id;
    let delivery = app
        .wait_for_delivery(id, "the text delivered", |d| d.status == Status::Delivered)
        .await;
    app.wait_for_events::<SmsDelivered>(1).await;

    // Twilio calling back again changes nothing.
    let url = app.url(&format!("/v1/sms/reports/{id}/{}", delivery.report_key));
    let sid = delivery.gateway_id.clone().unwrap();
    for status in ["delivered", "undelivered"] {
        let form = status_form(&sid, status);
        let signature = twilio_signature(app.twilio().auth_token(), &url, &form);
        let again = post(&url, &form, Some(&signature)).await;
        assert_eq!(again.status(), 200);
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["result"], "unchanged");
    }
    assert_eq!(app.events::<SmsDelivered>().len(), 1);
    assert!(app.events::<SmsFailed>().is_empty());
    assert_eq!(app.delivery(id).await.unwrap().status, Status::Delivered);
}

#[tokio::test]
async fn an_unsigned_or_wrongly_signed_callback_is_403_and_changes_nothing() {
    let app = spawn_app_with(Texts::Twilio).await;
    app.twilio().reports_with(&["sent"]);
    let event = notification("+33612345678", "en");
    app.publish(&event).await;
    app.twilio().wait_for_callbacks(1, PATIENCE).await.unwrap();
    let id = event.data.notification_id;
    let delivery = app
        .wait_for_delivery(id, "the text sent", |d| d.status == Status::Sent)
        .await;

    let url = app.url(&format!("/v1/sms/reports/{id}/{}", delivery.report_key));
    let form = status_form(delivery.gateway_id.as_deref().unwrap(), "delivered");
    let token = app.twilio().auth_token();
    let forged = [
        None,
        Some(twilio_signature("not-the-auth-token", &url, &form)),
        // Signed over another address than the one Twilio was given.
        Some(twilio_signature(
            token,
            "http://sms-notifier:8084/v1/sms/reports",
            &form,
        )),
        Some(twilio_signature(
            token,
            &url,
            &status_form("SMother", "delivered"),
        )),
    ];
    for signature in &forged {
        let res = post(&url, &form, signature.as_deref()).await;
        assert_eq!(res.status(), 403, "{signature:?}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(app.delivery(id).await.unwrap().status, Status::Sent);
    assert!(app.events::<SmsDelivered>().is_empty());

    // Signed, an undelivered report ends the text for good.
    let form = status_form(delivery.gateway_id.as_deref().unwrap(), "undelivered");
    let res = post(&url, &form, Some(&twilio_signature(token, &url, &form))).await;
    assert_eq!(res.status(), 200);
    let failed = app.wait_for_events::<SmsFailed>(1).await;
    assert!(failed[0].data.permanent);
    assert_eq!(app.delivery(id).await.unwrap().status, Status::Failed);
}

#[tokio::test]
async fn a_number_twilio_refuses_fails_for_good_without_the_number_in_the_reason() {
    let app = spawn_app_with(Texts::Twilio).await;
    let event = notification(&format!("{DENIED_PREFIX}12345678"), "en");
    app.publish(&event).await;

    let failed = app.wait_for_events::<SmsFailed>(1).await;
    let reason = &failed[0].data.reason;
    assert!(failed[0].data.permanent);
    assert!(
        reason.contains("400") && reason.contains("21211"),
        "{reason}"
    );
    assert!(
        !reason.contains("12345678"),
        "no number in the reason: {reason}"
    );
    let delivery = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!(delivery.status, Status::Failed);
    assert!(app.twilio().messages().is_empty());
}

#[tokio::test]
async fn a_text_twilio_rate_limits_is_sent_on_the_next_attempt() {
    let app = spawn_app_with(Texts::Twilio).await;
    app.twilio().fail_next(1, 429);
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    app.wait_for_events::<SmsSent>(1).await;
    app.wait_until_all_notifications_are_handled().await;
    let delivery = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!(delivery.attempts, 2);
    assert_eq!(app.twilio().messages().len(), 1);
    assert!(app.events::<SmsFailed>().is_empty());
}

#[tokio::test]
async fn a_signed_help_gets_the_help_text_back_through_the_api_once() {
    let app = spawn_app_with(Texts::Twilio).await;
    let webhook = app.url(&format!("/v1/sms/inbound/{INBOUND_KEY}"));
    let sid = "SM0123456789abcdef0123456789abcdef";

    let res = app
        .twilio()
        .text_from_phone(&webhook, sid, "+33612345678", "HELP")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/xml");
    let twiml = res.text().await.unwrap();
    assert!(
        twiml.ends_with("<Response/>"),
        "nothing to text back: {twiml}"
    );

    let messages = app.twilio().wait_for_messages(1, PATIENCE).await.unwrap();
    assert_eq!(messages[0].to, "+33612345678");
    assert!(
        messages[0]
            .body
            .contains("Texts about free appointment times"),
        "{}",
        messages[0].body
    );
    assert_eq!(messages[0].status_callback, None);

    // Twilio delivering the same text again gets no second answer.
    let again = app
        .twilio()
        .text_from_phone(&webhook, sid, "+33612345678", "HELP")
        .await
        .unwrap();
    // The answer is sent before the webhook is answered: nothing more can come.
    assert_eq!(again.status(), 200);
    assert_eq!(app.twilio().messages().len(), 1);
}

#[tokio::test]
async fn an_unsigned_text_from_a_phone_is_403_and_not_answered() {
    let app = spawn_app_with(Texts::Twilio).await;
    let webhook = app.url(&format!("/v1/sms/inbound/{INBOUND_KEY}"));
    let form: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("From", "+33612345678"),
        ("To", "+15005550006"),
        ("Body", "HELP"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let unsigned = post(&webhook, &form, None).await;
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        unsigned.headers()["content-type"],
        "application/problem+json"
    );
    let wrongly = twilio_signature("not-the-auth-token", &webhook, &form);
    assert_eq!(post(&webhook, &form, Some(&wrongly)).await.status(), 403);
    // Signed, but not with the inbound key in its address.
    let elsewhere = app.url("/v1/sms/inbound/not-the-key-at-all");
    let signed = twilio_signature(app.twilio().auth_token(), &elsewhere, &form);
    assert_eq!(post(&elsewhere, &form, Some(&signed)).await.status(), 404);
    assert!(app.twilio().messages().is_empty());
}

#[tokio::test]
async fn without_a_twilio_gateway_nothing_is_taken_by_post() {
    let app = spawn_app_with(Texts::Folder).await;
    let form = status_form("SM1", "delivered");
    let report = app.url(&format!(
        "/v1/sms/reports/{}/{}",
        uuid::Uuid::now_v7(),
        "0".repeat(32)
    ));
    let inbound = app.url(&format!("/v1/sms/inbound/{INBOUND_KEY}"));
    for url in [report, inbound] {
        let res = post(&url, &form, Some("c2lnbmVk")).await;
        assert_eq!(res.status(), 404, "{url}");
    }
}
