//! Many practitioners at once (issue 14, concurrent matching replicas): clinics whose patients
//! wait on one or two practitioners, their slots posted, withdrawn, booked and released through
//! a [`Scheduling`] handle that runs beside the faults, and what each patient was told, checked
//! slot by slot ([`Due`]) instead of by count.
//!
//! The checks hold whatever the design of matching, since they look only at what leaves it (the
//! `notify.patient` stream, emails, feeds), at its staff view of a slot, and at its consumers.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    time::Duration,
};

use anyhow::{Context as _, ensure};
use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use slotcast_events::streams;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{Report, Service, System};

/// The durable consumers of matching on the scheduling stream are named from this.
const MATCHING_DURABLE: &str = "matching";

/// A waiting-list entry as a case wants it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub patient: Uuid,
    pub practitioner: Uuid,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
}

impl Entry {
    /// Whether `slot` fits the entry (its practitioner, inside its window).
    pub fn fits(&self, slot: &Slot) -> bool {
        slot.practitioner == self.practitioner
            && self.earliest.is_none_or(|e| slot.starts_at >= e)
            && self.latest.is_none_or(|l| slot.ends_at <= l)
    }
}

/// A slot a case posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub id: Uuid,
    pub practitioner: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The practitioners, patients and waiting-list entries of a case.
#[derive(Debug, Clone, Default)]
pub struct Clinics {
    pub practitioners: Vec<Uuid>,
    /// Each patient's id and email address.
    pub patients: Vec<(Uuid, String)>,
    pub entries: Vec<Entry>,
}

/// What one patient was due: each slot of `must` once, each of `may` once or never.
#[derive(Debug, Clone)]
pub struct Due {
    pub patient: Uuid,
    pub email: String,
    pub must: BTreeSet<Uuid>,
    pub may: BTreeSet<Uuid>,
}

impl Clinics {
    /// What every patient is due of `slots`: each slot that fits one of their entries, once if
    /// it is `open` at the end (never withdrawn, or released again), else at most once (it may
    /// have been withdrawn before or after matching decided it).
    pub fn due(&self, slots: &[Slot], open: &BTreeSet<Uuid>) -> Vec<Due> {
        self.patients
            .iter()
            .map(|(patient, email)| {
                let fitting: BTreeSet<Uuid> = slots
                    .iter()
                    .filter(|s| {
                        self.entries
                            .iter()
                            .any(|e| e.patient == *patient && e.fits(s))
                    })
                    .map(|s| s.id)
                    .collect();
                let (must, may) = fitting.into_iter().partition(|s| open.contains(s));
                Due {
                    patient: *patient,
                    email: email.clone(),
                    must,
                    may,
                }
            })
            .collect()
    }
}

/// Scheduling's API as staff, owned, so a case posts from spawned tasks while it kills.
#[derive(Clone)]
pub struct Scheduling {
    http: reqwest::Client,
    url: String,
    staff: String,
}

impl Scheduling {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.staff);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.with_context(|| path.to_owned())?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    async fn create(&self, path: &str, body: Value) -> anyhow::Result<Uuid> {
        let (status, body) = self.send(reqwest::Method::POST, path, Some(body)).await?;
        ensure!(status == 201, "POST {path}: {status} {body}");
        Ok(body["id"].as_str().context("no id")?.parse()?)
    }

    /// Posts one 20-minute slot (a request, and an opening, of its own).
    pub async fn post_slot_at(
        &self,
        practitioner: Uuid,
        starts_at: DateTime<Utc>,
    ) -> anyhow::Result<Slot> {
        let ends_at = starts_at + chrono::Duration::minutes(20);
        let path = format!("/v1/practitioners/{practitioner}/slots");
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &path,
                Some(json!({"slots": [{"starts_at": starts_at, "ends_at": ends_at}]})),
            )
            .await?;
        ensure!(status == 201, "POST {path}: {status} {body}");
        Ok(Slot {
            id: body["slots"][0]["id"]
                .as_str()
                .context("no slot id")?
                .parse()?,
            practitioner,
            starts_at,
            ends_at,
        })
    }

    /// Withdraws an unbooked slot.
    pub async fn withdraw(&self, slot: Uuid) -> anyhow::Result<()> {
        let path = format!("/v1/slots/{slot}");
        let (status, body) = self.send(reqwest::Method::DELETE, &path, None).await?;
        ensure!(status == 204, "DELETE {path}: {status} {body}");
        Ok(())
    }

    /// Books `slot` for `patient`; returns the appointment.
    pub async fn book(&self, patient: Uuid, slot: Uuid) -> anyhow::Result<Uuid> {
        self.create(
            "/v1/appointments",
            json!({"patient_id": patient, "slot_id": slot}),
        )
        .await
    }

    /// Cancels an appointment: its slot is released to the waiting list.
    pub async fn cancel(&self, appointment: Uuid) -> anyhow::Result<()> {
        let path = format!("/v1/appointments/{appointment}/cancel");
        let (status, body) = self.send(reqwest::Method::POST, &path, None).await?;
        ensure!(status == 200, "POST {path}: {status} {body}");
        Ok(())
    }
}

impl System {
    /// A handle on scheduling's API that does not borrow the system.
    pub fn scheduling_api(&self) -> Scheduling {
        Scheduling {
            http: self.http.clone(),
            url: self.scheduling(),
            staff: self.staff.clone(),
        }
    }

    /// `n` practitioners offering openings by `offer_policy`.
    pub async fn add_practitioners(
        &self,
        n: usize,
        offer_policy: &str,
    ) -> anyhow::Result<Vec<Uuid>> {
        let api = self.scheduling_api();
        futures::stream::iter(0..n)
            .map(|i| {
                let api = api.clone();
                async move {
                    api.create(
                        "/v1/practitioners",
                        json!({"name": format!("Dr Chaos {i}"), "specialty": "General practice", "timezone": "UTC", "offer_policy": offer_policy}),
                    )
                    .await
                }
            })
            .buffered(16)
            .try_collect()
            .await
    }

    /// `n` patients (ids and email addresses), on no waiting list yet.
    pub async fn add_patients(&self, n: usize) -> anyhow::Result<Vec<(Uuid, String)>> {
        let api = self.scheduling_api();
        let run = &Uuid::new_v4().simple().to_string()[..8];
        futures::stream::iter(0..n)
            .map(|i| {
                let api = api.clone();
                async move {
                    let email = format!("patient-{i}-{run}@patients.example");
                    let id = api
                        .create(
                            "/v1/patients",
                            json!({"name": format!("Patient {i}"), "email": email}),
                        )
                        .await?;
                    anyhow::Ok((id, email))
                }
            })
            .buffered(16)
            .try_collect()
            .await
    }

    /// Puts every entry on its practitioner's waiting list (`new`, within its window).
    pub async fn join(&self, entries: &[Entry]) -> anyhow::Result<()> {
        let api = self.scheduling_api();
        futures::stream::iter(entries)
            .map(|e| {
                let api = api.clone();
                async move {
                    api.create(
                        "/v1/waitlist",
                        json!({
                            "patient_id": e.patient,
                            "practitioner_id": e.practitioner,
                            "kind": "new",
                            "earliest": e.earliest,
                            "latest": e.latest,
                        }),
                    )
                    .await
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Polls `probe` until it returns something (or `within` passes, naming `what`).
    pub async fn wait_until<T, F, Fut>(
        &self,
        within: Duration,
        what: &str,
        mut probe: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = probe().await? {
                return Ok(found);
            }
            ensure!(
                Instant::now() < deadline,
                "never {what} within {within:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether nothing is in flight right now: no message unacknowledged or pending, no outbox
    /// row unpublished, no offer or opening waiting to be sent.
    pub async fn calm(&self) -> anyhow::Result<bool> {
        Ok(self.busy().await?.is_none())
    }

    /// Matching's durable consumers on the scheduling stream (however many the design has).
    async fn matching_consumers(
        &self,
    ) -> anyhow::Result<Vec<async_nats::jetstream::consumer::Info>> {
        let stream = self
            .js
            .get_stream(streams::SCHEDULING)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut consumers = stream.consumers();
        let mut found = Vec::new();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| anyhow::anyhow!("{e}"))?;
            if info.name.starts_with(MATCHING_DURABLE) {
                found.push(info);
            }
        }
        ensure!(
            !found.is_empty(),
            "matching has no consumer on {}",
            streams::SCHEDULING
        );
        Ok(found)
    }

    /// Scheduling events matching has not acknowledged yet (pending or in a replica's hands).
    pub async fn matching_backlog(&self) -> anyhow::Result<u64> {
        Ok(self
            .matching_consumers()
            .await?
            .iter()
            .map(|c| c.num_pending + c.num_ack_pending as u64)
            .sum())
    }

    /// Scheduling events delivered to matching more than once (redelivered after a crash's
    /// `ack_wait`, or handed back): deliveries beyond the messages each consumer has been
    /// given, since a consumer gives new messages in stream order. Exact once settled.
    pub async fn matching_redeliveries(&self) -> anyhow::Result<u64> {
        let stream = self
            .js
            .get_stream(streams::SCHEDULING)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = self.stream_info(streams::SCHEDULING).await?.state;
        let mut total = 0;
        for c in self.matching_consumers().await? {
            let filter = &c.config.filter_subject;
            let given = if filter.is_empty() || filter == streams::SCHEDULING_SUBJECTS {
                c.delivered
                    .stream_sequence
                    .saturating_sub(state.first_sequence)
                    + 1
            } else {
                // A consumer of part of the stream: once it has nothing pending, it was given
                // every message of its subjects.
                let mut n = 0;
                let mut subjects = stream
                    .info_with_subjects(filter)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                while let Some(s) = subjects.next().await {
                    n += s.map_err(|e| anyhow::anyhow!("{e}"))?.1 as u64;
                }
                n.saturating_sub(c.num_pending)
            };
            total += c.delivered.consumer_sequence.saturating_sub(given);
        }
        Ok(total)
    }

    /// Every slot of `practitioners` and its status, as scheduling (the source of truth) has it.
    pub async fn slot_statuses(
        &self,
        practitioners: &[Uuid],
    ) -> anyhow::Result<BTreeMap<Uuid, String>> {
        let api = self.scheduling_api();
        let mut statuses = BTreeMap::new();
        for p in practitioners {
            let path = format!("/v1/practitioners/{p}/slots");
            let (status, body) = api.send(reqwest::Method::GET, &path, None).await?;
            ensure!(status == 200, "GET {path}: {status} {body}");
            for s in body["slots"].as_array().into_iter().flatten() {
                let id = s["id"].as_str().context("no slot id")?.parse()?;
                let status = s["status"].as_str().context("no status")?.to_owned();
                statuses.insert(id, status);
            }
        }
        Ok(statuses)
    }

    /// Slots whose status in matching's staff view (`GET /v1/slots/{id}/offers`) is not
    /// scheduling's: an event of a practitioner applied out of order (a withdrawal before the
    /// slot's creation, a booking after its release) leaves one behind.
    pub async fn matching_disagrees(
        &self,
        statuses: &BTreeMap<Uuid, String>,
    ) -> anyhow::Result<Vec<String>> {
        let url = &self.proc_url(Service::Matching, 0);
        let staff = &self.staff;
        let views: Vec<(Uuid, String, Option<String>)> = futures::stream::iter(statuses)
            .map(|(id, status)| async move {
                let res = self
                    .http
                    .get(format!("{url}/v1/slots/{id}/offers"))
                    .bearer_auth(staff)
                    .send()
                    .await?;
                let seen = match res.status().as_u16() {
                    404 => None,
                    200 => res.json::<Value>().await?["status"]
                        .as_str()
                        .map(str::to_owned),
                    other => anyhow::bail!("offers of slot {id}: {other}"),
                };
                anyhow::Ok((*id, status.clone(), seen))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(views
            .into_iter()
            .filter(|(_, status, seen)| {
                let expected = match status.as_str() {
                    "available" => "open",
                    other => other,
                };
                seen.as_deref() != Some(expected)
            })
            .map(|(id, status, seen)| format!("slot {id}: scheduling {status}, matching {seen:?}"))
            .collect())
    }

    /// Who was told about each slot in each wave (the `wave` of their `notify.patient`).
    pub async fn told_by_wave(&self) -> anyhow::Result<BTreeMap<Uuid, BTreeMap<u32, Vec<Uuid>>>> {
        let mut waves: BTreeMap<Uuid, BTreeMap<u32, Vec<Uuid>>> = BTreeMap::new();
        for (_, event) in self.notify_events().await? {
            for s in &event.slots {
                waves
                    .entry(s.slot_id)
                    .or_default()
                    .entry(event.wave.unwrap_or(0))
                    .or_default()
                    .push(event.patient.id);
            }
        }
        Ok(waves)
    }

    /// Each waiting patient's place (1 is first) in `practitioner`'s fair order, as
    /// scheduling shows it.
    pub async fn positions(&self, practitioner: Uuid) -> anyhow::Result<BTreeMap<Uuid, u32>> {
        let path = format!("/v1/waitlist?practitioner_id={practitioner}");
        let (status, body) = self
            .scheduling_api()
            .send(reqwest::Method::GET, &path, None)
            .await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        body["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let patient = e["patient_id"].as_str().context("no patient")?.parse()?;
                let position = e["position"].as_u64().context("no position")?;
                Ok((patient, u32::try_from(position)?))
            })
            .collect()
    }

    /// Counts what each patient got against what they were `due`, on every channel.
    pub async fn verify_due(&self, due: &[Due]) -> anyhow::Result<Report> {
        let mut report = Report {
            patients: due.len(),
            due_offers: due.iter().map(|d| d.must.len()).sum(),
            ..Report::default()
        };
        let mut mailed: BTreeMap<String, Vec<BTreeSet<Uuid>>> = BTreeMap::new();
        for mail in self
            .smtp
            .messages()
            .iter()
            .filter(|m| !crate::is_confirmation(m))
        {
            let slots = crate::booked_slots(&mail.body_text());
            for to in &mail.to {
                mailed
                    .entry(to.to_lowercase())
                    .or_default()
                    .push(slots.clone());
            }
        }
        let feeds: Vec<Vec<BTreeSet<Uuid>>> = futures::stream::iter(due)
            .map(|d| self.feed(d.patient))
            .buffered(16)
            .try_collect()
            .await?;
        let mut told = self.notified().await?;
        for (d, feed) in due.iter().zip(feeds) {
            let emails = mailed.remove(&d.email.to_lowercase()).unwrap_or_default();
            report.email.add_sets(&emails, &d.must, &d.may);
            report.inapp.add_sets(&feed, &d.must, &d.may);
            let told = told.remove(&d.patient).unwrap_or_default();
            report.notify.add_sets(&told, &d.must, &d.may);
        }
        // Anyone told who was not waiting at all (the bookers, say) is told about nothing due.
        for messages in told.values() {
            report
                .notify
                .add_sets(messages, &BTreeSet::new(), &BTreeSet::new());
        }
        report.dead_letters = self.stream_messages(streams::DEADLETTER).await?;
        report.resent_after_unknown = self
            .metric(
                Service::EmailNotifier,
                "slotcast_email_resend_after_unknown_total",
            )
            .await? as u64;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + hours * 3600, 0).unwrap_or_default()
    }

    #[test]
    fn a_patient_is_due_the_fitting_slots_once_and_the_withdrawn_ones_at_most_once() {
        let (d1, d2, p, q) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let slot = |practitioner, hours| Slot {
            id: Uuid::now_v7(),
            practitioner,
            starts_at: at(hours),
            ends_at: at(hours) + chrono::Duration::minutes(20),
        };
        let (a, b, w, other) = (slot(d1, 0), slot(d1, 5), slot(d1, 1), slot(d2, 0));
        let clinics = Clinics {
            practitioners: vec![d1, d2],
            patients: vec![(p, "p@x".to_owned()), (q, "q@x".to_owned())],
            entries: vec![
                Entry {
                    patient: p,
                    practitioner: d1,
                    earliest: None,
                    latest: None,
                },
                // Only up to the second hour: `b` is outside the window.
                Entry {
                    patient: q,
                    practitioner: d1,
                    earliest: Some(at(0)),
                    latest: Some(at(2)),
                },
            ],
        };
        let open = BTreeSet::from([a.id, b.id, other.id]);
        let due = clinics.due(&[a, b, w, other], &open);
        assert_eq!(due[0].must, BTreeSet::from([a.id, b.id]));
        assert_eq!(due[0].may, BTreeSet::from([w.id]));
        assert_eq!(due[1].must, BTreeSet::from([a.id]));
        assert_eq!(due[1].may, BTreeSet::from([w.id]));
    }

    #[test]
    fn a_tally_by_sets_counts_missing_unexpected_and_twice() {
        let (a, b, w, x) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let (must, may) = (BTreeSet::from([a, b]), BTreeSet::from([w]));
        let mut tally = crate::Tally::default();
        // `a` twice in two messages, `w` once (allowed), `x` never due, `b` missing.
        tally.add_sets(
            &[
                BTreeSet::from([a]),
                BTreeSet::from([a, w]),
                BTreeSet::from([x]),
            ],
            &must,
            &may,
        );
        assert_eq!(
            (
                tally.told_twice,
                tally.missing,
                tally.unexpected,
                tally.duplicates
            ),
            (1, 1, 1, 0)
        );
    }
}
