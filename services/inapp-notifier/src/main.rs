//! Runs the in-app notifier until SIGTERM or Ctrl-C.

use inapp_notifier::{Application, Config};
use slotcast_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("inapp-notifier");
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "inapp-notifier listening");
    let result = app.run_until_stopped(shutdown::on_signal()).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "inapp-notifier stopped with an error");
    }
    telemetry::shutdown();
    result
}
