//! The text of a message, in the patient's language, and what it costs: SMS carry 160 GSM-7
//! characters, or 70 UCS-2 ones when any character is outside GSM-7, and a longer text is cut
//! into segments of 153 or 67. A link never straddles two segments, since a phone that shows
//! them apart would break it.

use chrono_tz::Tz;
use slotcast_events::{NotifyPatient, WaitKind};
use slotcast_i18n::{Arg, Locale};

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

/// The page a text's short link leads to: the offer's page, which lists every slot of the
/// message, rather than one slot's link.
pub fn offer_page(event: &NotifyPatient) -> Option<String> {
    let first = event.slots.first()?;
    let mut url = url::Url::parse(&first.booking_url).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The text telling the patient about the slots of `event`, in their language: who, when the
/// first time is, how many there are, and `link`.
pub fn availability(event: &NotifyPatient, link: &str) -> Option<String> {
    let locale = Locale::negotiate(&event.patient.locale);
    let zone: Tz = event
        .patient
        .timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .or_else(|| event.practitioner.timezone.parse().ok())
        .unwrap_or(Tz::UTC);
    let first = event.slots.iter().map(|s| s.starts_at).min()?;
    let id = match event.reason {
        WaitKind::New => "sms-availability-new",
        WaitKind::MoveUp => "sms-availability-move-up",
    };
    let text = locale.text_with(
        id,
        &[
            ("practitioner", Arg::from(event.practitioner.name.as_str())),
            ("when", Arg::Text(short_date_time(&locale, first, zone))),
            ("count", Arg::from(event.slots.len())),
            ("link", Arg::from(link)),
        ],
    );
    Some(keep_whole(&text, link))
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
fn short_date_time(locale: &Locale, at: chrono::DateTime<chrono::Utc>, zone: Tz) -> String {
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
