//! The transactional outbox.
//!
//! A service writes each event into its own `outbox` table in the same transaction as the state
//! change ([`enqueue`], or [`enqueue_many`] for many events in one statement, or
//! [`enqueue_bundle`] for many events in one row, [`crate::bundle`]). The [`Relay`]
//! publishes unsent rows in order, awaits JetStream's ack for each, then marks them sent. If NATS
//! or the process goes down in between, the rows stay and are published again with the same
//! `Nats-Msg-Id`, which the stream's duplicate window drops.
//!
//! The relay overlaps batches: it publishes a batch (pipelined, in `seq` order, on one
//! connection), then reads and publishes the next while the first one's acks are on their way,
//! and only then awaits those acks (in order) and marks the rows sent. Every publish still leaves
//! in `seq` order from the one relay holding the lock, so the stream keeps the outbox's order; a
//! publish that is not acknowledged stops the turn, and it and every row after it (some perhaps
//! stored already) are published again on the next turn, the stored ones dropped as duplicates.
//!
//! On Postgres several replicas can run the relay. Each batch is claimed in a transaction with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so no two relays ever hold the same row, and the
//! transaction first takes a transaction-scoped advisory lock, so one relay at a time publishes:
//! two relays publishing disjoint batches at once could let a later event of a slot overtake an
//! earlier one in the stream, and consumers that keep a slot's state rely on the stream's order.
//! A relay that finds the lock taken leaves the rows to the one holding it. SQLite is
//! single-node.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, LockBehavior, LockType},
};
use sea_orm_migration::{prelude::*, schema::*};
use slotcast_events::{CloudEvent, Event};
use slotcast_kit::retry::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::JetStream;
pub use crate::encoded::{EncodedRow, encode_traced};

/// The outbox row.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub event_id: Uuid,
        pub subject: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        /// W3C trace-context headers as a JSON object.
        #[sea_orm(column_type = "Text")]
        pub trace: String,
        pub created_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
        /// The order stamp ([`crate::order`]), for events with an order key.
        pub order_key: Option<Uuid>,
        pub order_seq: Option<i64>,
        /// The number of events of a bundle row ([`crate::bundle`]); `None` for one event.
        pub bundled: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// The migration that creates the `outbox` table; each service lists it in its migrator.
pub struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m0000_create_outbox"
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    EventId,
    Subject,
    Payload,
    Trace,
    CreatedAt,
    PublishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Seq))
                    .col(uuid_uniq(Outbox::EventId))
                    .col(string(Outbox::Subject))
                    .col(text(Outbox::Payload))
                    .col(text(Outbox::Trace))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("outbox_unpublished")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}

/// Writes `event` to the outbox on `conn` (a transaction, normally). An event id that is already
/// there is ignored, so a producer that derives ids from content can enqueue twice safely.
pub async fn enqueue<C: ConnectionTrait, T: Event>(
    conn: &C,
    event: &CloudEvent<T>,
) -> Result<(), DbErr> {
    enqueue_many(conn, std::slice::from_ref(event)).await
}

/// Writes `events` to the outbox on `conn` (a transaction, normally), in their order, with
/// multi-row `INSERT … ON CONFLICT (event_id) DO NOTHING` statements (cut by [`crate::rows`]):
/// what [`enqueue`] does for each, in a few statements instead of one per event. Ids already
/// there are ignored. Every event carries the current span's trace context.
pub async fn enqueue_many<C: ConnectionTrait, T: Event>(
    conn: &C,
    events: &[CloudEvent<T>],
) -> Result<(), DbErr> {
    // No trace of their own: each carries the current span's (encoded once).
    let none = HashMap::new();
    let traced: Vec<(&CloudEvent<T>, &HashMap<String, String>)> =
        events.iter().map(|e| (e, &none)).collect();
    enqueue_traced(conn, &traced).await
}

/// Like [`enqueue_many`], each event with the trace context it continues (W3C headers, as
/// [`crate::consumer::Delivery::trace`] gives them); an empty one means the current span's.
/// What a batch handler uses, so that the event of each message continues that message's trace.
pub async fn enqueue_traced<C: ConnectionTrait, T: Event>(
    conn: &C,
    events: &[(&CloudEvent<T>, &HashMap<String, String>)],
) -> Result<(), DbErr> {
    let mut rows = encode_traced(events)?;
    if conn.get_database_backend() != DbBackend::Postgres {
        // Postgres numbers them at commit (`order::StampAtCommit`); SQLite has one writer.
        crate::order::stamp(conn, &mut rows).await?;
    }
    insert(conn, &rows).await
}

/// Writes `events`, each with the trace context it continues, as bundle rows
/// ([`crate::bundle`]): one row for many events, for a producer that writes many events in
/// one transaction and none with an order key. Ids are not checked against earlier rows: a
/// repeat is dropped by the stream's duplicate window and by the consumers' idempotence.
pub async fn enqueue_bundle<C: ConnectionTrait, T: Event>(
    conn: &C,
    events: &[(&CloudEvent<T>, &HashMap<String, String>)],
) -> Result<(), DbErr> {
    insert(conn, &crate::bundle::encode(events)?).await
}

/// Inserts encoded rows, a few to a statement ([`crate::rows`]); an event id already there is
/// ignored.
async fn insert<C: ConnectionTrait>(conn: &C, rows: &[EncodedRow]) -> Result<(), DbErr> {
    for chunk in crate::rows::chunks(rows, EncodedRow::size) {
        let models = chunk.iter().cloned().map(|r| ActiveModel {
            event_id: Set(r.event_id),
            subject: Set(r.subject.to_owned()),
            payload: Set(r.payload),
            trace: Set(r.trace),
            created_at: Set(r.created_at),
            published_at: Set(None),
            order_key: Set(r.order_key),
            order_seq: Set(r.order_seq),
            bundled: Set(r.bundled),
            ..Default::default()
        });
        Entity::insert_many(models)
            .on_conflict_do_nothing_on([Column::EventId])
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Postgres: one statement that runs the caller's data-modifying `change` and writes, into the
/// outbox, the event of each of `rows` whose key `change` returned (`RETURNING … AS key`): for
/// each row, the change and its event or neither, in one round trip and one commit. `change`
/// uses the parameters `$1` to `$n` of `values` (its `n` values); the rows' follow. Rows written
/// so carry no order key and are not bundles (see [`EncodedRow`]).
pub fn with_events(
    change: &str,
    mut values: Vec<sea_orm::Value>,
    rows: &[(uuid::Uuid, EncodedRow)],
) -> sea_orm::Statement {
    let mut tuples = Vec::with_capacity(rows.len());
    for (key, row) in rows {
        let n = values.len();
        tuples.push(format!(
            "(${}::uuid, ${}::uuid, ${}, ${}, ${}, ${}::timestamptz)",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
        values.extend([
            (*key).into(),
            row.event_id.into(),
            row.subject.into(),
            row.payload.clone().into(),
            row.trace.clone().into(),
            row.created_at.into(),
        ]);
    }
    let sql = format!(
        "WITH done AS ({change}) \
         INSERT INTO outbox (event_id, subject, payload, trace, created_at) \
         SELECT e.event_id, e.subject, e.payload, e.trace, e.created_at \
         FROM (VALUES {tuples}) AS e(key, event_id, subject, payload, trace, created_at) \
         JOIN done USING (key) \
         ON CONFLICT (event_id) DO NOTHING",
        tuples = tuples.join(", "),
    );
    sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values)
}

/// How many rows of the outbox on `conn` are not published yet.
pub async fn unpublished<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::PublishedAt.is_null())
        .count(conn)
        .await
}

/// Publishes the outbox. Cheap to clone; [`Relay::wake`] after a commit publishes at once,
/// otherwise it polls.
#[derive(Clone)]
pub struct Relay {
    db: DatabaseConnection,
    js: JetStream,
    wake: Arc<Notify>,
    batch: u64,
    /// Batches published in one turn (one transaction holding the publisher lock) at most.
    batches_per_turn: usize,
    /// How long a woken relay waits before its turn, so that events written meanwhile go in
    /// the same turn ([`Relay::with_linger`]).
    linger: Duration,
}

/// What one turn of the relay did.
#[derive(Debug, Default)]
struct Turn {
    /// Events published and marked.
    published: usize,
    /// The turn ended with rows left to publish (its last batch was full).
    more: bool,
}

/// A batch published and not yet settled: each row's `seq` and the acks of its events (one, or
/// a bundle's), in order.
struct Published {
    rows: Vec<(i64, Vec<async_nats::jetstream::context::PublishAckFuture>)>,
    /// Whether rows were left for the next batch (the batch was full).
    full: bool,
}

/// The advisory lock key of the outbox publisher (one per database; each service has its own).
const PUBLISHER_LOCK: i64 = 0x5107_ca57_0b0c;
/// Published rows are deleted after this long.
const KEEP_PUBLISHED: chrono::Duration = chrono::Duration::hours(24);
const POLL: Duration = Duration::from_millis(500);

impl Relay {
    pub fn new(db: DatabaseConnection, js: JetStream) -> Self {
        Self {
            db,
            js,
            wake: Arc::new(Notify::new()),
            batch: 1000,
            batches_per_turn: 10,
            linger: Duration::ZERO,
        }
    }

    /// A relay that, once woken, lets `linger` pass before it publishes, so that a service
    /// writing its events a few at a time (one group commit after another) publishes them in
    /// turns of many, each turn being a transaction, a read and an update. For events nobody
    /// waits for within milliseconds; the default is none.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Tells the relay there is something to publish.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes until `shutdown`; then publishes what it holds and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut retries = Backoff::new(POLL * 2, POLL * 16).attempts();
        let mut last_purge = tokio::time::Instant::now();
        loop {
            let mut wait = POLL;
            match self.turn().await {
                Ok(Turn { more: true, .. }) => {
                    retries.reset();
                    continue;
                }
                Ok(Turn { more: false, .. }) => retries.reset(),
                Err(e) => {
                    wait = retries.next_delay();
                    metrics::counter!("slotcast_outbox_publish_failures_total").increment(1);
                    tracing::warn!(error = %format!("{e:#}"), "outbox not published, will retry");
                }
            }
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = tokio::time::Instant::now();
                if let Err(e) = self.purge().await {
                    tracing::warn!(error = %e, "outbox purge failed");
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {
                    if !self.linger.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.linger) => {},
                            _ = shutdown.cancelled() => break,
                        }
                    }
                },
                _ = tokio::time::sleep(wait) => {},
                _ = shutdown.cancelled() => break,
            }
        }
        if let Err(e) = self.publish_pending().await {
            tracing::warn!(error = %format!("{e:#}"), "outbox left unpublished at shutdown; published at next start");
        }
    }

    /// Publishes unsent rows in order, a few batches overlapped (at most `batches_per_turn`);
    /// returns how many events were sent.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        self.turn().await.map(|t| t.published)
    }

    /// One turn of [`Relay::publish_pending`], and whether it stopped with rows left.
    async fn turn(&self) -> anyhow::Result<Turn> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await?;
            if !slotcast_kit::db::try_xact_lock(&txn, PUBLISHER_LOCK).await? {
                // Another replica is publishing; it will take these rows too.
                return Ok(Turn::default());
            }
            let (turn, failed) = self.publish_on(&txn).await;
            // What was acknowledged before a failure is kept marked.
            txn.commit().await?;
            failed.map_or(Ok(turn), Err)
        } else {
            let (turn, failed) = self.publish_on(&self.db).await;
            failed.map_or(Ok(turn), Err)
        }
    }

    /// One turn: reads a batch, publishes it, and while its acks are on their way reads and
    /// publishes the next; then awaits the first batch's acks in order and marks those rows
    /// sent. Returns what the turn did, and the error that ended it early.
    async fn publish_on<C: ConnectionTrait>(&self, conn: &C) -> (Turn, Option<anyhow::Error>) {
        let mut in_flight: std::collections::VecDeque<Published> = Default::default();
        let mut marked = 0;
        let mut after = i64::MIN;
        let mut failed = None;
        // Whether the last batch read left rows behind: a turn that ends so has more to do.
        let mut last_full = false;
        for _ in 0..self.batches_per_turn {
            let published = match self.publish_batch(conn, after).await {
                Ok(p) => p,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let Some(&(last, _)) = published.rows.last() else {
                break;
            };
            after = last;
            let full = published.full;
            last_full = full;
            in_flight.push_back(published);
            // Keep one batch's acks on their way while the next is read and published.
            if in_flight.len() > 1 {
                let oldest = in_flight.pop_front().expect("two batches in flight");
                match self.settle(conn, oldest).await {
                    Ok(n) => marked += n,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if !full {
                break;
            }
        }
        // After a failure the batches still in flight are left unmarked: published again on the
        // next turn, in order, and dropped by the stream as duplicates where they were stored.
        if failed.is_none() {
            while let Some(published) = in_flight.pop_front() {
                match self.settle(conn, published).await {
                    Ok(n) => marked += n,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        metrics::counter!("slotcast_outbox_published_total").increment(marked as u64);
        let turn = Turn {
            published: marked,
            more: failed.is_none() && last_full,
        };
        (turn, failed)
    }

    /// Claims the next unsent rows after `seq` `after` (`FOR UPDATE SKIP LOCKED` on Postgres),
    /// about `batch` events' worth (a bundle counts its events), and publishes their
    /// events pipelined, in order, without waiting for the acks. The rows' heads are read
    /// first, so that a run of bundles is never read whole into memory.
    async fn publish_batch<C: ConnectionTrait>(
        &self,
        conn: &C,
        after: i64,
    ) -> anyhow::Result<Published> {
        let mut heads = Entity::find()
            .select_only()
            .column(Column::Seq)
            .column(Column::Bundled)
            .filter(Column::PublishedAt.is_null())
            .filter(Column::Seq.gt(after))
            .order_by_asc(Column::Seq)
            .limit(self.batch);
        if conn.get_database_backend() == DbBackend::Postgres {
            heads = heads.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let heads: Vec<(i64, Option<i32>)> = heads.into_tuple().all(conn).await?;
        let mut weight = 0;
        let mut take = Vec::with_capacity(heads.len());
        for (seq, bundled) in &heads {
            if weight >= self.batch {
                break;
            }
            weight += bundled.map_or(1, |n| u64::from(n.unsigned_abs()));
            take.push(*seq);
        }
        let mut published = Published {
            rows: Vec::with_capacity(take.len()),
            full: heads.len() as u64 == self.batch || take.len() < heads.len(),
        };
        if take.is_empty() {
            return Ok(published);
        }
        let rows = Entity::find()
            .filter(Column::Seq.is_in(take))
            .order_by_asc(Column::Seq)
            .all(conn)
            .await?;
        for row in rows {
            let seq = row.seq;
            match self.publish_row(row).await {
                Ok(acks) => published.rows.push((seq, acks)),
                // Not sent: this row and the ones after it wait for the next turn. Those
                // before it are in flight and are settled as usual.
                Err(e) if !published.rows.is_empty() => {
                    tracing::warn!(seq, error = %e, "outbox row not published; the rest of the batch waits");
                    published.full = false;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(published)
    }

    /// Publishes the events of one row (one, or a bundle's), pipelined; the acks to await.
    async fn publish_row(
        &self,
        row: entity::Model,
    ) -> anyhow::Result<Vec<async_nats::jetstream::context::PublishAckFuture>> {
        let events = if row.bundled.is_some() {
            crate::bundle::decode(row.seq, &row.payload, &row.trace)
        } else {
            vec![crate::bundle::Bundled {
                event_id: row.event_id,
                trace: serde_json::from_str(&row.trace).unwrap_or_default(),
                payload: row.payload,
            }]
        };
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = crate::headers(&event.event_id.to_string(), &event.trace);
            if let (Some(key), Some(seq)) = (row.order_key, row.order_seq) {
                crate::order::OrderStamp { key, seq }.insert_into(&mut headers);
            }
            let payload = event.payload.into_bytes().into();
            acks.push(
                self.js
                    .publish_with_headers(row.subject.clone(), headers, payload)
                    .await?,
            );
        }
        Ok(acks)
    }

    /// Awaits a batch's acks in order and marks the rows whose events were all acknowledged,
    /// up to the first that was not (an error; the rows from it on stay unsent). Returns the
    /// events marked.
    async fn settle<C: ConnectionTrait>(
        &self,
        conn: &C,
        published: Published,
    ) -> anyhow::Result<usize> {
        let mut sent = Vec::with_capacity(published.rows.len());
        let mut events = 0;
        let mut failed = None;
        'rows: for (seq, acks) in published.rows {
            let n = acks.len();
            for ack in acks {
                if let Err(e) = ack.await {
                    failed = Some(anyhow::anyhow!(
                        "publish of outbox row {seq} not acknowledged: {e}"
                    ));
                    break 'rows;
                }
            }
            sent.push(seq);
            events += n;
        }
        self.mark_sent(conn, &sent).await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(events),
        }
    }

    async fn mark_sent<C: ConnectionTrait>(&self, conn: &C, seqs: &[i64]) -> Result<(), DbErr> {
        if seqs.is_empty() {
            return Ok(());
        }
        Entity::update_many()
            .col_expr(Column::PublishedAt, Expr::value(Utc::now()))
            .filter(Column::Seq.is_in(seqs.to_vec()))
            .exec(conn)
            .await?;
        Ok(())
    }

    async fn purge(&self) -> Result<(), DbErr> {
        Entity::delete_many()
            .filter(Column::PublishedAt.lt(Utc::now() - KEEP_PUBLISHED))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
