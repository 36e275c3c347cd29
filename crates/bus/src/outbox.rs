//! The transactional outbox.
//!
//! A service writes each event into its own `outbox` table in the same transaction as the state
//! change ([`enqueue`]). The [`Relay`] publishes unsent rows in order, awaits JetStream's ack for
//! each, then marks them sent. If NATS or the process goes down in between, the rows stay and are
//! published again with the same `Nats-Msg-Id`, which the stream's duplicate window drops.
//!
//! On Postgres several replicas can run the relay. Each batch is claimed in a transaction with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so no two relays ever hold the same row, and the
//! transaction first takes a transaction-scoped advisory lock, so one relay at a time publishes:
//! two relays publishing disjoint batches at once could let a later event of a slot overtake an
//! earlier one in the stream, and consumers that keep a slot's state rely on the stream's order.
//! A relay that finds the lock taken leaves the rows to the one holding it. SQLite is
//! single-node.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
    sea_query::{Expr, LockBehavior, LockType},
};
use sea_orm_migration::{prelude::*, schema::*};
use slotcast_events::{CloudEvent, Event};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::JetStream;

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
    let payload = serde_json::to_string(event).map_err(|e| DbErr::Custom(e.to_string()))?;
    let trace = serde_json::to_string(&slotcast_kit::telemetry::current_context_headers())
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let row = ActiveModel {
        event_id: Set(event.id),
        subject: Set(T::SUBJECT.to_owned()),
        payload: Set(payload),
        trace: Set(trace),
        created_at: Set(Utc::now()),
        published_at: Set(None),
        ..Default::default()
    };
    Entity::insert(row)
        .on_conflict_do_nothing_on([Column::EventId])
        .exec_without_returning(conn)
        .await?;
    Ok(())
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
            batch: 256,
        }
    }

    /// Tells the relay there is something to publish.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes until `shutdown`; then publishes what it holds and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut last_purge = tokio::time::Instant::now();
        loop {
            match self.publish_pending().await {
                Ok(n) => {
                    failures = 0;
                    if n as u64 == self.batch {
                        continue;
                    }
                }
                Err(e) => {
                    failures += 1;
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
            let wait = if failures == 0 {
                POLL
            } else {
                POLL * 2u32.pow(Ord::min(failures, 4))
            };
            tokio::select! {
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(wait) => {},
                _ = shutdown.cancelled() => break,
            }
        }
        if let Err(e) = self.publish_pending().await {
            tracing::warn!(error = %format!("{e:#}"), "outbox left unpublished at shutdown; published at next start");
        }
    }

    /// Publishes one batch of unsent rows in order; returns how many were sent.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await?;
            let lock = Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({PUBLISHER_LOCK}) AS locked"),
            );
            let locked = match txn.query_one_raw(lock).await? {
                Some(row) => row.try_get::<bool>("", "locked")?,
                None => false,
            };
            if !locked {
                // Another replica is publishing; it will take these rows too.
                return Ok(0);
            }
            let n = self.publish_on(&txn).await?;
            txn.commit().await?;
            Ok(n)
        } else {
            self.publish_on(&self.db).await
        }
    }

    async fn publish_on<C: ConnectionTrait>(&self, conn: &C) -> anyhow::Result<usize> {
        let mut unsent = Entity::find()
            .filter(Column::PublishedAt.is_null())
            .order_by_asc(Column::Seq)
            .limit(self.batch);
        if conn.get_database_backend() == DbBackend::Postgres {
            unsent = unsent.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = unsent.all(conn).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Pipelined: send all, then await the acks in order.
        let mut acks = Vec::with_capacity(rows.len());
        for row in &rows {
            let trace: std::collections::HashMap<String, String> =
                serde_json::from_str(&row.trace).unwrap_or_default();
            let headers = crate::headers(&row.event_id.to_string(), &trace);
            let ack = self
                .js
                .publish_with_headers(
                    row.subject.clone(),
                    headers,
                    row.payload.clone().into_bytes().into(),
                )
                .await?;
            acks.push(ack);
        }
        let mut sent = Vec::with_capacity(rows.len());
        for (row, ack) in rows.iter().zip(acks) {
            match ack.await {
                Ok(_) => sent.push(row.seq),
                Err(e) => {
                    self.mark_sent(conn, &sent).await?;
                    return Err(anyhow::anyhow!(
                        "publish of outbox row {} not acknowledged: {e}",
                        row.seq
                    ));
                }
            }
        }
        self.mark_sent(conn, &sent).await?;
        metrics::counter!("slotcast_outbox_published_total").increment(sent.len() as u64);
        Ok(sent.len())
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
