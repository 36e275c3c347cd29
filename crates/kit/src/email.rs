//! The one check of an email address, the same where the API accepts a patient's address and
//! where the email notifier sends to it: an address accepted with a 201 can be sent to.

use std::str::FromStr as _;

/// `value`, trimmed, if it is an address the email notifier can send to: lettre's parser (the
/// notifier's), at most 254 characters with a local part of at most 64 (RFC 5321), and a domain
/// with a dot (no bare host names).
pub fn address(value: &str) -> Option<lettre::Address> {
    let v = value.trim();
    let parsed = lettre::Address::from_str(v).ok()?;
    let fits = v.len() <= 254 && parsed.user().len() <= 64;
    let domain = parsed.domain();
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    (fits && dotted).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_notifier_cannot_send_to_is_refused() {
        assert_eq!(
            address(" grace@example.com ").map(|a| a.to_string()),
            Some("grace@example.com".to_owned())
        );
        for bad in [
            "",
            "a",
            "a@b",
            "a b@c.d",
            "@c.d",
            "a@.d",
            "a@b.c,",
            "two@@example.test",
            "a..b@example.test",
            "victim@clinic.test@attacker.test",
            "<a@b.example>",
            "Name <a@b.example>",
        ] {
            assert!(address(bad).is_none(), "{bad}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(address(&long_local).is_none());
    }
}
