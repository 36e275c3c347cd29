//! Twilio's Messages API, which most hosted SMS providers copy: a text handed over with
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, and the signature
//! (`X-Twilio-Signature`) on what the provider posts back: status callbacks and patients'
//! texts.
//!
//! The signature is base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
//! sorted by name)), over the URL the provider called: the public one, never what a proxy
//! forwards.

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use sha1::Sha1;

use crate::gateway::{Accepted, Outgoing, Refused, is_e164};

/// The header the provider's signature comes in.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Where a Twilio API lives, and the account that sends.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The API's address: `https://api.twilio.com`, or a stand-in's.
    pub api: url::Url,
    pub sid: String,
    pub auth_token: String,
}

/// Who a text is from: a number or sender name, or a Messaging Service that picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    From(String),
    MessagingService(String),
}

impl Sender {
    /// `SMS_FROM` read: a Messaging Service SID is `MG` and 32 hex digits, which no sender
    /// name (11 characters at most) or number can be.
    fn of(from: &str) -> Self {
        let is_service = from.len() == 34
            && from.starts_with("MG")
            && from[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if is_service {
            Sender::MessagingService(from.to_owned())
        } else {
            Sender::From(from.to_owned())
        }
    }
}

/// Twilio's Messages API.
pub struct Twilio {
    http: reqwest::Client,
    messages: url::Url,
    account: Account,
    sender: Sender,
}

/// What Twilio answers with when it takes a text.
#[derive(Debug, Deserialize)]
struct Created {
    sid: Option<String>,
}

/// What Twilio answers with when it does not: `{code, message, more_info, status}`. The
/// message is never read, since it quotes the number.
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    code: Option<u32>,
}

impl Twilio {
    /// Sends through `account`, as `from`.
    pub fn new(account: Account, from: &str) -> anyhow::Result<Self> {
        let mut messages = account.api.clone();
        messages
            .path_segments_mut()
            .map_err(|()| anyhow::anyhow!("the Twilio API address cannot take a path"))?
            .pop_if_empty()
            .extend(["2010-04-01", "Accounts", &account.sid, "Messages.json"]);
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            messages,
            account,
            sender: Sender::of(from),
        })
    }

    /// Hands `m` to the API.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<Accepted, Refused> {
        if !is_e164(m.to) {
            // Twilio would read what is not one number its own way: refused here, never passed on.
            return Err(Refused::Permanent("not an E.164 number".to_owned()));
        }
        let mut form = vec![("To", m.to), ("Body", m.text)];
        match &self.sender {
            Sender::From(from) => form.push(("From", from)),
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        if let Some(report) = m.report_url {
            form.push(("StatusCallback", report));
        }
        let response = self
            .http
            .post(self.messages.clone())
            .basic_auth(&self.account.sid, Some(&self.account.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| Refused::Temporary(format!("Twilio unreachable: {}", e.without_url())))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            let created: Created = response.json().await.unwrap_or(Created { sid: None });
            if created.sid.is_none() {
                // Taken all the same: sending again would text the patient twice.
                tracing::warn!(notification_id = %m.notification_id, "Twilio took a text without giving its sid");
            }
            return Ok(Accepted {
                gateway_id: created.sid,
            });
        }
        let error: ApiError = response.json().await.unwrap_or_default();
        Err(refusal(status, error.code))
    }
}

/// Whether a refusal with HTTP `status` and Twilio error `code` is for good; the reason names
/// both, never the number.
fn refusal(status: u16, code: Option<u32>) -> Refused {
    let code = match code {
        Some(code) => format!(", code {code}{}", meaning(code)),
        None => String::new(),
    };
    let reason = format!("Twilio answered {status}{code}");
    match status {
        // Credentials, an account path that is not ours, a rate or a server in trouble: the
        // operator's or the provider's to fix, not the patient's.
        401 | 403 | 404 | 429 | 500..=599 => Refused::Temporary(reason),
        _ => Refused::Permanent(reason),
    }
}

/// What the Twilio error codes that refuse a recipient mean.
fn meaning(code: u32) -> &'static str {
    match code {
        21211 => " (not a valid To number)",
        21610 => " (the recipient texted STOP)",
        21612 | 21408 => " (cannot be sent to this number)",
        21614 => " (not a mobile number)",
        _ => "",
    }
}

/// The key the provider signs its requests with: the account's auth token.
#[derive(Clone)]
pub struct WebhookKey(String);

impl WebhookKey {
    pub fn new(auth_token: &str) -> Self {
        Self(auth_token.to_owned())
    }

    /// The signature of a POST to `url` with `params`, as the provider computes it.
    pub fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(self.mac(url, params).finalize().into_bytes())
    }

    /// Whether `signature` (base64) signs a POST to `url` with `params`; compared in constant
    /// time.
    pub fn verify(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        use base64::Engine as _;
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        self.mac(url, params).verify_slice(&given).is_ok()
    }

    fn mac(&self, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        // By name; a name given twice by its values, as Twilio's own libraries order them.
        sorted.sort();
        // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha1>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC keys have no length limit"));
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac
    }
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(<set>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The worked example of Twilio's webhook security documentation.
    fn documented() -> (&'static str, Vec<(String, String)>) {
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            pairs(&[
                ("To", "+18005551212"),
                ("From", "+14158675310"),
                ("Digits", "1234"),
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+14158675310"),
            ]),
        )
    }

    #[test]
    fn the_signature_is_twilios_documented_example() {
        let (url, params) = documented();
        let key = WebhookKey::new("12345");
        assert_eq!(key.sign(url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(key.verify(url, &params, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
    }

    #[test]
    fn a_signature_over_another_url_params_or_key_is_refused() {
        let (url, params) = documented();
        let key = WebhookKey::new("12345");
        let good = key.sign(url, &params);
        let mut changed = params.clone();
        changed[2].1 = "9999".to_owned();
        assert!(!key.verify(url, &changed, &good));
        assert!(!key.verify("https://mycompany.com/myapp.php?foo=1", &params, &good));
        assert!(!WebhookKey::new("54321").verify(url, &params, &good));
        for bad in ["", "not base64!", "AAAA"] {
            assert!(!key.verify(url, &params, bad), "{bad}");
        }
    }

    #[test]
    fn a_name_given_twice_is_signed_in_the_order_of_its_values() {
        let key = WebhookKey::new("k");
        let one = pairs(&[("a", "2"), ("a", "1"), ("b", "x")]);
        let other = pairs(&[("b", "x"), ("a", "1"), ("a", "2")]);
        assert_eq!(key.sign("u", &one), key.sign("u", &other));
    }

    #[test]
    fn a_recipient_refused_is_for_good_and_the_rest_for_now() {
        for (status, code) in [(400, Some(21211)), (400, Some(21610)), (400, Some(21614))] {
            let refused = refusal(status, code);
            assert!(matches!(refused, Refused::Permanent(_)), "{refused:?}");
        }
        for status in [401, 403, 429, 500, 503] {
            let refused = refusal(status, Some(20003));
            assert!(matches!(refused, Refused::Temporary(_)), "{refused:?}");
        }
        assert_eq!(
            refusal(400, Some(21211)).to_string(),
            "Twilio answered 400, code 21211 (not a valid To number)"
        );
    }

    #[test]
    fn a_messaging_service_sid_is_sent_as_one_and_anything_else_as_the_sender() {
        let service = format!("MG{}", "0123456789abcdef".repeat(2));
        assert_eq!(
            Sender::of(&service),
            Sender::MessagingService(service.clone())
        );
        for from in ["slotcast", "MGHealth", "+15005550006"] {
            assert_eq!(Sender::of(from), Sender::From(from.to_owned()), "{from}");
        }
    }

    #[test]
    fn the_messages_address_is_under_the_account() {
        let account = Account {
            api: url::Url::parse("https://api.twilio.com").unwrap(),
            sid: "AC0123".to_owned(),
            auth_token: "t".to_owned(),
        };
        let twilio = Twilio::new(account, "slotcast").unwrap();
        assert_eq!(
            twilio.messages.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json"
        );
    }
}
