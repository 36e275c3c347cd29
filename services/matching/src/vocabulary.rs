//! The states and reasons matching stores and serves: enums kept in the database as the same
//! short strings the HTTP views show, so that code compares variants, never strings.

use sea_orm::entity::prelude::*;

/// An enum stored as a string column (`string_value`), serialized as that string, with
/// `as_str` for the few places that need the text itself.
macro_rules! stored_as_strings {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $($(#[$vmeta])* #[sea_orm(string_value = $text)] $variant,)+
        }

        impl $name {
            /// The stored (and shown) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        // The HTTP API's document shows the same strings as a string enum.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

stored_as_strings! {
    /// A slot as matching last heard of it.
    pub enum SlotStatus {
        Open = "open",
        Booked = "booked",
        Withdrawn = "withdrawn",
    }
}

stored_as_strings! {
    /// What came of a decision about a slot and a patient (`considered`, and the decisions
    /// view, which also reads `pending` and `told`).
    pub enum Outcome {
        /// A later wave may tell them.
        Waiting = "waiting",
        /// Decided, waiting out the coalescing window.
        Pending = "pending",
        /// Sent, in a notification.
        Told = "told",
        /// Not told, for a [`Reason`].
        Skipped = "skipped",
        /// The waves stopped (for a [`Reason`]) before reaching them.
        NotReached = "not_reached",
    }
}

stored_as_strings! {
    /// Why a patient is not told about a slot: why it does not fit, why they were skipped, or
    /// why the waves stopped before reaching them.
    pub enum Reason {
        /// They just gave the slot up.
        GaveItUp = "gave_it_up",
        /// Before their `earliest`, or ending after their `latest`.
        OutsideWindow = "outside_window",
        /// A move-up to a time not before the appointment they hold.
        NotEarlier = "not_earlier",
        /// The entry had expired.
        Expired = "expired",
        /// Both email and in-app switched off.
        OptedOut = "opted_out",
        /// Sent the daily maximum of availability messages.
        Capped = "capped",
        /// The slot was booked first.
        Taken = "taken",
        /// The slot was withdrawn or started, or the patient or practitioner is unknown.
        Gone = "gone",
        /// The entry stopped waiting (left, fulfilled).
        NoLongerWaiting = "no_longer_waiting",
        /// Waves stopped: the opening's slots were taken, withdrawn or started.
        SlotGone = "slot_gone",
        /// Waves stopped: nobody was left to tell.
        ListRanOut = "list_ran_out",
        /// Waves stopped: scheduling refused the hold.
        HoldRefused = "hold_refused",
        /// Not texted (or, where the practitioner applies quiet hours to every channel, not
        /// told): the slots start before the patient's quiet hours end. For a pending offer:
        /// it waits for their end.
        QuietHours = "quiet_hours",
    }
}

stored_as_strings! {
    /// What became of the text of a message to a patient who wants texts (`told`).
    pub enum Texted {
        /// Texted with the message.
        Now = "now",
        /// Texted when the patient's quiet hours end.
        Deferred = "deferred",
        /// Not texted, for a [`Reason`] (the email and in-app message go).
        Skipped = "skipped",
    }
}

stored_as_strings! {
    /// An opening's wave timer.
    pub enum WaveStatus {
        Running = "running",
        Done = "done",
    }
}

stored_as_strings! {
    /// What a scheduling event did to a slot (`slot_history`).
    pub enum HistoryKind {
        Published = "published",
        Released = "released",
        Claimed = "claimed",
        Lost = "lost",
        Booked = "booked",
        Withdrawn = "withdrawn",
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn each_variant_is_stored_and_shown_as_the_same_text() {
        fn check<E>(as_str: fn(E) -> &'static str)
        where
            E: ActiveEnum<Value = String> + Iterable + Copy + PartialEq + std::fmt::Debug,
            E: serde::Serialize,
        {
            for v in E::iter() {
                assert_eq!(v.to_value(), as_str(v));
                assert_eq!(E::try_from_value(&as_str(v).to_owned()).ok(), Some(v));
                assert_eq!(serde_json::to_value(v).unwrap(), as_str(v));
            }
        }
        check(SlotStatus::as_str);
        check(Outcome::as_str);
        check(Reason::as_str);
        check(WaveStatus::as_str);
        check(HistoryKind::as_str);
        check(Texted::as_str);
    }
}
