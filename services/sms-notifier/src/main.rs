//! `sms-notifier`: see the library docs for what it does and how it is configured.

use slotcast_kit::{shutdown, telemetry};
use sms_notifier::{Application, Config, SERVICE};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(SERVICE);
    let result = run().await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "sms-notifier stopped with an error");
    }
    telemetry::shutdown();
    result
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "sms-notifier listening");
    app.run_until_stopped(shutdown::on_signal()).await
}
