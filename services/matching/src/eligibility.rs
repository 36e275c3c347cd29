//! The one rule of who is told: for a patient, an entry and a slot at a given moment, whether
//! the patient is told now, later, or not at all, and why. Deciding a broadcast
//! ([`crate::projection::decide`]), planning a wave ([`crate::waves`]), sending a message
//! ([`crate::dispatch`]) and explaining a slot ([`crate::explain`]) all ask [`verdict`], with
//! what they know at that moment; it does no I/O. [`text`] decides, for a message that goes,
//! whether its text goes now, when the patient's quiet hours end, or not at all; [`timing`]
//! the same for the whole message where the practitioner's quiet hours hold every channel.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{
    fit::{OpenSlot, Waiting},
    vocabulary::{Outcome, Reason, SlotStatus, Texted},
};

pub use slotcast_events::{QuietHours, QuietHoursSetting};

/// The quiet hours a practitioner's messages keep: their own setting, else `default`
/// (`QUIET_HOURS`).
pub fn quiet_hours(
    own: Option<QuietHoursSetting>,
    default: Option<QuietHours>,
) -> Option<QuietHours> {
    match own {
        Some(setting) => setting.hours(),
        None => default,
    }
}

/// What becomes of the text of a message that goes, and until when it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Texted with the message.
    Now,
    /// Texted when the quiet hours end, at this instant.
    After(DateTime<Utc>),
    /// Not texted, and why.
    Skip(Reason),
}

impl Text {
    /// As `told` records it.
    pub fn recorded(self) -> (Texted, Option<DateTime<Utc>>) {
        match self {
            Text::Now => (Texted::Now, None),
            Text::After(at) => (Texted::Deferred, Some(at)),
            Text::Skip(_) => (Texted::Skipped, None),
        }
    }
}

/// The text of a message whose last slot starts at `last_start`, to a patient in `zone`, at
/// `now`: outside the quiet hours it goes now; inside them it waits for their end if a slot is
/// still to come then, and does not go at all if every slot starts before they end.
pub fn text(
    now: DateTime<Utc>,
    zone: Tz,
    quiet: Option<QuietHours>,
    last_start: DateTime<Utc>,
) -> Text {
    match quiet.and_then(|q| q.end_after(now, zone)) {
        None => Text::Now,
        Some(end) if last_start > end => Text::After(end),
        Some(_) => Text::Skip(Reason::QuietHours),
    }
}

/// When a message that goes is sent, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Now, with its text as [`Text`] says.
    Now(Text),
    /// The whole message waits until this instant, the end of the quiet hours.
    Wait(DateTime<Utc>),
    /// Not sent, and why: every slot starts before the quiet hours end.
    Skip(Reason),
}

/// [`text`], and for a practitioner whose quiet hours hold every channel (`all_channels`) the
/// whole message: it waits or is not sent as its text would (the caller skips, from a message
/// that waits, the slots that start before it would go). A wave's message (`held`) goes
/// now whatever the setting, since its hold is already running.
pub fn timing(
    now: DateTime<Utc>,
    zone: Tz,
    quiet: Option<QuietHours>,
    all_channels: bool,
    held: bool,
    last_start: DateTime<Utc>,
) -> Timing {
    match text(now, zone, quiet, last_start) {
        text if !all_channels || held => Timing::Now(text),
        Text::Now => Timing::Now(Text::Now),
        Text::After(at) => Timing::Wait(at),
        Text::Skip(why) => Timing::Skip(why),
    }
}

/// Everything the rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub now: DateTime<Utc>,
    /// The slot and its status; `None` when the projection does not know it.
    pub slot: Option<(&'a OpenSlot, SlotStatus)>,
    /// The entry that asked; `None` when the projection does not know it.
    pub entry: Option<Entry>,
    pub fit: Fit<'a>,
    /// The patient's channels; `None` when the patient or the practitioner is unknown.
    pub channels: Option<Channels>,
    pub cap: Cap,
    pub wave: Wave,
}

/// The entry's state, as far as the rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Whether the slot is what the entry asked for.
#[derive(Debug, Clone, Copy)]
pub enum Fit<'a> {
    /// To be checked against this entry ([`Waiting::why_not`]).
    Check(&'a Waiting),
    /// Settled when the opening was decided ([`crate::fit::decide`]): neither a slot's times nor
    /// an entry's window and held time change afterwards.
    Decided,
}

/// The patient's preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    pub email: bool,
    pub inapp: bool,
    pub sms: bool,
}

/// The daily cap, as it applies here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Not counted here: a broadcast is counted when its message is formed, and a wave's offer
    /// when its wave was planned (or it joins a message that goes anyway).
    NotCounted,
    /// `sent` availability messages in the last 24 hours, against at most `max` (0: no cap).
    Count { sent: i64, max: u32 },
}

/// Where the offer stands in the `waves` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    /// Not under waves, or a wave's offer already decided.
    None,
    /// Planning a wave: `taken` of the wave's `size` places for this slot are given already.
    Planning { taken: usize, size: usize },
    /// The waves stopped, for this reason, before reaching the patient.
    Stopped(Reason),
}

/// What the rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Tell them now (or when the coalescing window ends).
    Tell,
    /// Not in this wave: a later one may tell them.
    Later,
    /// Not told, and why.
    Skip(Reason),
    /// The waves stopped before reaching them, and why.
    NotReached(Reason),
}

impl Verdict {
    /// What `considered` records of it: a patient to be told is `pending` until the message
    /// goes.
    pub fn outcome(self) -> (Outcome, Option<Reason>) {
        match self {
            Verdict::Tell => (Outcome::Pending, None),
            Verdict::Later => (Outcome::Waiting, None),
            Verdict::Skip(why) => (Outcome::Skipped, Some(why)),
            Verdict::NotReached(why) => (Outcome::NotReached, Some(why)),
        }
    }
}

/// Decides one case. Precedence: the waves having stopped; the slot (taken before gone); the
/// entry (no longer waiting, then fit, then expired); the patient (unknown: later; opted out,
/// capped);
/// the wave's places.
pub fn verdict(case: &Case<'_>) -> Verdict {
    if let Wave::Stopped(why) = case.wave {
        return Verdict::NotReached(why);
    }
    let slot = match case.slot {
        None | Some((_, SlotStatus::Withdrawn)) => return Verdict::Skip(Reason::Gone),
        Some((_, SlotStatus::Booked)) => return Verdict::Skip(Reason::Taken),
        Some((s, SlotStatus::Open)) if s.starts_at <= case.now => {
            return Verdict::Skip(Reason::Gone);
        }
        Some((s, SlotStatus::Open)) => s,
    };
    if let Some(why) = why_not_for_entry(case.now, slot, case.entry, case.fit) {
        return Verdict::Skip(why);
    }
    match case.channels {
        // Its registration is another order key's event, which may not be applied yet.
        None => return Verdict::Later,
        Some(Channels {
            email: false,
            inapp: false,
            sms: false,
        }) => return Verdict::Skip(Reason::OptedOut),
        Some(_) => {}
    }
    if let Cap::Count { sent, max } = case.cap
        && max > 0
        && sent >= i64::from(max)
    {
        return Verdict::Skip(Reason::Capped);
    }
    match case.wave {
        Wave::Planning { taken, size } if taken >= size => Verdict::Later,
        _ => Verdict::Tell,
    }
}

/// The part of [`verdict`] about the entry alone: it is still waiting, the slot fits it, and it
/// has not expired. `None` when nothing about the entry stands in the way.
pub fn why_not_for_entry(
    now: DateTime<Utc>,
    slot: &OpenSlot,
    entry: Option<Entry>,
    fit: Fit<'_>,
) -> Option<Reason> {
    let Some(entry) = entry.filter(|e| e.active) else {
        return Some(Reason::NoLongerWaiting);
    };
    if let Fit::Check(waiting) = fit
        && let Some(why) = waiting.why_not(slot)
    {
        return Some(why);
    }
    entry
        .expires_at
        .is_some_and(|e| e <= now)
        .then_some(Reason::Expired)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use slotcast_events::{Priority, WaitKind};
    use uuid::Uuid;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn slot(hours: i64) -> OpenSlot {
        let starts_at = now() + Duration::hours(hours);
        OpenSlot {
            id: Uuid::from_u128(1),
            starts_at,
            ends_at: starts_at + Duration::minutes(30),
            released_by: None,
        }
    }

    fn waiting(kind: WaitKind) -> Waiting {
        Waiting {
            entry_id: Uuid::from_u128(2),
            patient_id: Uuid::from_u128(3),
            kind,
            held_starts_at: None,
            earliest: None,
            latest: None,
            joined_at: now() - Duration::days(1),
            priority: Priority::Routine,
        }
    }

    const ACTIVE: Entry = Entry {
        active: true,
        expires_at: None,
    };
    const BOTH: Channels = Channels {
        email: true,
        inapp: true,
        sms: false,
    };

    /// A case in which the patient is told; each test changes what it is about.
    fn told<'a>(s: &'a OpenSlot, w: &'a Waiting) -> Case<'a> {
        Case {
            now: now(),
            slot: Some((s, SlotStatus::Open)),
            entry: Some(ACTIVE),
            fit: Fit::Check(w),
            channels: Some(BOTH),
            cap: Cap::Count { sent: 0, max: 6 },
            wave: Wave::None,
        }
    }

    #[test]
    fn a_fitting_open_slot_for_a_waiting_reachable_patient_is_told() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        assert_eq!(verdict(&told(&s, &w)), Verdict::Tell);
        let decided = Case {
            fit: Fit::Decided,
            cap: Cap::NotCounted,
            ..told(&s, &w)
        };
        assert_eq!(verdict(&decided), Verdict::Tell);
    }

    #[test]
    fn a_booked_slot_is_taken_and_a_withdrawn_started_or_unknown_one_is_gone() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        let with = |slot| {
            verdict(&Case {
                slot,
                ..told(&s, &w)
            })
        };
        assert_eq!(
            with(Some((&s, SlotStatus::Booked))),
            Verdict::Skip(Reason::Taken)
        );
        assert_eq!(
            with(Some((&s, SlotStatus::Withdrawn))),
            Verdict::Skip(Reason::Gone)
        );
        assert_eq!(with(None), Verdict::Skip(Reason::Gone));
        let started = slot(0);
        assert_eq!(
            with(Some((&started, SlotStatus::Open))),
            Verdict::Skip(Reason::Gone),
            "a slot starting this very moment is gone"
        );
        let past = slot(-1);
        assert_eq!(
            with(Some((&past, SlotStatus::Booked))),
            Verdict::Skip(Reason::Taken),
            "booked, then started: it was taken"
        );
    }

    #[test]
    fn a_closed_or_unknown_entry_is_no_longer_waiting() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        for entry in [
            None,
            Some(Entry {
                active: false,
                ..ACTIVE
            }),
        ] {
            let case = Case {
                entry,
                ..told(&s, &w)
            };
            assert_eq!(verdict(&case), Verdict::Skip(Reason::NoLongerWaiting));
        }
    }

    #[test]
    fn a_slot_that_does_not_fit_says_why() {
        let s = slot(5);
        let early = Waiting {
            earliest: Some(s.starts_at + Duration::seconds(1)),
            ..waiting(WaitKind::New)
        };
        assert_eq!(
            verdict(&told(&s, &early)),
            Verdict::Skip(Reason::OutsideWindow)
        );
        let late = Waiting {
            latest: Some(s.ends_at - Duration::seconds(1)),
            ..waiting(WaitKind::New)
        };
        assert_eq!(
            verdict(&told(&s, &late)),
            Verdict::Skip(Reason::OutsideWindow)
        );
        let exactly = Waiting {
            earliest: Some(s.starts_at),
            latest: Some(s.ends_at),
            ..waiting(WaitKind::New)
        };
        assert_eq!(verdict(&told(&s, &exactly)), Verdict::Tell);
        let gave_up = waiting(WaitKind::New);
        let released = OpenSlot {
            released_by: Some(gave_up.patient_id),
            ..slot(5)
        };
        assert_eq!(
            verdict(&told(&released, &gave_up)),
            Verdict::Skip(Reason::GaveItUp)
        );
    }

    #[test]
    fn a_move_up_is_told_only_of_a_strictly_earlier_slot() {
        let s = slot(5);
        let held = |at| Waiting {
            held_starts_at: at,
            ..waiting(WaitKind::MoveUp)
        };
        let same = held(Some(s.starts_at));
        assert_eq!(verdict(&told(&s, &same)), Verdict::Skip(Reason::NotEarlier));
        let later = held(Some(s.starts_at + Duration::seconds(1)));
        assert_eq!(verdict(&told(&s, &later)), Verdict::Tell);
        let unknown = held(None);
        assert_eq!(
            verdict(&told(&s, &unknown)),
            Verdict::Skip(Reason::NotEarlier)
        );
        // Settled at the decision: not checked again.
        let decided = Case {
            fit: Fit::Decided,
            ..told(&s, &same)
        };
        assert_eq!(verdict(&decided), Verdict::Tell);
    }

    #[test]
    fn an_entry_expiring_at_this_moment_has_expired() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        let expiring = |at| Case {
            entry: Some(Entry {
                active: true,
                expires_at: Some(at),
            }),
            ..told(&s, &w)
        };
        assert_eq!(verdict(&expiring(now())), Verdict::Skip(Reason::Expired));
        assert_eq!(
            verdict(&expiring(now() - Duration::days(1))),
            Verdict::Skip(Reason::Expired)
        );
        assert_eq!(
            verdict(&expiring(now() + Duration::milliseconds(1))),
            Verdict::Tell
        );
    }

    #[test]
    fn every_channel_off_is_opted_out_one_is_enough_and_an_unknown_patient_is_later() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        let with = |channels| {
            verdict(&Case {
                channels,
                ..told(&s, &w)
            })
        };
        assert_eq!(
            with(Some(Channels {
                email: false,
                inapp: false,
                sms: false,
            })),
            Verdict::Skip(Reason::OptedOut)
        );
        for (email, inapp, sms) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            assert_eq!(with(Some(Channels { email, inapp, sms })), Verdict::Tell);
        }
        assert_eq!(with(None), Verdict::Later);
    }

    #[test]
    fn the_cap_is_reached_at_exactly_its_number_and_zero_means_none() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        let with = |cap| {
            verdict(&Case {
                cap,
                ..told(&s, &w)
            })
        };
        assert_eq!(with(Cap::Count { sent: 5, max: 6 }), Verdict::Tell);
        assert_eq!(
            with(Cap::Count { sent: 6, max: 6 }),
            Verdict::Skip(Reason::Capped)
        );
        assert_eq!(
            with(Cap::Count { sent: 7, max: 6 }),
            Verdict::Skip(Reason::Capped)
        );
        assert_eq!(with(Cap::Count { sent: 99, max: 0 }), Verdict::Tell);
        assert_eq!(with(Cap::NotCounted), Verdict::Tell);
    }

    #[test]
    fn a_full_wave_leaves_the_patient_for_a_later_one_and_stopped_waves_never_reach_them() {
        let (s, w) = (slot(5), waiting(WaitKind::New));
        let with = |wave| {
            verdict(&Case {
                wave,
                ..told(&s, &w)
            })
        };
        assert_eq!(with(Wave::Planning { taken: 4, size: 5 }), Verdict::Tell);
        assert_eq!(with(Wave::Planning { taken: 5, size: 5 }), Verdict::Later);
        assert_eq!(
            with(Wave::Stopped(Reason::ListRanOut)),
            Verdict::NotReached(Reason::ListRanOut)
        );
    }

    #[test]
    fn the_first_reason_in_precedence_is_the_one_given() {
        let s = slot(5);
        let w = Waiting {
            held_starts_at: Some(s.starts_at),
            ..waiting(WaitKind::MoveUp)
        };
        // Everything wrong at once, then one thing fixed at a time.
        let mut case = Case {
            now: now(),
            slot: Some((&s, SlotStatus::Booked)),
            entry: Some(Entry {
                active: false,
                expires_at: Some(now()),
            }),
            fit: Fit::Check(&w),
            channels: Some(Channels {
                email: false,
                inapp: false,
                sms: false,
            }),
            cap: Cap::Count { sent: 6, max: 6 },
            wave: Wave::Stopped(Reason::SlotGone),
        };
        let mut seen = Vec::new();
        seen.push(verdict(&case));
        case.wave = Wave::Planning { taken: 5, size: 5 };
        seen.push(verdict(&case));
        case.slot = Some((&s, SlotStatus::Open));
        seen.push(verdict(&case));
        case.entry = Some(Entry {
            active: true,
            expires_at: Some(now()),
        });
        seen.push(verdict(&case));
        case.fit = Fit::Decided;
        seen.push(verdict(&case));
        case.entry = Some(ACTIVE);
        seen.push(verdict(&case));
        case.channels = Some(BOTH);
        seen.push(verdict(&case));
        case.cap = Cap::Count { sent: 0, max: 6 };
        seen.push(verdict(&case));
        case.wave = Wave::None;
        seen.push(verdict(&case));
        assert_eq!(
            seen,
            [
                Verdict::NotReached(Reason::SlotGone),
                Verdict::Skip(Reason::Taken),
                Verdict::Skip(Reason::NoLongerWaiting),
                Verdict::Skip(Reason::NotEarlier),
                Verdict::Skip(Reason::Expired),
                Verdict::Skip(Reason::OptedOut),
                Verdict::Skip(Reason::Capped),
                Verdict::Later,
                Verdict::Tell,
            ]
        );
    }

    mod quiet_hours {
        use chrono::{NaiveTime, TimeZone};

        use super::super::*;
        use super::Duration;

        fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
            chrono_tz::Europe::Paris
                .with_ymd_and_hms(y, m, d, h, min, 0)
                .single()
                .unwrap()
                .with_timezone(&Utc)
        }

        const PARIS: Tz = chrono_tz::Europe::Paris;

        fn default() -> Option<QuietHours> {
            QuietHours::parse("21:00-08:00")
        }

        #[test]
        fn hours_are_read_as_hh_mm_twice_and_may_not_be_empty() {
            let q = QuietHours::parse(" 21:00 - 08:00 ").unwrap();
            assert_eq!(q.start, NaiveTime::from_hms_opt(21, 0, 0).unwrap());
            assert_eq!(q.end, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
            for bad in ["", "21:00", "21-08", "25:00-08:00", "08:00-08:00", "off"] {
                assert_eq!(QuietHours::parse(bad), None, "{bad}");
            }
        }

        #[test]
        fn outside_the_quiet_hours_the_text_goes_now() {
            for (h, m) in [(8, 0), (12, 0), (20, 59)] {
                let now = paris(2026, 12, 8, h, m);
                assert_eq!(
                    text(now, PARIS, default(), now + Duration::hours(1)),
                    Text::Now,
                    "{h}:{m}"
                );
            }
            // No quiet hours: always now.
            let night = paris(2026, 12, 8, 23, 0);
            assert_eq!(
                text(night, PARIS, None, night + Duration::hours(1)),
                Text::Now
            );
        }

        #[test]
        fn inside_them_a_text_waits_for_their_end_if_a_slot_is_still_to_come() {
            let end = paris(2026, 12, 9, 8, 0);
            for now in [
                paris(2026, 12, 8, 21, 0),
                paris(2026, 12, 8, 23, 30),
                paris(2026, 12, 9, 7, 59),
            ] {
                assert_eq!(
                    text(now, PARIS, default(), paris(2026, 12, 9, 10, 0)),
                    Text::After(end),
                    "{now}"
                );
            }
        }

        #[test]
        fn a_text_whose_slots_all_start_before_the_end_does_not_go() {
            let now = paris(2026, 12, 8, 23, 0);
            for last in [paris(2026, 12, 9, 7, 30), paris(2026, 12, 9, 8, 0)] {
                assert_eq!(
                    text(now, PARIS, default(), last),
                    Text::Skip(Reason::QuietHours)
                );
            }
        }

        #[test]
        fn the_hours_are_the_patients_own_and_need_not_cross_midnight() {
            // 22:00 in Paris is 16:00 in New York: not quiet there.
            let now = paris(2026, 12, 8, 22, 0);
            let ny = chrono_tz::America::New_York;
            assert_eq!(text(now, ny, default(), now + Duration::days(1)), Text::Now);
            assert!(matches!(
                text(now, PARIS, default(), now + Duration::days(1)),
                Text::After(_)
            ));
            let lunch = QuietHours::parse("12:00-14:00");
            let noon = paris(2026, 12, 8, 12, 30);
            assert_eq!(
                text(noon, PARIS, lunch, paris(2026, 12, 8, 15, 0)),
                Text::After(paris(2026, 12, 8, 14, 0))
            );
            assert_eq!(
                text(
                    paris(2026, 12, 8, 14, 0),
                    PARIS,
                    lunch,
                    paris(2026, 12, 8, 15, 0)
                ),
                Text::Now
            );
        }

        #[test]
        fn an_end_the_clock_change_skips_is_the_first_instant_after() {
            // Paris springs forward at 02:00 on 29 March 2026: 02:30 does not exist.
            let q = QuietHours::parse("23:00-02:30");
            let now = paris(2026, 3, 29, 1, 0);
            let Text::After(end) = text(now, PARIS, q, now + Duration::days(1)) else {
                panic!("deferred");
            };
            assert_eq!(end, paris(2026, 3, 29, 3, 30));
        }

        #[test]
        fn what_told_records_of_each() {
            let at = paris(2026, 12, 9, 8, 0);
            assert_eq!(Text::Now.recorded(), (Texted::Now, None));
            assert_eq!(Text::After(at).recorded(), (Texted::Deferred, Some(at)));
            assert_eq!(
                Text::Skip(Reason::QuietHours).recorded(),
                (Texted::Skipped, None)
            );
        }

        #[test]
        fn the_night_the_clocks_go_back_the_end_is_the_next_one_to_come() {
            // 02:00 to 03:00 comes twice in Paris on 25 October 2026 (CEST, then CET).
            let q = QuietHours::parse("23:00-02:30");
            let first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 15, 0).unwrap(); // 02:15 CEST
            let second = Utc.with_ymd_and_hms(2026, 10, 25, 1, 15, 0).unwrap(); // 02:15 CET
            let far = first + Duration::days(1);
            assert_eq!(
                text(first, PARIS, q, far),
                Text::After(Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap())
            );
            assert_eq!(
                text(second, PARIS, q, far),
                Text::After(Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap())
            );
        }

        #[test]
        fn a_practitioners_own_setting_wins_over_the_default_and_off_is_none() {
            let lunch = QuietHours::parse("12:00-14:00").unwrap();
            assert_eq!(quiet_hours(None, default()), default());
            assert_eq!(quiet_hours(Some(QuietHoursSetting::Off), default()), None);
            assert_eq!(
                quiet_hours(Some(QuietHoursSetting::Daily(lunch)), default()),
                Some(lunch)
            );
            assert_eq!(quiet_hours(None, None), None);
            assert_eq!(
                QuietHoursSetting::parse(" OFF "),
                Some(QuietHoursSetting::Off)
            );
            assert_eq!(
                QuietHoursSetting::parse("12:00-14:00"),
                Some(QuietHoursSetting::Daily(lunch))
            );
            assert_eq!(QuietHoursSetting::parse("12:00-12:00"), None);
            assert_eq!(String::from(QuietHoursSetting::Daily(lunch)), "12:00-14:00");
        }

        #[test]
        fn every_channel_waits_or_is_skipped_only_where_the_practitioner_says_so() {
            let night = paris(2026, 12, 8, 23, 0);
            let morning = paris(2026, 12, 9, 8, 0);
            let after = morning + Duration::hours(2);
            let before = morning - Duration::hours(1);
            // Texts only (the default): the message goes, its text waits or is skipped.
            assert_eq!(
                timing(night, PARIS, default(), false, false, after),
                Timing::Now(Text::After(morning))
            );
            assert_eq!(
                timing(night, PARIS, default(), false, false, before),
                Timing::Now(Text::Skip(Reason::QuietHours))
            );
            // Every channel: the whole message waits, or is not sent.
            assert_eq!(
                timing(night, PARIS, default(), true, false, after),
                Timing::Wait(morning)
            );
            assert_eq!(
                timing(night, PARIS, default(), true, false, before),
                Timing::Skip(Reason::QuietHours)
            );
            // A wave's hold is running: its message goes now.
            assert_eq!(
                timing(night, PARIS, default(), true, true, after),
                Timing::Now(Text::After(morning))
            );
            // Outside the quiet hours, or with none, everything goes now.
            let noon = paris(2026, 12, 9, 12, 0);
            assert_eq!(
                timing(
                    noon,
                    PARIS,
                    default(),
                    true,
                    false,
                    noon + Duration::hours(1)
                ),
                Timing::Now(Text::Now)
            );
            assert_eq!(
                timing(night, PARIS, None, true, false, after),
                Timing::Now(Text::Now)
            );
            // At the end's instant the quiet hours are over: what waited goes.
            assert_eq!(
                timing(morning, PARIS, default(), true, false, after),
                Timing::Now(Text::Now)
            );
        }
    }
}
