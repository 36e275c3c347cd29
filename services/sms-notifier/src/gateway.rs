//! Where texts go: an SMS gateway behind the [`Gateway`] trait, chosen by `SMS_URL`.
//!
//! - `kannel://user:password@host:port[?smsc=id]`: Kannel's smsbox `sendsms` interface (HTTP
//!   GET), with delivery reports through `dlr-url`.
//! - `twilio://AccountSid:AuthToken@api.twilio.com[/prefix]`: Twilio's Messages API over HTTPS
//!   ([`twilio`]), or a provider that copies it; `twilio+http://` speaks plain HTTP, for
//!   a stand-in on this machine.
//! - unset: each text is written as a file into `SMS_DIR`, for development.

use std::{path::PathBuf, time::Duration};

use uuid::Uuid;

pub mod twilio;

use crate::text::{Encoding, Length};
use twilio::{Account, Twilio};

/// A text to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub notification_id: Uuid,
    /// E.164.
    pub to: &'a str,
    pub text: &'a str,
    pub length: Length,
    /// Where the gateway reports on the text, if anywhere: an address without a query, to which
    /// each gateway adds what it reports its own way.
    pub report_url: Option<&'a str>,
}

/// The gateway took the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its reference for the text, where it gives one.
    pub gateway_id: Option<String>,
}

/// The gateway did not take the text, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Permanent(String),
}

/// An SMS gateway.
pub trait Gateway: Send + Sync {
    /// Hands `message` to the gateway.
    fn send(
        &self,
        message: &Outgoing<'_>,
    ) -> impl Future<Output = Result<Accepted, Refused>> + Send;
}

/// `SMS_URL`, read.
#[derive(Clone, PartialEq, Eq)]
pub enum GatewayUrl {
    Kannel {
        /// `http://host:port/cgi-bin/sendsms`.
        sendsms: url::Url,
        username: String,
        password: String,
        /// Kannel's `smsc` to route through, if given.
        smsc: Option<String>,
    },
    Twilio(Account),
    Folder(PathBuf),
}

impl GatewayUrl {
    /// Reads `SMS_URL`; the reason it is refused never quotes the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "kannel" => {
                let host = url.host_str().ok_or("a Kannel URL names its host")?;
                let port = url.port().unwrap_or(13013);
                let username = percent(url.username());
                let password = percent(url.password().unwrap_or_default());
                if username.is_empty() {
                    return Err(
                        "a Kannel URL carries the sendsms user: kannel://user:password@host:port"
                            .to_owned(),
                    );
                }
                let sendsms = url::Url::parse(&format!("http://{host}:{port}/cgi-bin/sendsms"))
                    .map_err(|e| format!("not a usable host: {e}"))?;
                let smsc = url
                    .query_pairs()
                    .find(|(k, _)| k == "smsc")
                    .map(|(_, v)| v.into_owned());
                Ok(GatewayUrl::Kannel {
                    sendsms,
                    username,
                    password,
                    smsc,
                })
            }
            "twilio" | "twilio+https" | "twilio+http" => {
                let host = url.host_str().ok_or("a Twilio URL names the API's host")?;
                let sid = percent(url.username());
                let auth_token = percent(url.password().unwrap_or_default());
                if sid.is_empty() || auth_token.is_empty() {
                    return Err("a Twilio URL carries the account: \
                                twilio://AccountSid:AuthToken@api.twilio.com"
                        .to_owned());
                }
                let scheme = if url.scheme() == "twilio+http" {
                    "http"
                } else {
                    "https"
                };
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let api = url::Url::parse(&format!("{scheme}://{host}{port}{}", url.path()))
                    .map_err(|e| format!("not a usable host: {e}"))?;
                Ok(GatewayUrl::Twilio(Account {
                    api,
                    sid,
                    auth_token,
                }))
            }
            "file" => Ok(GatewayUrl::Folder(PathBuf::from(url.path()))),
            other => Err(format!(
                "unknown gateway {other:?}: use kannel://user:password@host:port, \
                 twilio://AccountSid:AuthToken@api.twilio.com or file:///dir"
            )),
        }
    }

    /// What kind of gateway, for logs (never the credentials).
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayUrl::Kannel { .. } => "kannel",
            GatewayUrl::Twilio(_) => "twilio",
            GatewayUrl::Folder(_) => "folder",
        }
    }
}

/// A URL's user or password as written before percent-encoding.
fn percent(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl std::fmt::Debug for GatewayUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        match self {
            GatewayUrl::Kannel { sendsms, .. } => write!(f, "Kannel at {sendsms}"),
            GatewayUrl::Twilio(account) => write!(f, "Twilio API at {}", account.api),
            GatewayUrl::Folder(dir) => write!(f, "files in {}", dir.display()),
        }
    }
}

/// The configured gateway.
pub enum Gateways {
    Kannel(Kannel),
    Twilio(Twilio),
    Folder(Folder),
}

impl Gateways {
    /// The gateway `url` names, sending as `from` (where the gateway lets the sender choose).
    pub async fn connect(url: &GatewayUrl, from: &str) -> anyhow::Result<Self> {
        Ok(match url {
            GatewayUrl::Kannel {
                sendsms,
                username,
                password,
                smsc,
            } => Gateways::Kannel(Kannel::new(
                sendsms.clone(),
                username.clone(),
                password.clone(),
                smsc.clone(),
                from.to_owned(),
            )?),
            GatewayUrl::Twilio(account) => Gateways::Twilio(Twilio::new(account.clone(), from)?),
            GatewayUrl::Folder(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                Gateways::Folder(Folder { dir: dir.clone() })
            }
        })
    }
}

impl Gateway for Gateways {
    async fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Refused> {
        match self {
            Gateways::Kannel(k) => k.send(message).await,
            Gateways::Twilio(t) => t.send(message).await,
            Gateways::Folder(f) => f.send(message).await,
        }
    }
}

/// Kannel's `sendsms` HTTP interface.
pub struct Kannel {
    http: reqwest::Client,
    sendsms: url::Url,
    username: String,
    password: String,
    smsc: Option<String>,
    from: String,
}

/// Kannel's delivery report mask: delivered (1), undelivered (2) and refused by the SMSC (16),
/// the reports that end a delivery; not taken by the SMSC (8), which would only cost a call.
const DLR_MASK: &str = "19";

impl Kannel {
    pub fn new(
        sendsms: url::Url,
        username: String,
        password: String,
        smsc: Option<String>,
        from: String,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            sendsms,
            username,
            password,
            smsc,
            from,
        })
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Accepted, Refused> {
        if !is_e164(m.to) {
            // Kannel reads `to` as a list separated by spaces: anything but one number is refused
            // here, never passed on.
            return Err(Refused::Permanent("not an E.164 number".to_owned()));
        }
        let coding = match m.length.encoding {
            Encoding::Gsm7 => "0",
            Encoding::Ucs2 => "2",
        };
        let mut query: Vec<(&str, String)> = vec![
            ("username", self.username.clone()),
            ("password", self.password.clone()),
            ("from", self.from.clone()),
            ("to", m.to.to_owned()),
            ("text", m.text.to_owned()),
            ("charset", "UTF-8".to_owned()),
            ("coding", coding.to_owned()),
        ];
        if let Some(smsc) = &self.smsc {
            query.push(("smsc", smsc.clone()));
        }
        if let Some(report) = m.report_url {
            query.push(("dlr-mask", DLR_MASK.to_owned()));
            // Kannel puts the report's type where `%d` stands.
            query.push(("dlr-url", format!("{report}?status=%d")));
        }
        let response = self
            .http
            .get(self.sendsms.clone())
            .query(&query)
            .send()
            .await
            .map_err(|e| Refused::Temporary(format!("Kannel unreachable: {}", e.without_url())))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body = body.trim().chars().take(200).collect::<String>();
        match status.as_u16() {
            // `0: Accepted for delivery`, or `3: Queued for later delivery` while no SMSC is up.
            200..=299 => Ok(Accepted { gateway_id: None }),
            // Wrong credentials or a server in trouble: the operator's to fix, not the patient's.
            401 | 403 | 429 | 500..=599 => Err(Refused::Temporary(format!(
                "Kannel answered {status}: {body}"
            ))),
            _ => Err(Refused::Permanent(format!(
                "Kannel answered {status}: {body}"
            ))),
        }
    }
}

/// Whether `to` is one E.164 number: `+` and 2 to 15 digits, the first not 0.
pub fn is_e164(to: &str) -> bool {
    let Some(digits) = to.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Texts as files, `<notification id>.txt`, for development: what would be sent, and to whom.
pub struct Folder {
    dir: PathBuf,
}

impl Folder {
    async fn send(&self, m: &Outgoing<'_>) -> Result<Accepted, Refused> {
        let name = format!("{}.txt", m.notification_id);
        let partial = self.dir.join(format!(".{name}.partial"));
        let content = format!(
            "To: {}\nSegments: {}\n\n{}\n",
            m.to, m.length.segments, m.text
        );
        let written = async {
            tokio::fs::write(&partial, content).await?;
            tokio::fs::rename(&partial, self.dir.join(&name)).await
        };
        written
            .await
            .map(|()| Accepted { gateway_id: None })
            .map_err(|e| Refused::Temporary(format!("cannot write the text: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kannel_url_gives_the_sendsms_address_and_credentials() {
        let GatewayUrl::Kannel {
            sendsms,
            username,
            password,
            smsc,
        } = GatewayUrl::parse("kannel://slot%40cast:p%2Fw@127.0.0.1:14013?smsc=fake1").unwrap()
        else {
            panic!("a Kannel URL");
        };
        assert_eq!(sendsms.as_str(), "http://127.0.0.1:14013/cgi-bin/sendsms");
        assert_eq!((username.as_str(), password.as_str()), ("slot@cast", "p/w"));
        assert_eq!(smsc.as_deref(), Some("fake1"));
    }

    #[test]
    fn a_twilio_url_gives_the_api_over_https_unless_it_says_http() {
        let GatewayUrl::Twilio(account) =
            GatewayUrl::parse("twilio://AC123:t%2Fok@api.twilio.com").unwrap()
        else {
            panic!("a Twilio URL");
        };
        assert_eq!(account.api.as_str(), "https://api.twilio.com/");
        assert_eq!(
            (account.sid.as_str(), account.auth_token.as_str()),
            ("AC123", "t/ok")
        );
        let GatewayUrl::Twilio(stand_in) =
            GatewayUrl::parse("twilio+http://AC1:tok@127.0.0.1:4010/twilio").unwrap()
        else {
            panic!("a Twilio URL");
        };
        assert_eq!(stand_in.api.as_str(), "http://127.0.0.1:4010/twilio");
        let debug = format!("{:?}", GatewayUrl::Twilio(stand_in));
        assert!(!debug.contains("tok"), "{debug}");
    }

    #[test]
    fn a_bad_sms_url_is_refused_without_quoting_the_password() {
        for raw in [
            "kannel://:secret@host",
            "smpp://u:secret@host",
            "twilio://:secret@api.twilio.com",
            "nope",
        ] {
            let reason = GatewayUrl::parse(raw).unwrap_err();
            assert!(!reason.contains("secret"), "{reason}");
        }
    }

    #[test]
    fn only_one_e164_number_is_a_recipient() {
        assert!(is_e164("+33612345678"));
        for not in [
            "33612345678",
            "+33 612",
            "+0612345678",
            "+1",
            "+1234567890123456",
            "+33612345678 +44",
        ] {
            assert!(!is_e164(not), "{not}");
        }
    }
}
