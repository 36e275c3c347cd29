//! Whether the system has settled: what tests and benchmarks wait for before they count.

/// What is still in flight, if anything: a durable consumer of the catalogue's streams with
/// messages pending or unacknowledged, or one of the named `outboxes` with rows unpublished.
/// `None` means the system has settled (what tests and benchmarks wait for).
pub async fn in_flight<'a>(
    js: &async_nats::jetstream::Context,
    outboxes: impl IntoIterator<Item = (&'a str, &'a sea_orm::DatabaseConnection)>,
) -> anyhow::Result<Option<String>> {
    use futures::StreamExt as _;
    for config in slotcast_bus::stream_configs(1) {
        let stream = js
            .get_stream(&config.name)
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", config.name))?;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| anyhow::anyhow!("consumers of {}: {e}", config.name))?;
            if info.config.durable_name.is_some()
                && (info.num_pending > 0 || info.num_ack_pending > 0)
            {
                return Ok(Some(format!(
                    "consumer {} has {} pending, {} unacknowledged",
                    info.name, info.num_pending, info.num_ack_pending
                )));
            }
        }
    }
    for (name, db) in outboxes {
        let rows = slotcast_bus::outbox::unpublished(db).await?;
        if rows > 0 {
            return Ok(Some(format!("{name} has {rows} outbox rows unpublished")));
        }
    }
    Ok(None)
}
