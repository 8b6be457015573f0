//! `purge`: deletes the streams of a benchmark prefix, quietly (there may be nothing to delete).

/// Deletes every stream of `prefix` that exists. Never fails: NATS unreachable or a stream
/// missing leaves nothing to purge.
pub async fn streams(nats: &str, prefix: &str) -> anyhow::Result<()> {
    let Ok(client) = switchyard_chassis::async_nats::connect(nats).await else {
        return Ok(());
    };
    let js = switchyard_chassis::async_nats::jetstream::new(client);
    let names = switchyard_chassis::bus::Names::new(prefix);
    for kind in switchyard_chassis::bus::StreamKind::ALL {
        let _ = js.delete_stream(names.stream(kind)).await;
    }
    Ok(())
}
