//! The words patients read, in their language.
//!
//! Everything a patient is sent or shown comes from the Fluent catalogues in `locales/`, one
//! folder per language (`locales/fr/*.ftl`), embedded at compile time; the languages are the
//! folders found there. A patient's `locale` (BCP 47) is negotiated once into a [`Locale`]:
//! `fr-CA` falls back to `fr`, and anything unknown to English.
//!
//! # Layout
//! - `lib.rs`: the catalogues, negotiation and lookup ([`Locale`]).
//! - `format.rs`: dates, times and amounts from CLDR data (ICU4X), in the patient's conventions.
//! - `helper.rs`: the `{{t "key" arg=value}}` handlebars helper, escaping as its registry does.

mod format;
mod helper;

use std::{borrow::Cow, collections::HashMap, str::FromStr, sync::LazyLock};

pub use fluent_templates::LanguageIdentifier;
use fluent_templates::{Loader, fluent_bundle::FluentValue};
pub use helper::TranslateHelper;

fluent_templates::static_loader! {
    static CATALOGUES = {
        locales: "./locales",
        fallback_language: "en",
        // Bidi isolation marks are for mixed-direction text; in these scripts they would only
        // end up as stray characters in emails.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The language everything falls back to.
pub const FALLBACK: &str = "en";

/// An argument of a message: text, or a number that also picks the plural form.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Number(f64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Arg::Number(n as f64)
    }
}

/// Why a message could not be found: its id is in no catalogue, not even English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no message {0:?} in the catalogues")]
pub struct MissingMessage(pub String);

/// A shipped language chosen for a patient, and the regional conventions their dates and
/// amounts follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale {
    language: LanguageIdentifier,
    /// The patient's own tag when it parses (`fr-CA` keeps Canadian conventions), else the
    /// catalogue's default region for the language.
    conventions: icu_locale_core::Locale,
}

impl Default for Locale {
    fn default() -> Self {
        Self::negotiate(FALLBACK)
    }
}

impl Locale {
    /// The shipped language that best serves `tag`: the same tag, else the same language
    /// (`fr-CA` → `fr`), else English. Never fails: any input gets a language.
    pub fn negotiate(tag: &str) -> Self {
        let requested = LanguageIdentifier::from_str(tag.trim()).ok();
        let shipped = &*SHIPPED;
        let language = requested
            .as_ref()
            .and_then(|wanted| {
                shipped
                    .iter()
                    .find(|l| *l == wanted)
                    .or_else(|| {
                        shipped
                            .iter()
                            .find(|l| l.language == wanted.language && l.region.is_none())
                    })
                    .or_else(|| shipped.iter().find(|l| l.language == wanted.language))
            })
            .cloned()
            .unwrap_or_else(fallback);
        let regional = requested
            .filter(|r| r.language == language.language && r.region.is_some())
            .and_then(|r| icu_locale_core::Locale::try_from_str(&r.to_string()).ok());
        let conventions = regional.unwrap_or_else(|| {
            // The catalogue says which region's conventions a bare language follows.
            let tag = CATALOGUES
                .try_lookup(&language, "format-locale")
                .unwrap_or_else(|| language.to_string());
            icu_locale_core::Locale::try_from_str(&tag).unwrap_or(icu_locale_core::Locale::UNKNOWN)
        });
        Self {
            language,
            conventions,
        }
    }

    /// [`Locale::negotiate`] for a tag that is most often a shipped language's own (`fr`), as
    /// templates give it: looked up, not negotiated again.
    pub fn of_tag(tag: &str) -> Cow<'static, Locale> {
        match BY_TAG.get(tag) {
            Some(locale) => Cow::Borrowed(locale),
            None => Cow::Owned(Self::negotiate(tag)),
        }
    }

    /// The BCP 47 tag of the language in effect (`fr`), as `<html lang>` and APIs show it.
    pub fn tag(&self) -> String {
        self.language.to_string()
    }

    /// The message `id` with `args`, in this language or else in English.
    pub fn message(&self, id: &str, args: &[(&str, Arg)]) -> Result<String, MissingMessage> {
        let args: HashMap<Cow<'static, str>, FluentValue<'static>> = args
            .iter()
            .map(|(name, arg)| {
                let value = match arg {
                    Arg::Text(s) => FluentValue::from(s.clone()),
                    Arg::Number(n) => FluentValue::from(*n),
                };
                (Cow::Owned((*name).to_owned()), value)
            })
            .collect();
        CATALOGUES
            .try_lookup_with_args(&self.language, id, &args)
            .ok_or_else(|| MissingMessage(id.to_owned()))
    }

    /// The message `id` without arguments; the id itself when no catalogue has it, which the
    /// catalogue tests rule out for the ids the services use.
    pub fn text(&self, id: &str) -> String {
        self.message(id, &[]).unwrap_or_else(|e| e.0)
    }

    /// The message `id` with `args`; the id itself when no catalogue has it.
    pub fn text_with(&self, id: &str, args: &[(&str, Arg)]) -> String {
        self.message(id, args).unwrap_or_else(|e| e.0)
    }
}

/// The shipped languages: the folders of `locales/`, English first.
pub fn languages() -> Vec<LanguageIdentifier> {
    SHIPPED.clone()
}

/// [`languages`], listed once: every negotiation reads them.
static SHIPPED: LazyLock<Vec<LanguageIdentifier>> = LazyLock::new(|| {
    let mut all: Vec<LanguageIdentifier> = CATALOGUES.locales().cloned().collect();
    all.sort_by_key(|l| {
        let tag = l.to_string();
        (tag != FALLBACK, tag)
    });
    all
});

/// Each shipped language by its tag, negotiated once: a template asks for one on every message
/// it writes, by the tag of the language already chosen.
static BY_TAG: LazyLock<HashMap<String, Locale>> = LazyLock::new(|| {
    SHIPPED
        .iter()
        .map(|l| {
            let tag = l.to_string();
            let locale = Locale::negotiate(&tag);
            (tag, locale)
        })
        .collect()
});

fn fallback() -> LanguageIdentifier {
    LanguageIdentifier::from_str(FALLBACK).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeMap, BTreeSet},
        path::Path,
    };

    use super::*;

    /// The message ids of each language folder, read from the files as shipped.
    fn ids_by_language() -> BTreeMap<String, BTreeSet<String>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let mut all = BTreeMap::new();
        for dir in std::fs::read_dir(root).unwrap().flatten() {
            let mut ids = BTreeSet::new();
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let text = std::fs::read_to_string(file.path()).unwrap();
                for line in text.lines() {
                    // A message starts a line with its id and `=`; terms start with `-`.
                    if let Some((id, _)) = line.split_once('=') {
                        let id = id.trim_end();
                        if !line.starts_with([' ', '#', '-', '\t'])
                            && !id.is_empty()
                            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        {
                            ids.insert(id.to_owned());
                        }
                    }
                }
            }
            all.insert(dir.file_name().to_string_lossy().into_owned(), ids);
        }
        all
    }

    #[test]
    fn every_language_has_exactly_the_english_messages() {
        let all = ids_by_language();
        let english = &all[FALLBACK];
        assert!(english.len() > 20, "{english:?}");
        for (language, ids) in &all {
            let missing: Vec<_> = english.difference(ids).collect();
            let extra: Vec<_> = ids.difference(english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{language}: missing {missing:?}, not in English {extra:?}"
            );
        }
    }

    #[test]
    fn the_shipped_languages_are_the_folders_english_first() {
        let tags: Vec<String> = languages().iter().map(|l| l.to_string()).collect();
        assert_eq!(tags[0], FALLBACK);
        let mut sorted = tags.clone();
        sorted.sort();
        let folders: Vec<String> = ids_by_language().into_keys().collect();
        assert_eq!(sorted, folders);
        for shipped in ["en", "fr", "de", "es"] {
            assert!(tags.iter().any(|t| t == shipped), "{shipped} in {tags:?}");
        }
    }

    #[test]
    fn a_regional_tag_falls_back_to_its_language_then_to_english() {
        assert_eq!(Locale::negotiate("fr-CA").tag(), "fr");
        assert_eq!(Locale::negotiate("fr").tag(), "fr");
        assert_eq!(Locale::negotiate("de-AT").tag(), "de");
        assert_eq!(Locale::negotiate("es-419").tag(), "es");
        assert_eq!(Locale::negotiate("pt-BR").tag(), "en");
        assert_eq!(Locale::negotiate("").tag(), "en");
        assert_eq!(Locale::negotiate("not a tag!").tag(), "en");
        assert_eq!(Locale::negotiate("en-US").tag(), "en");
    }

    #[test]
    fn plurals_follow_each_language() {
        let fr = Locale::negotiate("fr");
        assert_eq!(
            fr.text_with("inapp-body", &[("count", 1usize.into())]),
            "1 créneau est disponible. Réservez-le en un clic."
        );
        assert!(
            fr.text_with("inapp-body", &[("count", 3usize.into())])
                .starts_with("3 créneaux sont disponibles.")
        );
        let en = Locale::negotiate("en");
        assert!(
            en.text_with("inapp-body", &[("count", 1usize.into())])
                .starts_with("1 time is available.")
        );
    }

    #[test]
    fn messages_carry_no_bidi_isolation_marks() {
        let de = Locale::negotiate("de");
        let title = de.text_with("inapp-title-new", &[("practitioner", "Dr. Ada".into())]);
        assert!(!title.contains(['\u{2068}', '\u{2069}']), "{title:?}");
        assert!(title.contains("Dr. Ada"), "{title}");
    }

    #[test]
    fn a_missing_message_is_an_error_not_a_blank() {
        assert_eq!(
            Locale::negotiate("fr").message("no-such-message", &[]),
            Err(MissingMessage("no-such-message".to_owned()))
        );
    }
}
