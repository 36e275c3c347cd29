//! Group commit: the small writes of many concurrent sends joined into one statement or
//! transaction.
//!
//! A caller [`submit`](GroupCommit::submit)s its item and waits. One caller at a time is the
//! leader: it takes every item queued so far (its own and those that came while the previous
//! group was being written), writes them with one call of `write`, and hands each caller its
//! answer. So under load a write carries as many items as arrived during the last one, and alone
//! a caller writes at once, without waiting for company.

use std::sync::Mutex;

use sea_orm::DbErr;
use tokio::sync::oneshot;

type Waiting<I, O> = Vec<(I, oneshot::Sender<Result<O, DbErr>>)>;

/// Items of type `I` written in groups, each answered with an `O`.
pub struct GroupCommit<I, O> {
    queue: Mutex<Waiting<I, O>>,
    /// Held by the leader while it writes: one group at a time.
    turn: tokio::sync::Mutex<()>,
}

impl<I, O> Default for GroupCommit<I, O> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<I, O> GroupCommit<I, O> {
    /// Writes `item` with whatever else is queued, and returns its answer. `write` gets the
    /// items of the group and returns one answer per item, in their order; an error is every
    /// item's answer.
    pub async fn submit<F, Fut>(&self, item: I, write: F) -> Result<O, DbErr>
    where
        F: FnOnce(Vec<I>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, DbErr>>,
    {
        let (answer, mut answered) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((item, answer));
        let turn = self.turn.lock().await;
        // An earlier leader may have written ours with its group.
        if let Ok(result) = answered.try_recv() {
            return result;
        }
        // Only a leader takes from the queue, and it answers before giving up its turn: ours is
        // still queued.
        let group = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let (items, answers): (Vec<I>, Vec<_>) = group.into_iter().unzip();
        let expected = items.len();
        match write(items).await {
            Ok(results) if results.len() == expected => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(Ok(result));
                }
            }
            Ok(results) => {
                let err = DbErr::Custom(format!(
                    "a group of {expected} was answered with {} results",
                    results.len()
                ));
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
            Err(err) => {
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
        drop(turn);
        answered
            .await
            .unwrap_or_else(|_| Err(DbErr::Custom("the group write was abandoned".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    #[tokio::test]
    async fn concurrent_items_share_writes_and_each_gets_its_own_answer() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::default();
        let writes = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50u32 {
            let (group, writes) = (group.clone(), writes.clone());
            tasks.spawn(async move {
                let answer = group
                    .submit(i, |items| async move {
                        writes.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok(items.into_iter().map(|i| i * 10).collect())
                    })
                    .await
                    .unwrap();
                assert_eq!(answer, i * 10);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert!(writes.load(Ordering::SeqCst) <= 50);
    }

    #[tokio::test]
    async fn a_failed_write_is_every_items_answer() {
        let group: GroupCommit<u32, ()> = GroupCommit::default();
        let answer = group
            .submit(1, |_| async { Err(DbErr::Custom("down".to_owned())) })
            .await;
        assert!(matches!(answer, Err(DbErr::Custom(m)) if m == "down"));
    }
}
