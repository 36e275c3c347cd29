//! [`Application`]: connects the database (running [`crate::migration`]), NATS and the gateway,
//! and runs the consumer, the outbox relay and the HTTP server until shutdown.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use slotcast_bus::{
    Foundation, JetStream,
    consumer::{self, ConsumerSpec},
    outbox::Relay,
};
use slotcast_events::{streams, subjects};
use slotcast_kit::{http, limits::Limits, openapi, ops};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    Config,
    config::SERVICE,
    gateway::{GatewayUrl, Gateways, twilio::WebhookKey},
    handler::SendSms,
    migration::Migrator,
    replies::Replies,
    routes::{self, AppState, Webhooks},
    scheduling::Scheduling,
};

/// How long a text may be in hand before JetStream delivers it again, and another attempt may
/// claim it.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often JetStream delivers a message at most; the retry horizon normally ends retries
/// first.
const MAX_DELIVER: i64 = 200;
/// Texts that may wait in JetStream for the end of their patients' quiet hours; beyond it,
/// newer texts wait behind them.
pub const MAX_DEFERRED: i64 = 20_000;

/// The running service, built and ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    db: DatabaseConnection,
    nats: async_nats::Client,
    js: JetStream,
    relay: Relay,
    handler: Arc<SendSms>,
    spec: ConsumerSpec,
    limits: Limits,
    replies: Option<Arc<Replies>>,
    inbound_key: Option<String>,
    webhooks: Webhooks,
}

impl Application {
    /// Connects and migrates the database, connects NATS (creating the streams and the
    /// consumer), sets up the gateway and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Foundation {
            db,
            nats,
            js,
            listener,
        } = Foundation::connect::<Migrator>(&config.common, SERVICE).await?;
        let spec = notify_spec(config.concurrency);
        // Created now so that what is published before the first pull is kept for us.
        consumer::ensure_consumer(&js, &spec).await?;
        let gateway = Gateways::connect(&config.gateway, &config.from).await?;
        let local = listener.local_addr()?;
        let port = local.port();
        let report_base_url = config.report_base_url.clone().unwrap_or_else(|| {
            let host = if local.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                local.ip().to_string()
            };
            format!("http://{host}:{port}")
        });
        let link_base_url = config
            .link_base_url
            .clone()
            .unwrap_or_else(|| report_base_url.clone());
        let webhooks = Webhooks {
            twilio: match &config.gateway {
                GatewayUrl::Twilio(account) => Some(WebhookKey::new(&account.auth_token)),
                _ => None,
            },
            report_base_url: report_base_url.clone(),
            inbound_base_url: config
                .inbound_base_url
                .clone()
                .unwrap_or_else(|| report_base_url.clone()),
        };
        let relay = Relay::new(db.clone(), js.clone());
        let gateway = Arc::new(gateway);
        let replies = match &config.inbound_key {
            Some(_) => Some(Arc::new(Replies {
                db: db.clone(),
                gateway: gateway.clone(),
                scheduling: Scheduling::new(&config.scheduling_url, config.jwt_secret.clone())?,
            })),
            None => None,
        };
        let handler = Arc::new(SendSms {
            db: db.clone(),
            relay: relay.clone(),
            gateway,
            retry: config.retry,
            report_base_url,
            link_base_url,
            lease: ACK_WAIT,
        });
        Ok(Self {
            listener,
            port,
            db,
            nats,
            js,
            relay,
            handler,
            spec,
            limits: Limits::new(config.common.limits, routes::LINK_ROUTES),
            replies,
            inbound_key: config.inbound_key.clone(),
            webhooks,
        })
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database connection (for tests and tools).
    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// Runs the HTTP server, the consumer and the outbox relay until `shutdown` is cancelled;
    /// then finishes the texts in hand, publishes what they wrote, and drains NATS.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let readiness = ops::Readiness {
            db: self.db.clone(),
            nats: self.nats.clone(),
        };
        let app = http_app(
            AppState {
                db: self.db.clone(),
                relay: self.relay.clone(),
                replies: self.replies.clone(),
                inbound_key: self.inbound_key.clone(),
                webhooks: self.webhooks.clone(),
            },
            readiness,
            self.limits,
        );
        let served = http::serve(self.listener, app, shutdown.clone());
        // The relay outlives the consumer, so the events of the last texts still go out.
        let relay_stop = CancellationToken::new();
        let consume = {
            let relay_stop = relay_stop.clone();
            let run = consumer::run(self.js.clone(), self.spec, self.handler, shutdown.clone());
            async move {
                run.await;
                relay_stop.cancel();
            }
        };
        let (served, (), ()) = tokio::join!(served, consume, self.relay.run(relay_stop));
        if let Err(e) = self.nats.drain().await {
            tracing::warn!(error = %e, "NATS drain failed");
        }
        served.map_err(|e| anyhow::anyhow!("HTTP server failed: {e}"))
    }
}

/// Consumes `slotcast.notify.patient` with durable consumer `sms-notifier`, `concurrency`
/// texts at once; replicas share it.
pub fn notify_spec(concurrency: usize) -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::NOTIFY,
        durable: SERVICE.to_owned(),
        filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        concurrency,
        // Messages waiting out a retry delay or the patients' quiet hours count as pending:
        // room for a night's deferred texts beside those in hand.
        max_ack_pending: MAX_DEFERRED + (concurrency * 8) as i64,
    }
}

/// The parts of the HTTP API, each a router registered with its documented operations.
fn parts() -> (OpenApiRouter<AppState>, OpenApiRouter<ops::Readiness>) {
    (routes::api(), ops::api())
}

/// The document before the parts add their operations.
fn frame() -> OpenApi {
    openapi::document(
        "slotcast sms-notifier",
        "The short links of text messages, the texts patients send, and the delivery reports an \
         SMS gateway calls back with, one address per text (Twilio's posts signed). Errors are \
         RFC 9457 `application/problem+json`.",
    )
}

/// The OpenAPI 3.1 document of the HTTP API, as `GET /openapi.json` serves it.
pub fn openapi() -> OpenApi {
    let (reports, ops) = parts();
    frame()
        .merge_from(openapi::limited(reports.into_openapi()))
        .merge_from(ops.into_openapi())
}

/// The HTTP API with its layers, `/openapi.json` and `/docs`: the same parts as [`openapi`].
fn http_app(state: AppState, readiness: ops::Readiness, limits: Limits) -> axum::Router {
    let (reports, ops) = parts();
    let mut doc = frame();
    let reports = openapi::split_limited(&mut doc, reports, state, &limits);
    let ops = openapi::split(&mut doc, ops, readiness);
    http::with_common_layers(reports.merge(ops).merge(openapi::router(doc)))
}
