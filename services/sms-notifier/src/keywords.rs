//! What a text from a patient asks, read from its words in any shipped language: the carriers'
//! keywords (STOP, START, HELP), a yes, or a slot's number. Anything else is unclear, and an
//! unclear text never books.

/// What a text asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// No more texts (STOP, and its equivalents carriers and languages use).
    Stop,
    /// Texts again (START, UNSTOP).
    Start,
    /// What these texts are and how to answer them.
    Help,
    /// Book the offered slot with this number (1 for the first; a yes is 1).
    Book(usize),
    /// Nothing the service can act on.
    Unclear,
}

impl Asked {
    /// As the inbound log stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Asked::Stop => "stop",
            Asked::Start => "start",
            Asked::Help => "help",
            Asked::Book(_) => "book",
            Asked::Unclear => "unclear",
        }
    }
}

/// The opt-out keywords: the CTIA's, and French, German and Spanish ones.
const STOP: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "ARRET",
    "STOPP",
    "BAJA",
    "PARAR",
];
const START: &[&str] = &["START", "UNSTOP"];
const HELP: &[&str] = &["HELP", "INFO", "AIDE", "HILFE", "AYUDA"];
/// A yes, in the shipped languages: books the first slot offered.
const YES: &[&str] = &["YES", "Y", "OUI", "JA", "SI"];

/// What `text` asks: the whole text, as one word or number, once case, accents, spaces and
/// punctuation around it are set aside.
pub fn read(text: &str) -> Asked {
    let word = normalise(text);
    if word.is_empty() {
        return Asked::Unclear;
    }
    if STOP.contains(&word.as_str()) {
        return Asked::Stop;
    }
    if START.contains(&word.as_str()) {
        return Asked::Start;
    }
    if HELP.contains(&word.as_str()) {
        return Asked::Help;
    }
    if YES.contains(&word.as_str()) {
        return Asked::Book(1);
    }
    match word.parse::<usize>() {
        Ok(n @ 1..=99) if !word.starts_with('0') => Asked::Book(n),
        _ => Asked::Unclear,
    }
}

/// Upper case, accents dropped (the keywords are written without), and everything but letters
/// and digits trimmed from both ends; a text of several words stays several words.
fn normalise(text: &str) -> String {
    text.trim_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'À' | 'Á' | 'Â' | 'Ä' => 'A',
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'E',
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
            'ò' | 'ó' | 'ô' | 'ö' | 'Ò' | 'Ó' | 'Ô' | 'Ö' => 'O',
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
            other => other.to_ascii_uppercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carriers_keywords_are_read_in_every_language_and_any_case() {
        for stop in [
            "STOP",
            "stop",
            " Stop. ",
            "Arrêt",
            "ARRET",
            "stopp",
            "Baja",
            "unsubscribe",
        ] {
            assert_eq!(read(stop), Asked::Stop, "{stop}");
        }
        for start in ["START", "start!", "Unstop"] {
            assert_eq!(read(start), Asked::Start, "{start}");
        }
        for help in ["HELP", "help?", "Aide", "Hilfe", "ayuda", "INFO"] {
            assert_eq!(read(help), Asked::Help, "{help}");
        }
    }

    #[test]
    fn a_yes_books_the_first_slot_and_a_number_its_slot() {
        for yes in ["YES", "yes", "Y", "oui", "Oui !", "JA", "sí", "SI"] {
            assert_eq!(read(yes), Asked::Book(1), "{yes}");
        }
        assert_eq!(read("1"), Asked::Book(1));
        assert_eq!(read(" 2 "), Asked::Book(2));
        assert_eq!(read("#3"), Asked::Book(3));
    }

    #[test]
    fn anything_else_is_unclear_and_never_books() {
        for unclear in [
            "",
            "   ",
            "0",
            "01",
            "100",
            "yes please",
            "yeah, I'll take it",
            "1 2",
            "stop it",
            "no",
            "1.5",
        ] {
            assert_eq!(read(unclear), Asked::Unclear, "{unclear:?}");
        }
    }
}
