//! The loop the dispatcher and the wave runner run: a pass, then a wait until something is
//! woken, due or a tick has passed, with backoff after a failure.

use std::{future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use slotcast_kit::retry::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Wakes the dispatcher and the wave runner early (a decision was committed); they also tick.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    pub dispatch: Arc<Notify>,
    pub waves: Arc<Notify>,
}

/// Runs `pass` until `shutdown`: again at once after a full pass (`full` items), else when
/// `wake` fires, when the next item falls due (`next_due`, so a coalescing window ends when it
/// says, not up to a tick later) or when `tick` has passed, whichever is first (the tick also
/// catches what another replica decided). After a failure (counted in `failures_metric`) the
/// pause doubles, up to 32 ticks. The dispatcher and the wave runner are such loops.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_passes<F, Fut, N, NFut>(
    what: &'static str,
    failures_metric: &'static str,
    wake: &Notify,
    tick: Duration,
    full: usize,
    shutdown: CancellationToken,
    mut pass: F,
    next_due: N,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, DbErr>>,
    N: Fn() -> NFut,
    NFut: Future<Output = Result<Option<DateTime<Utc>>, DbErr>>,
{
    let mut retries = Backoff::new(tick * 2, tick * 32).attempts();
    loop {
        let mut wait = tick;
        let started = Utc::now();
        match pass().await {
            Ok(n) if n == full => {
                retries.reset();
                continue;
            }
            Ok(_) => {
                retries.reset();
                match next_due().await {
                    Ok(Some(due)) => wait = until(due, started, Utc::now(), tick),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "{what}: finding when the next is due failed")
                    }
                }
            }
            Err(e) => {
                metrics::counter!(failures_metric).increment(1);
                tracing::warn!(error = %e, "{what} failed, will retry");
                wait = retries.next_delay();
            }
        }
        tokio::select! {
            _ = wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
            _ = shutdown.cancelled() => break,
        }
    }
}

/// How long to wait for what falls due at `due`, the last pass having started at `started`:
/// until then and a millisecond more (so the pass finds it due; at once if it fell due since
/// the pass), at most `tick`. Something that was due when the pass started and that it did not
/// take is another replica's to send (it holds the lock) or was decided since, which wakes the
/// loop anyway: the wait is then a tick, not a spin.
fn until(
    due: DateTime<Utc>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    tick: Duration,
) -> Duration {
    if due <= started {
        return tick;
    }
    let left = (due - now).to_std().unwrap_or_default();
    (left + Duration::from_millis(1)).min(tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_next_is_due_at_most_a_tick() {
        let now = Utc::now();
        let started = now - chrono::Duration::milliseconds(5);
        let tick = Duration::from_millis(200);
        let at = |ms| now + chrono::Duration::milliseconds(ms);
        assert_eq!(until(at(50), started, now, tick), Duration::from_millis(51));
        assert_eq!(until(at(5_000), started, now, tick), tick);
        // Fell due after the pass started: at once.
        assert_eq!(until(at(-2), started, now, tick), Duration::from_millis(1));
        // Already due when the pass started and not taken: another replica's, or a wake is on
        // its way.
        assert_eq!(until(at(-5), started, now, tick), tick);
        assert_eq!(until(at(-30), started, now, tick), tick);
    }
}
