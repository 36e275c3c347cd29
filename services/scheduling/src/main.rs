//! `scheduling`: serve the API; `scheduling mint-token --role staff [--sub UUID] [--hours N]`:
//! print a development token signed with `JWT_SECRET`.

use scheduling::{Application, Config};
use slotcast_kit::{auth, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("mint-token") {
        return mint_token(&args[1..]);
    }
    telemetry::init("scheduling");
    let app = Application::build(Config::from_env()?).await?;
    app.run_until_stopped(shutdown::on_signal()).await?;
    telemetry::shutdown();
    Ok(())
}

fn mint_token(args: &[String]) -> anyhow::Result<()> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let role = match value("--role").map(String::as_str).unwrap_or("staff") {
        "staff" => auth::Role::Staff,
        "practitioner" => auth::Role::Practitioner,
        "patient" => auth::Role::Patient,
        other => anyhow::bail!("unknown role {other:?}: staff, practitioner or patient"),
    };
    let sub = match value("--sub") {
        Some(s) => s.parse()?,
        None => uuid::Uuid::now_v7(),
    };
    let hours: i64 = value("--hours")
        .map(|h| h.parse())
        .transpose()?
        .unwrap_or(24);
    let secret = slotcast_kit::config::jwt_secret()?;
    println!(
        "{}",
        auth::mint(&secret, sub, role, chrono::Duration::hours(hours))?
    );
    Ok(())
}
