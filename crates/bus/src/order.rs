//! The order stamp: each order key's events numbered 1, 2, 3… by the outbox that writes them.
//!
//! A producer's outbox gives every event with an order key ([`slotcast_events::Event::order_key`])
//! the next number of that key, in the transaction that writes the event: the counter row
//! (`outbox_order`) is locked until the transaction ends, so two transactions about one key are
//! numbered in the order they commit, and a transaction that rolls back leaves no gap. On
//! Postgres the numbers are given at commit, by a deferred trigger ([`StampAtCommit`]), so the
//! counter is the last lock a transaction takes and cannot close a cycle with the rows it
//! locked before; SQLite has one writer at a time and numbers them as they are written. The
//! relay sends the stamp as two headers ([`slotcast_events::order`]). A consumer that applies
//! events of many keys at once reads it back ([`OrderStamp::from_headers`]) and applies one
//! key's events strictly by number, whatever order, replica or redelivery brings them in.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, OnConflict, Query},
};
use sea_orm_migration::{prelude::*, schema::*};
use slotcast_events::order::{KEY_HEADER, SEQ_HEADER};
use uuid::Uuid;

use crate::encoded::EncodedRow;

/// An event's place among the events of its order key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderStamp {
    pub key: Uuid,
    /// 1 for the key's first event.
    pub seq: i64,
}

impl OrderStamp {
    /// The stamp a message carries, if it carries a whole and well-formed one.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Self> {
        let headers = headers?;
        let key = headers.get(KEY_HEADER)?.as_str().parse().ok()?;
        let seq = headers.get(SEQ_HEADER)?.as_str().parse().ok()?;
        (seq >= 1).then_some(Self { key, seq })
    }

    /// Adds the stamp's headers to `headers`.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(KEY_HEADER, self.key.to_string().as_str());
        headers.insert(SEQ_HEADER, self.seq.to_string().as_str());
    }
}

#[derive(DeriveIden)]
enum OutboxOrder {
    Table,
    Key,
    Last,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    OrderKey,
    OrderSeq,
}

/// Gives each row of `rows` that has an order key the next numbers of its key, in the order of
/// `rows`. Keys are counted in sorted order, so transactions about several keys lock their
/// counters in one order and never deadlock on them.
pub(crate) async fn stamp<C: ConnectionTrait>(
    conn: &C,
    rows: &mut [EncodedRow],
) -> Result<(), DbErr> {
    let mut counts: BTreeMap<Uuid, i64> = BTreeMap::new();
    for key in rows.iter().filter_map(|r| r.order_key) {
        *counts.entry(key).or_default() += 1;
    }
    for (key, n) in counts {
        let bump = Query::insert()
            .into_table(OutboxOrder::Table)
            .columns([OutboxOrder::Key, OutboxOrder::Last])
            .values_panic([key.into(), n.into()])
            .on_conflict(
                OnConflict::column(OutboxOrder::Key)
                    .value(
                        OutboxOrder::Last,
                        Expr::col((OutboxOrder::Table, OutboxOrder::Last))
                            .add(Expr::col((Alias::new("excluded"), OutboxOrder::Last))),
                    )
                    .to_owned(),
            )
            .returning_col(OutboxOrder::Last)
            .to_owned();
        let last: i64 = conn
            .query_one(&bump)
            .await?
            .ok_or_else(|| DbErr::Custom(format!("no order counter came back for {key}")))?
            .try_get("", "last")?;
        let numbered = rows.iter_mut().filter(|r| r.order_key == Some(key));
        for (seq, row) in (last - n + 1..).zip(numbered) {
            row.order_seq = Some(seq);
        }
    }
    Ok(())
}

/// The migration that adds the order stamp to the outbox (`order_key`, `order_seq`) and the
/// per-key counters (`outbox_order`); each service lists it after [`crate::outbox::CreateOutbox`].
pub struct AddOrderStamp;

impl MigrationName for AddOrderStamp {
    fn name(&self) -> &str {
        "m0000_add_outbox_order_stamp"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddOrderStamp {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        m.alter_table(
            Table::alter()
                .table(Outbox::Table)
                .add_column(uuid_null(Outbox::OrderKey))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Outbox::Table)
                .add_column(big_integer_null(Outbox::OrderSeq))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OutboxOrder::Table)
                .if_not_exists()
                .col(pk_uuid(OutboxOrder::Key))
                .col(big_integer(OutboxOrder::Last))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(OutboxOrder::Table).to_owned())
            .await?;
        for column in [Outbox::OrderSeq, Outbox::OrderKey] {
            m.alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The deferred trigger that numbers a Postgres transaction's stamped outbox rows at its commit,
/// in the order they were written; a no-op on SQLite.
pub struct StampAtCommit;

impl MigrationName for StampAtCommit {
    fn name(&self) -> &str {
        "m0000_stamp_outbox_order_at_commit"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for StampAtCommit {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION slotcast_stamp_outbox_order() RETURNS trigger \
             LANGUAGE plpgsql AS $$ \
             DECLARE n bigint; \
             BEGIN \
               INSERT INTO outbox_order (key, last) VALUES (NEW.order_key, 1) \
                 ON CONFLICT (key) DO UPDATE SET last = outbox_order.last + 1 \
                 RETURNING last INTO n; \
               UPDATE outbox SET order_seq = n WHERE seq = NEW.seq; \
               RETURN NULL; \
             END $$",
        )
        .await?;
        db.execute_unprepared("DROP TRIGGER IF EXISTS outbox_stamp_order ON outbox")
            .await?;
        db.execute_unprepared(
            "CREATE CONSTRAINT TRIGGER outbox_stamp_order AFTER INSERT ON outbox \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.order_key IS NOT NULL AND NEW.order_seq IS NULL) \
             EXECUTE FUNCTION slotcast_stamp_outbox_order()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS outbox_stamp_order ON outbox")
            .await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS slotcast_stamp_outbox_order()")
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_travels_in_two_headers_and_a_broken_one_reads_as_none() {
        let stamp = OrderStamp {
            key: Uuid::now_v7(),
            seq: 7,
        };
        let mut headers = HeaderMap::new();
        stamp.insert_into(&mut headers);
        assert_eq!(OrderStamp::from_headers(Some(&headers)), Some(stamp));
        assert_eq!(OrderStamp::from_headers(None), None);
        let mut no_seq = HeaderMap::new();
        no_seq.insert(KEY_HEADER, stamp.key.to_string().as_str());
        assert_eq!(OrderStamp::from_headers(Some(&no_seq)), None);
        let mut zero = HeaderMap::new();
        zero.insert(KEY_HEADER, stamp.key.to_string().as_str());
        zero.insert(SEQ_HEADER, "0");
        assert_eq!(OrderStamp::from_headers(Some(&zero)), None);
        let mut junk = HeaderMap::new();
        junk.insert(KEY_HEADER, "not-a-uuid");
        junk.insert(SEQ_HEADER, "3");
        assert_eq!(OrderStamp::from_headers(Some(&junk)), None);
    }
}
