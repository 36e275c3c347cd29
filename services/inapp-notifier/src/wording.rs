//! The English words of a notification. Only practitioner names go in; patients' data never.

use slotcast_events::WaitKind;

/// "New appointment times with Dr X" or, for a patient moving up, "Earlier appointment times
/// with Dr X".
pub fn title(reason: WaitKind, practitioner_name: &str) -> String {
    let kind = match reason {
        WaitKind::New => "New",
        WaitKind::MoveUp => "Earlier",
    };
    format!(
        "{kind} appointment times with {}",
        doctor(practitioner_name)
    )
}

/// "2 times are available. Book one in a click."
pub fn body(slots: usize) -> String {
    if slots == 1 {
        "1 time is available. Book it in a click.".to_owned()
    } else {
        format!("{slots} times are available. Book one in a click.")
    }
}

/// The name with "Dr " in front, unless it already has a title.
fn doctor(name: &str) -> String {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("dr ") || lower.starts_with("dr. ") {
        name.to_owned()
    } else {
        format!("Dr {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_doctor_once_and_says_why() {
        assert_eq!(
            title(WaitKind::New, "Alice Martin"),
            "New appointment times with Dr Alice Martin"
        );
        assert_eq!(
            title(WaitKind::MoveUp, "Dr. Bob Lee"),
            "Earlier appointment times with Dr. Bob Lee"
        );
        assert_eq!(
            title(WaitKind::New, "dr Who"),
            "New appointment times with dr Who"
        );
        assert_eq!(
            title(WaitKind::New, "Drake Ramoray"),
            "New appointment times with Dr Drake Ramoray"
        );
    }

    #[test]
    fn the_body_counts_the_times() {
        assert_eq!(body(2), "2 times are available. Book one in a click.");
        assert_eq!(body(1), "1 time is available. Book it in a click.");
    }
}
