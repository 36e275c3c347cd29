//! The text of a message, in the patient's language, and what it costs: SMS carry 160 GSM-7
//! characters, or 70 UCS-2 ones when any character is outside GSM-7, and a longer text is cut
//! into segments of 153 or 67. A link never straddles two segments, since a phone that shows
//! them apart would break it. Characters GSM-7 lacks but has a close match for (`ú`, `’`, `…`)
//! are replaced by it, as gateways' "smart encoding" does, so one accent does not halve a
//! segment.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use slotcast_events::{NotifyPatient, WaitKind};
use slotcast_i18n::{Arg, Locale};
use uuid::Uuid;

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 alphabet, 7 bits a character (escaped characters take two).
    Gsm7,
    /// UTF-16, for any text with a character GSM-7 lacks.
    Ucs2,
}

/// A text's encoding and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: u32,
}

/// The GSM 03.38 basic character set.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes an escape and itself, two septets.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How `text` goes on the air and how many segments it takes.
pub fn length(text: &str) -> Length {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            let units = text.encode_utf16().count();
            return Length {
                encoding: Encoding::Ucs2,
                units,
                segments: segments(units, 70, 67),
            };
        }
    }
    Length {
        encoding: Encoding::Gsm7,
        units: septets,
        segments: segments(septets, 160, 153),
    }
}

/// Segments for `units`: one up to `single`, else `per_part` each (the rest is the header that
/// joins them).
fn segments(units: usize, single: usize, per_part: usize) -> u32 {
    if units <= single {
        1
    } else {
        units.div_ceil(per_part) as u32
    }
}

/// What a text offered, kept with its delivery so that a reply can be answered: in the
/// patient's language and zone, the practitioner, and the slots in the order they start (a
/// reply's number is a place in that order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offered {
    pub locale: String,
    pub zone: String,
    pub practitioner: String,
    pub reason: WaitKind,
    pub slots: Vec<(Uuid, DateTime<Utc>)>,
    /// The offer's signed token, which claims its slots.
    pub token: String,
    /// The offer's page: where the short link leads.
    pub page: String,
}

impl Offered {
    /// What `event` offers; `None` when it offers no slot or its links are not offer links.
    pub fn of(event: &NotifyPatient) -> Option<Self> {
        let first = event.slots.first()?;
        let mut page = url::Url::parse(&first.booking_url).ok()?;
        page.set_query(None);
        page.set_fragment(None);
        let token = page.path_segments()?.next_back()?.to_owned();
        let mut slots: Vec<(Uuid, DateTime<Utc>)> = event
            .slots
            .iter()
            .map(|s| (s.slot_id, s.starts_at))
            .collect();
        slots.sort_by_key(|(_, at)| *at);
        let zone = event
            .patient
            .timezone
            .clone()
            .filter(|z| z.parse::<Tz>().is_ok())
            .unwrap_or_else(|| event.practitioner.timezone.clone());
        Some(Self {
            locale: event.patient.locale.clone(),
            zone,
            practitioner: event.practitioner.name.clone(),
            reason: event.reason,
            slots,
            token,
            page: page.into(),
        })
    }

    fn locale(&self) -> Locale {
        Locale::negotiate(&self.locale)
    }

    fn zone(&self) -> Tz {
        self.zone.parse().unwrap_or(Tz::UTC)
    }

    /// Slot `n` (1 for the first), if offered.
    pub fn slot(&self, n: usize) -> Option<(Uuid, DateTime<Utc>)> {
        n.checked_sub(1).and_then(|i| self.slots.get(i)).copied()
    }

    /// `1) Tue 1 Dec 09:30, 2) 14:30, …` for the slots `ids`: a day is named once, at most
    /// three slots are listed, and `+n` counts the rest.
    fn list(&self, ids: &[Uuid]) -> String {
        let (locale, zone) = (self.locale(), self.zone());
        let mut day = None;
        let numbered: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| ids.contains(id))
            .map(|(i, (_, at))| {
                let local = at.with_timezone(&zone);
                let when = if day == Some(local.date_naive()) {
                    locale.time(&local)
                } else {
                    short_date_time(&locale, *at, zone)
                };
                day = Some(local.date_naive());
                format!("{}) {when}", i + 1)
            })
            .collect();
        let mut list = numbered
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if numbered.len() > 3 {
            list.push_str(&format!(", +{}", numbered.len() - 3));
        }
        list
    }

    /// The text telling the patient about the slots, with `link` to the offer's page: each
    /// slot listed with the number a reply books it by, or, where that list would not fit one
    /// SMS, the first slot and the count.
    pub fn availability(&self, link: &str) -> String {
        let locale = self.locale();
        let (listed, short) = match self.reason {
            WaitKind::New => ("sms-availability-new", "sms-availability-new-short"),
            WaitKind::MoveUp => ("sms-availability-move-up", "sms-availability-move-up-short"),
        };
        let ids: Vec<Uuid> = self.slots.iter().map(|(id, _)| *id).collect();
        let first = self.slots.first().map(|(_, at)| *at).unwrap_or_default();
        let args = [
            ("practitioner", Arg::from(self.practitioner.as_str())),
            (
                "when",
                Arg::Text(short_date_time(&locale, first, self.zone())),
            ),
            ("count", Arg::from(self.slots.len())),
            ("list", Arg::Text(self.list(&ids))),
            ("link", Arg::from(link)),
        ];
        let text = smart(&locale.text_with(listed, &args));
        if self.slots.len() == 1 || length(&text).segments == 1 {
            return keep_whole(&text, link);
        }
        keep_whole(&smart(&locale.text_with(short, &args)), link)
    }

    /// The answer to a reply: message `id` of the catalogue, about slot `at` where it names one,
    /// listing `open` where it lists what is still free.
    pub fn answer(&self, id: &str, at: Option<DateTime<Utc>>, open: &[Uuid]) -> String {
        let locale = self.locale();
        let when = at
            .map(|at| short_date_time(&locale, at, self.zone()))
            .unwrap_or_default();
        smart(&locale.text_with(
            id,
            &[
                ("practitioner", Arg::from(self.practitioner.as_str())),
                ("when", Arg::Text(when)),
                ("list", Arg::Text(self.list(open))),
                ("last", Arg::from(self.slots.len())),
            ],
        ))
    }
}

/// A text that needs no offer (help, STOP, START) in `locale`'s language.
pub fn plain(locale: &str, id: &str) -> String {
    smart(&Locale::negotiate(locale).text(id))
}

/// `text` with each character GSM-7 lacks replaced by its closest GSM-7 match, where one is
/// close enough to read the same; the others stay (and make the text UCS-2).
pub fn smart(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let plain = match c {
            'á' | 'â' | 'ã' => "a",
            'Á' | 'Â' | 'À' | 'Ã' => "A",
            'ê' | 'ë' => "e",
            'Ê' | 'Ë' | 'È' => "E",
            'í' | 'î' | 'ï' => "i",
            'Í' | 'Î' | 'Ï' | 'Ì' => "I",
            'ó' | 'ô' | 'õ' => "o",
            'Ó' | 'Ô' | 'Õ' | 'Ò' => "O",
            'ú' | 'û' => "u",
            'Ú' | 'Û' | 'Ù' => "U",
            'ç' => "c",
            'œ' => "oe",
            'Œ' => "OE",
            '‘' | '’' | '´' | '`' => "'",
            '“' | '”' | '«' | '»' => "\"",
            '–' | '—' | '‐' | '‑' => "-",
            '…' => "...",
            '\u{a0}' | '\u{202f}' | '\u{2009}' => " ",
            other => {
                out.push(other);
                continue;
            }
        };
        out.push_str(plain);
    }
    out
}

/// `text` with spaces before `link` where it would straddle two segments, so that it starts
/// the next one; unchanged when it fits one segment, or the link is too long for any.
pub fn keep_whole(text: &str, link: &str) -> String {
    let Some(at) = text.find(link) else {
        return text.to_owned();
    };
    let whole = length(text);
    if whole.segments == 1 {
        return text.to_owned();
    }
    let per_part = match whole.encoding {
        Encoding::Gsm7 => 153,
        Encoding::Ucs2 => 67,
    };
    let units = |s: &str| match whole.encoding {
        Encoding::Gsm7 => s
            .chars()
            .map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 })
            .sum(),
        Encoding::Ucs2 => s.encode_utf16().count(),
    };
    let (start, size) = (units(&text[..at]), units(link));
    let end = start + size;
    if size > per_part || start / per_part == (end - 1) / per_part {
        return text.to_owned();
    }
    let pad = per_part - start % per_part;
    format!("{}{}{}", &text[..at], " ".repeat(pad), &text[at..])
}

/// `at` as a text message says it: the day and time, without the year.
fn short_date_time(locale: &Locale, at: DateTime<Utc>, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    locale.text_with(
        "sms-date-time",
        &[
            ("date", Arg::Text(locale.short_date(&local))),
            ("time", Arg::Text(locale.time(&local))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_that_would_straddle_two_segments_starts_the_next_one() {
        let link = "https://x.example/s/AAAAAAAAAAAAAAAAAAAAAA";
        let text = format!("{} {link} end", "a".repeat(140));
        let placed = keep_whole(&text, link);
        assert_eq!(placed.find(link), Some(153));
        assert!(placed.starts_with(&text[..141]));
        // A text of one segment, or a link too long for any, stays as it is.
        let short = format!("Book: {link}");
        assert_eq!(keep_whole(&short, link), short);
        let long = format!("{} {}", "a".repeat(150), "h".repeat(200));
        assert_eq!(keep_whole(&long, &"h".repeat(200)), long);
        // In UCS-2 the segments are 67 units long.
        let text = format!("ç{} {link}", "a".repeat(50));
        assert_eq!(
            keep_whole(&text, link)
                .encode_utf16()
                .position(|u| u == u16::from(b'h')),
            Some(67)
        );
    }

    #[test]
    fn smart_encoding_keeps_spanish_and_french_texts_in_gsm7() {
        let text = smart("Responda con un número, s’il vous plaît… Rendez-vous à 9h");
        assert_eq!(
            text,
            "Responda con un numero, s'il vous plait... Rendez-vous à 9h"
        );
        assert_eq!(length(&text).encoding, Encoding::Gsm7);
        // What has no close match stays, and makes the text UCS-2.
        assert_eq!(length(&smart("Привет")).encoding, Encoding::Ucs2);
    }

    #[test]
    fn plain_text_is_gsm7_and_fits_one_segment_up_to_160() {
        let l = length(&"a".repeat(160));
        assert_eq!((l.encoding, l.units, l.segments), (Encoding::Gsm7, 160, 1));
        assert_eq!(length(&"a".repeat(161)).segments, 2);
        assert_eq!(length(&"a".repeat(306)).segments, 2);
        assert_eq!(length(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn french_and_german_letters_of_the_basic_set_stay_gsm7() {
        for text in [
            "Rendez-vous à 9h, délai réservé",
            "Grüße, Übermorgen",
            "¿Mañana?",
        ] {
            assert_eq!(length(text).encoding, Encoding::Gsm7, "{text}");
        }
    }

    #[test]
    fn escaped_characters_count_twice() {
        let l = length("45€ [x]");
        assert_eq!((l.encoding, l.units), (Encoding::Gsm7, 10));
    }

    #[test]
    fn a_character_outside_gsm7_makes_it_ucs2_with_70_to_a_segment() {
        // The typographic apostrophe and ç are not in GSM-7.
        for text in ["j’accepte", "ça"] {
            assert_eq!(length(text).encoding, Encoding::Ucs2, "{text}");
        }
        let l = length(&format!("ç{}", "a".repeat(69)));
        assert_eq!((l.units, l.segments), (70, 1));
        assert_eq!(length(&format!("ç{}", "a".repeat(70))).segments, 2);
        assert_eq!(length(&format!("ç{}", "a".repeat(133))).segments, 2);
        assert_eq!(length(&format!("ç{}", "a".repeat(134))).segments, 3);
        // An emoji is two UTF-16 units.
        assert_eq!(length("🙂").units, 2);
    }
}
