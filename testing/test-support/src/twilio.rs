//! A stand-in for Twilio's Messages API, which cannot be reached from here: a local HTTP
//! server that implements the documented subset a sender relies on.
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with Basic auth (the account SID
//!   and auth token; 401 and error 20003 otherwise) and the form fields `To`, `From` or
//!   `MessagingServiceSid`, `Body` and `StatusCallback`. A `To` that is not E.164, or is in
//!   the country code no one has ([`crate::DENIED_PREFIX`]), is 400 with error 21211, its
//!   message quoting the number as Twilio's does. A message taken is 201 with its `sid`
//!   (`SM…`), recorded, and reported `sent` then `delivered` to its `StatusCallback` with
//!   signed POSTs ([`TwilioStandIn::reports_with`] changes what it reports).
//! - [`TwilioStandIn::fail_next`] answers the next messages with an error status (429, 500).
//! - [`TwilioStandIn::text_from_phone`] posts a patient's text to a messaging webhook, signed.
//!
//! Signatures are computed as Twilio documents them ([`twilio_signature`]), independently of
//! the code under test.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::json;
use sha1::Sha1;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The number patients' texts are sent to, as the stand-in's `To` on them (Twilio's own test
/// number).
pub const TWILIO_NUMBER: &str = "+15005550006";

/// A message the stand-in took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioMessage {
    /// `SM` and 32 hex digits.
    pub sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub status_callback: Option<String>,
}

/// A status callback the stand-in posted, and what it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub sid: String,
    /// `sent`, `delivered`, or as [`TwilioStandIn::reports_with`] says.
    pub status: String,
    /// The HTTP status the callback got, or 0 when it could not be posted.
    pub answered: u16,
}

/// What the stand-in's handlers share.
struct Shared {
    account_sid: String,
    auth_token: String,
    messages: Mutex<Vec<TwilioMessage>>,
    callbacks: Mutex<Vec<StatusCallback>>,
    /// The statuses the next messages are refused with, in order.
    failures: Mutex<VecDeque<u16>>,
    /// What each message taken is reported, in order.
    reports: Mutex<Vec<String>>,
    http: reqwest::Client,
}

/// The stand-in, on a free port of 127.0.0.1. Dropping it stops it.
pub struct TwilioStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl TwilioStandIn {
    /// Starts answering, with a fresh account SID and auth token.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Twilio stand-in")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            account_sid: format!("AC{}", uuid::Uuid::new_v4().simple()),
            auth_token: uuid::Uuid::new_v4().simple().to_string(),
            messages: Mutex::default(),
            callbacks: Mutex::default(),
            failures: Mutex::default(),
            reports: Mutex::new(vec!["sent".to_owned(), "delivered".to_owned()]),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        });
        let router = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(Self { addr, shared, stop })
    }

    /// The stand-in as the sms-notifier's `SMS_URL` names it (plain HTTP).
    pub fn url(&self) -> String {
        format!(
            "twilio+http://{}:{}@{}",
            self.shared.account_sid, self.shared.auth_token, self.addr
        )
    }

    /// [`Self::url`] with an auth token the stand-in refuses (401).
    pub fn url_with_wrong_token(&self) -> String {
        format!(
            "twilio+http://{}:not-the-token@{}",
            self.shared.account_sid, self.addr
        )
    }

    /// The auth token, which signs the stand-in's requests.
    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// The messages taken so far.
    pub fn messages(&self) -> Vec<TwilioMessage> {
        self.shared.messages.lock().expect("messages lock").clone()
    }

    /// Waits until `n` messages were taken.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<TwilioMessage>> {
        crate::poll(
            within,
            &format!("{n} message(s) at the Twilio stand-in"),
            || async {
                let messages = self.messages();
                Ok((messages.len() >= n).then_some(messages))
            },
        )
        .await
    }

    /// The status callbacks posted so far.
    pub fn callbacks(&self) -> Vec<StatusCallback> {
        self.shared
            .callbacks
            .lock()
            .expect("callbacks lock")
            .clone()
    }

    /// Waits until `n` status callbacks were posted.
    pub async fn wait_for_callbacks(
        &self,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<StatusCallback>> {
        crate::poll(within, &format!("{n} status callback(s)"), || async {
            let callbacks = self.callbacks();
            Ok((callbacks.len() >= n).then_some(callbacks))
        })
        .await
    }

    /// Refuses the next `n` messages with HTTP `status` (429 and 5xx as Twilio answers them).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared
            .failures
            .lock()
            .expect("failures lock")
            .extend(std::iter::repeat_n(status, n));
    }

    /// Reports each message taken from now on with `statuses`, in order, in place of `sent`
    /// and `delivered`.
    pub fn reports_with(&self, statuses: &[&str]) {
        *self.shared.reports.lock().expect("reports lock") =
            statuses.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Posts a text from the phone `from` to the messaging webhook `url`, signed as Twilio
    /// signs it; its `MessageSid` is `sid`.
    pub async fn text_from_phone(
        &self,
        url: &str,
        sid: &str,
        from: &str,
        body: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let params = vec![
            ("AccountSid".to_owned(), self.shared.account_sid.clone()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
            ("Body".to_owned(), body.to_owned()),
            ("From".to_owned(), from.to_owned()),
            ("MessageSid".to_owned(), sid.to_owned()),
            ("NumMedia".to_owned(), "0".to_owned()),
            ("NumSegments".to_owned(), "1".to_owned()),
            ("SmsMessageSid".to_owned(), sid.to_owned()),
            ("SmsSid".to_owned(), sid.to_owned()),
            ("SmsStatus".to_owned(), "received".to_owned()),
            ("To".to_owned(), TWILIO_NUMBER.to_owned()),
        ];
        self.shared
            .post_signed(url, &params)
            .await
            .context("posting a text to the webhook")
    }
}

impl Drop for TwilioStandIn {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    /// POSTs `params` as a form to `url`, signed.
    async fn post_signed(
        &self,
        url: &str,
        params: &[(String, String)],
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(url)
            .header(
                "X-Twilio-Signature",
                twilio_signature(&self.auth_token, url, params),
            )
            .form(params)
            .send()
            .await
    }

    /// Reports `message` to its status callback with `statuses`, in order.
    async fn report(&self, message: TwilioMessage, statuses: Vec<String>) {
        let Some(url) = &message.status_callback else {
            return;
        };
        for status in &statuses {
            let params: Vec<(String, String)> = [
                ("AccountSid", self.account_sid.as_str()),
                ("ApiVersion", "2010-04-01"),
                (
                    "From",
                    message
                        .from
                        .as_deref()
                        .or(message.messaging_service_sid.as_deref())
                        .unwrap_or_default(),
                ),
                ("MessageSid", &message.sid),
                ("MessageStatus", status.as_str()),
                ("SmsSid", &message.sid),
                ("SmsStatus", status.as_str()),
                ("To", &message.to),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let answered = match self.post_signed(url, &params).await {
                Ok(res) => res.status().as_u16(),
                Err(_) => 0,
            };
            self.callbacks
                .lock()
                .expect("callbacks lock")
                .push(StatusCallback {
                    sid: message.sid.clone(),
                    status: status.clone(),
                    answered,
                });
        }
    }
}

/// Twilio's `X-Twilio-Signature` for a POST of `params` to `url`: base64(HMAC-SHA1(auth
/// token, the URL followed by each parameter's name and value, sorted by name)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut data = url.to_owned();
    let mut sorted = params.to_vec();
    sorted.sort();
    for (name, value) in sorted {
        data.push_str(&name);
        data.push_str(&value);
    }
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        unreachable!("HMAC keys have no length limit");
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Twilio's error body.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// Whether the request carries the account's credentials, for the account in its path.
fn authenticated(shared: &Shared, account: &str, headers: &HeaderMap) -> bool {
    let expected = format!("{}:{}", shared.account_sid, shared.auth_token);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    account == shared.account_sid && given.as_deref() == Some(expected.as_bytes())
}

fn is_e164(to: &str) -> bool {
    to.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authenticated(&shared, &account, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let failure = shared.failures.lock().expect("failures lock").pop_front();
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = if status == StatusCode::TOO_MANY_REQUESTS {
            20429
        } else {
            20500
        };
        return error(status, code, "Failing as the test asked");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let to = field("To").unwrap_or_default();
    if !is_e164(&to) || to.starts_with(crate::DENIED_PREFIX) {
        let message = format!("The 'To' number {to} is not a valid phone number.");
        return error(StatusCode::BAD_REQUEST, 21211, &message);
    }
    let (from, messaging_service_sid) = (field("From"), field("MessagingServiceSid"));
    if from.is_none() && messaging_service_sid.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
        );
    }
    let Some(body) = field("Body").filter(|b| !b.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let message = TwilioMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        to,
        from,
        messaging_service_sid,
        body,
        status_callback: field("StatusCallback"),
    };
    shared
        .messages
        .lock()
        .expect("messages lock")
        .push(message.clone());
    let created = json!({
        "sid": message.sid,
        "account_sid": shared.account_sid,
        "api_version": "2010-04-01",
        "to": message.to,
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "body": message.body,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "error_code": null,
        "error_message": null,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{}.json", shared.account_sid, message.sid),
    });
    // Reported after the answer, as Twilio does, while the sender records what it sent.
    let statuses = shared.reports.lock().expect("reports lock").clone();
    tokio::spawn({
        let shared = shared.clone();
        async move { shared.report(message, statuses).await }
    });
    (StatusCode::CREATED, Json(created)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_signature_is_twilios_documented_example() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }

    #[tokio::test]
    async fn a_message_needs_the_credentials_and_one_e164_number() {
        let stand_in = TwilioStandIn::start().await.unwrap();
        let http = reqwest::Client::new();
        let endpoint = format!(
            "http://{}/2010-04-01/Accounts/{}/Messages.json",
            stand_in.addr, stand_in.shared.account_sid
        );
        let send = |token: &str, to: &str| {
            http.post(&endpoint)
                .basic_auth(&stand_in.shared.account_sid, Some(token))
                .form(&[("To", to), ("From", "slotcast"), ("Body", "hi")])
                .send()
        };
        let refused = send("wrong", "+33612345678").await.unwrap();
        assert_eq!(refused.status(), 401);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], 20003);

        let invalid = send(stand_in.auth_token(), "+33 6 12").await.unwrap();
        assert_eq!(invalid.status(), 400);
        let body: serde_json::Value = invalid.json().await.unwrap();
        assert_eq!(body["code"], 21211);

        stand_in.fail_next(1, 429);
        let limited = send(stand_in.auth_token(), "+33612345678").await.unwrap();
        assert_eq!(limited.status(), 429);

        let created = send(stand_in.auth_token(), "+33612345678").await.unwrap();
        assert_eq!(created.status(), 201);
        let body: serde_json::Value = created.json().await.unwrap();
        let sid = body["sid"].as_str().unwrap();
        assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
        assert_eq!(stand_in.messages().len(), 1);
        assert_eq!(stand_in.messages()[0].sid, sid);
    }
}
