//! Who fits which slot: the pure rules, without I/O.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use slotcast_events::{Priority, WaitKind};
use uuid::Uuid;

use crate::vocabulary::Reason;

/// A slot of an opening, as matching sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSlot {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The patient who just gave it up: never offered back to them.
    pub released_by: Option<Uuid>,
}

/// An active waiting-list entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub kind: WaitKind,
    pub held_starts_at: Option<DateTime<Utc>>,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
    pub priority: Priority,
}

impl Waiting {
    /// Whether `slot` is what this entry asked for.
    pub fn fits(&self, slot: &OpenSlot) -> bool {
        self.why_not(slot).is_none()
    }

    /// Why `slot` is not what this entry asked for: they just released it, it is outside
    /// their window (before `earliest` or ending after `latest`), or it is a move-up to a time
    /// not before the appointment they hold. `None` when it fits.
    pub fn why_not(&self, slot: &OpenSlot) -> Option<Reason> {
        if slot.released_by == Some(self.patient_id) {
            return Some(Reason::GaveItUp);
        }
        if self.earliest.is_some_and(|e| slot.starts_at < e)
            || self.latest.is_some_and(|l| slot.ends_at > l)
        {
            return Some(Reason::OutsideWindow);
        }
        match self.kind {
            WaitKind::New => None,
            // Only a slot that starts before the appointment they hold is a move up.
            WaitKind::MoveUp => match self.held_starts_at {
                Some(held) if slot.starts_at < held => None,
                _ => Some(Reason::NotEarlier),
            },
        }
    }

    /// The fair order: urgent before routine, then longest waiting first (the entry id breaks
    /// ties, so the order is total and the same on every replica).
    pub fn order_key(&self) -> (Priority, DateTime<Utc>, Uuid) {
        (self.priority, self.joined_at, self.entry_id)
    }
}

/// How long a wave holds slots starting at `first_start`: a twelfth of the time left before
/// the slot (minutes for a slot later today, hours for one weeks away), within `[min, max]`,
/// and never more than half the time left, so the last waves still have time to book.
pub fn hold_for(
    now: DateTime<Utc>,
    first_start: DateTime<Utc>,
    min: chrono::Duration,
    max: chrono::Duration,
) -> chrono::Duration {
    let left = first_start - now;
    (left / 12).clamp(min, max.max(min)).min(left / 2)
}

/// One patient's share of an opening: the entry that asked, and the slots to tell them about.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub patient_id: Uuid,
    pub entry_id: Uuid,
    pub reason: WaitKind,
    pub slots: Vec<OpenSlot>,
}

/// Decides who is told about which slots of one opening: every patient with a fitting entry,
/// once, listing every fitting slot they were not told about before (`told` holds
/// `(slot, patient)` pairs already told or about to be). Decisions are in the fair order
/// ([`Waiting::order_key`]), a patient at the place of their first entry.
pub fn decide(
    slots: &[OpenSlot],
    waiting: &[Waiting],
    told: &HashSet<(Uuid, Uuid)>,
) -> Vec<Decision> {
    let mut ordered: Vec<&Waiting> = waiting.iter().collect();
    ordered.sort_by_key(|w| w.order_key());
    let mut by_patient: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut decisions: Vec<Decision> = Vec::new();
    for w in ordered {
        let fitting: Vec<OpenSlot> = slots
            .iter()
            .filter(|s| w.fits(s) && !told.contains(&(s.id, w.patient_id)))
            .cloned()
            .collect();
        if fitting.is_empty() {
            continue;
        }
        match by_patient.get(&w.patient_id) {
            // A second entry of the same patient adds its slots to the same message.
            Some(&i) => {
                for s in fitting {
                    if !decisions[i].slots.iter().any(|x| x.id == s.id) {
                        decisions[i].slots.push(s);
                    }
                }
            }
            None => {
                by_patient.insert(w.patient_id, decisions.len());
                decisions.push(Decision {
                    patient_id: w.patient_id,
                    entry_id: w.entry_id,
                    reason: w.kind,
                    slots: fitting,
                });
            }
        }
    }
    for d in &mut decisions {
        d.slots.sort_by_key(|s| (s.starts_at, s.id));
    }
    decisions
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn slot(h: i64) -> OpenSlot {
        let starts_at = Utc::now() + Duration::hours(h);
        OpenSlot {
            id: Uuid::now_v7(),
            starts_at,
            ends_at: starts_at + Duration::minutes(30),
            released_by: None,
        }
    }

    fn waiting(kind: WaitKind) -> Waiting {
        Waiting {
            entry_id: Uuid::now_v7(),
            patient_id: Uuid::now_v7(),
            kind,
            held_starts_at: None,
            earliest: None,
            latest: None,
            joined_at: Utc::now(),
            priority: Priority::Routine,
        }
    }

    #[test]
    fn urgent_entries_come_first_then_longest_waiting() {
        let s = slot(5);
        let old = Waiting {
            joined_at: Utc::now() - Duration::days(30),
            ..waiting(WaitKind::New)
        };
        let recent = waiting(WaitKind::New);
        let urgent = Waiting {
            priority: Priority::Urgent,
            ..waiting(WaitKind::New)
        };
        let order: Vec<Uuid> = decide(
            std::slice::from_ref(&s),
            &[recent.clone(), old.clone(), urgent.clone()],
            &HashSet::new(),
        )
        .into_iter()
        .map(|d| d.patient_id)
        .collect();
        assert_eq!(
            order,
            [urgent.patient_id, old.patient_id, recent.patient_id]
        );
    }

    #[test]
    fn a_hold_is_minutes_for_today_and_hours_for_weeks_away_within_bounds() {
        let now = Utc::now();
        let (min, max) = (Duration::minutes(5), Duration::hours(4));
        assert_eq!(
            hold_for(now, now + Duration::hours(3), min, max),
            Duration::minutes(15)
        );
        assert_eq!(hold_for(now, now + Duration::weeks(3), min, max), max);
        assert_eq!(hold_for(now, now + Duration::minutes(30), min, max), min);
        // Never more than half the time left.
        assert_eq!(
            hold_for(now, now + Duration::minutes(6), min, max),
            Duration::minutes(3)
        );
    }

    #[test]
    fn why_a_slot_does_not_fit_is_named() {
        let w = Waiting {
            earliest: Some(Utc::now() + Duration::hours(5)),
            ..waiting(WaitKind::New)
        };
        assert_eq!(w.why_not(&slot(1)), Some(Reason::OutsideWindow));
        assert_eq!(w.why_not(&slot(6)), None);
        let m = Waiting {
            held_starts_at: Some(Utc::now() + Duration::hours(3)),
            ..waiting(WaitKind::MoveUp)
        };
        assert_eq!(m.why_not(&slot(4)), Some(Reason::NotEarlier));
    }

    #[test]
    fn a_new_entry_without_window_fits_every_slot() {
        let w = waiting(WaitKind::New);
        assert!(w.fits(&slot(1)) && w.fits(&slot(100)));
    }

    #[test]
    fn a_slot_outside_the_window_does_not_fit() {
        let (early, inside, late) = (slot(1), slot(10), slot(30));
        let w = Waiting {
            earliest: Some(Utc::now() + Duration::hours(5)),
            latest: Some(Utc::now() + Duration::hours(20)),
            ..waiting(WaitKind::New)
        };
        assert!(!w.fits(&early) && w.fits(&inside) && !w.fits(&late));
    }

    #[test]
    fn a_move_up_fits_only_slots_before_the_appointment_held() {
        let w = Waiting {
            held_starts_at: Some(Utc::now() + Duration::hours(10)),
            ..waiting(WaitKind::MoveUp)
        };
        assert!(w.fits(&slot(5)));
        assert!(!w.fits(&slot(10)));
        assert!(!w.fits(&slot(20)));
        let unknown = Waiting {
            held_starts_at: None,
            ..w
        };
        assert!(!unknown.fits(&slot(1)));
    }

    #[test]
    fn a_released_slot_is_not_offered_back_to_who_released_it() {
        let w = waiting(WaitKind::New);
        let s = OpenSlot {
            released_by: Some(w.patient_id),
            ..slot(3)
        };
        assert!(!w.fits(&s));
    }

    #[test]
    fn each_patient_gets_one_decision_listing_every_fitting_slot_not_told_before() {
        let (a, b, c) = (slot(1), slot(2), slot(3));
        let p = waiting(WaitKind::New);
        let second_entry = Waiting {
            entry_id: Uuid::now_v7(),
            kind: WaitKind::MoveUp,
            held_starts_at: Some(c.starts_at),
            ..p.clone()
        };
        let q = Waiting {
            latest: Some(a.ends_at),
            ..waiting(WaitKind::New)
        };
        let told = HashSet::from([(b.id, p.patient_id)]);
        let slots = vec![c.clone(), a.clone(), b.clone()];
        let decisions = decide(&slots, &[p.clone(), second_entry, q.clone()], &told);
        assert_eq!(decisions.len(), 2);
        let dp = decisions
            .iter()
            .find(|d| d.patient_id == p.patient_id)
            .unwrap();
        assert_eq!(
            dp.slots.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![a.id, c.id]
        );
        let dq = decisions
            .iter()
            .find(|d| d.patient_id == q.patient_id)
            .unwrap();
        assert_eq!(
            dq.slots.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![a.id]
        );
    }

    #[test]
    fn nobody_is_told_about_nothing() {
        assert!(decide(&[], &[waiting(WaitKind::New)], &HashSet::new()).is_empty());
        let everyone_told = slot(1);
        let w = waiting(WaitKind::New);
        assert!(
            decide(
                std::slice::from_ref(&everyone_told),
                std::slice::from_ref(&w),
                &HashSet::from([(everyone_told.id, w.patient_id)])
            )
            .is_empty()
        );
    }
}
