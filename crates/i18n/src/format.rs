//! Dates, times and amounts in a patient's conventions, from ICU4X's compiled CLDR data.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use icu_datetime::{
    DateTimeFormatter, fieldsets,
    input::{Date, Time},
};
use icu_decimal::{DecimalFormatter, input::Decimal};

use crate::{Arg, Locale};

/// The formatters of one locale's conventions, built once per thread: building them reads
/// ICU4X's data and costs far more than formatting a slot.
struct Formatters {
    date: Option<DateTimeFormatter<fieldsets::YMDE>>,
    short_date: Option<DateTimeFormatter<fieldsets::MDE>>,
    time: Option<DateTimeFormatter<fieldsets::T>>,
    decimal: Option<DecimalFormatter>,
}

thread_local! {
    static FORMATTERS: RefCell<HashMap<icu_locale_core::Locale, Rc<Formatters>>> =
        RefCell::new(HashMap::new());
}

impl Locale {
    fn formatters(&self) -> Rc<Formatters> {
        FORMATTERS.with(|cache| {
            cache
                .borrow_mut()
                .entry(self.conventions.clone())
                .or_insert_with(|| {
                    let locale = &self.conventions;
                    Rc::new(Formatters {
                        date: DateTimeFormatter::try_new(
                            locale.clone().into(),
                            fieldsets::YMDE::long(),
                        )
                        .ok(),
                        short_date: DateTimeFormatter::try_new(
                            locale.clone().into(),
                            fieldsets::MDE::medium(),
                        )
                        .ok(),
                        time: DateTimeFormatter::try_new(locale.clone().into(), fieldsets::T::hm())
                            .ok(),
                        decimal: DecimalFormatter::try_new(
                            locale.clone().into(),
                            Default::default(),
                        )
                        .ok(),
                    })
                })
                .clone()
        })
    }
}

impl Locale {
    /// The day of `at` with its weekday: `samedi 5 décembre 2026`, `Samstag, 5. Dezember 2026`.
    pub fn date(&self, at: &DateTime<Tz>) -> String {
        let formatters = self.formatters();
        let date = Date::try_new_iso(at.year(), at.month() as u8, at.day() as u8);
        match (formatters.date.as_ref(), date) {
            (Some(f), Ok(d)) => f.format(&d).to_string(),
            // Compiled data covers every locale; a date out of ICU's range is the only way here.
            _ => at.format("%Y-%m-%d").to_string(),
        }
    }

    /// The day of `at` without the year, abbreviated where the language does, as a text message
    /// says it: `Tue, Dec 8`, `mar. 8 déc.`.
    pub fn short_date(&self, at: &DateTime<Tz>) -> String {
        let formatters = self.formatters();
        let date = Date::try_new_iso(at.year(), at.month() as u8, at.day() as u8);
        match (formatters.short_date.as_ref(), date) {
            (Some(f), Ok(d)) => f.format(&d).to_string(),
            _ => at.format("%m-%d").to_string(),
        }
    }

    /// The time of day of `at`: `10:00`, or `10:00 AM` where that is the custom.
    pub fn time(&self, at: &DateTime<Tz>) -> String {
        let formatters = self.formatters();
        let time = Time::try_new(at.hour() as u8, at.minute() as u8, 0, 0);
        match (formatters.time.as_ref(), time) {
            (Some(f), Ok(t)) => f.format(&t).to_string(),
            _ => at.format("%H:%M").to_string(),
        }
    }

    /// A slot in `zone`: `samedi 5 décembre 2026, 10:00–10:30`; the end carries its own day when
    /// the slot runs past midnight.
    pub fn time_range(&self, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, zone: Tz) -> String {
        let start = starts_at.with_timezone(&zone);
        let end = ends_at.with_timezone(&zone);
        let mut args = vec![
            ("date", Arg::Text(self.date(&start))),
            ("start", Arg::Text(self.time(&start))),
            ("end", Arg::Text(self.time(&end))),
        ];
        if start.date_naive() == end.date_naive() {
            self.text_with("time-range", &args)
        } else {
            args.push(("end-date", Arg::Text(self.date(&end))));
            self.text_with("time-range-overnight", &args)
        }
    }

    /// `at` in `zone` with its day and time: `samedi 5 décembre 2026 à 10:00`.
    pub fn date_time(&self, at: DateTime<Utc>, zone: Tz) -> String {
        let at = at.with_timezone(&zone);
        self.text_with(
            "date-time",
            &[
                ("date", Arg::Text(self.date(&at))),
                ("time", Arg::Text(self.time(&at))),
            ],
        )
    }

    /// `cents` of the ISO 4217 `currency`: `45,00 €`, `€45.00`, `$45.00`.
    pub fn amount(&self, cents: i64, currency: &str) -> String {
        let mut value = Decimal::from(cents);
        value.multiply_pow10(-2);
        let number = match &self.formatters().decimal {
            Some(f) => f.format(&value).to_string(),
            None => value.to_string(),
        };
        self.text_with(
            "amount",
            &[
                ("number", Arg::Text(number)),
                ("currency", Arg::Text(currency.to_owned())),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn saturday_at_ten() -> (DateTime<Utc>, DateTime<Utc>) {
        // 09:00 UTC is 10:00 in Paris in December.
        let start = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap();
        (start, start + chrono::Duration::minutes(30))
    }

    fn range(tag: &str) -> String {
        let (start, end) = saturday_at_ten();
        Locale::negotiate(tag).time_range(start, end, Tz::Europe__Paris)
    }

    #[test]
    fn a_slot_reads_as_each_language_writes_dates() {
        assert_eq!(range("fr"), "samedi 5 décembre 2026, 10:00–10:30");
        assert_eq!(range("de"), "Samstag, 5. Dezember 2026, 10:00–10:30 Uhr");
        assert_eq!(range("es"), "sábado, 5 de diciembre de 2026, 10:00–10:30");
        assert_eq!(range("en"), "Saturday, 5 December 2026, 10:00–10:30");
    }

    #[test]
    fn a_regional_tag_keeps_its_own_conventions() {
        assert_eq!(
            range("en-US"),
            "Saturday, December 5, 2026, 10:00\u{202f}AM–10:30\u{202f}AM"
        );
    }

    #[test]
    fn a_slot_past_midnight_names_both_days() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 22, 30, 0).unwrap();
        let when = Locale::negotiate("fr").time_range(
            start,
            start + chrono::Duration::hours(1),
            Tz::Europe__Paris,
        );
        assert_eq!(
            when,
            "mardi 1 décembre 2026, 23:30 – mercredi 2 décembre 2026, 00:30"
        );
    }

    #[test]
    fn amounts_are_written_as_each_language_writes_them() {
        assert_eq!(Locale::negotiate("fr").amount(4500, "EUR"), "45,00\u{a0}€");
        assert_eq!(
            Locale::negotiate("de").amount(123456, "EUR"),
            "1.234,56\u{a0}€"
        );
        assert_eq!(Locale::negotiate("es").amount(4500, "EUR"), "45,00\u{a0}€");
        assert_eq!(Locale::negotiate("en").amount(4500, "EUR"), "€45.00");
        assert_eq!(Locale::negotiate("en").amount(4500, "USD"), "$45.00");
        assert_eq!(Locale::negotiate("en").amount(5, "CHF"), "CHF 0.05");
        assert_eq!(
            Locale::negotiate("fr").amount(4500, "XYZ"),
            "45,00\u{a0}XYZ"
        );
    }
}
