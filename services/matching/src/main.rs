use matching::{Application, Config};
use slotcast_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("matching");
    let app = Application::build(Config::from_env()?).await?;
    app.run_until_stopped(shutdown::on_signal()).await?;
    telemetry::shutdown();
    Ok(())
}
