//! Composing the email of a notification: its rendered text and HTML as one MIME message, with
//! a Message-ID of the notification's own (a re-send after a crash folds into the first in many
//! mail clients) and RFC 8058 one-click unsubscribe headers. No database, no network.

use lettre::{
    Message,
    message::{
        Attachment, Mailbox, MultiPart, SinglePart,
        header::{ContentType, HeaderName, HeaderValue},
    },
};
use slotcast_calendar::Method;
use slotcast_events::{AppointmentConfirmation, NotifyPatient};
use uuid::Uuid;

use crate::render::RenderedEmail;

/// The Message-ID of a notification's email, the same for every attempt.
pub fn message_id(notification_id: Uuid) -> String {
    format!("<{notification_id}@slotcast>")
}

/// The email of `notify`, from `from`, with its `rendered` parts; or why it cannot be sent (the
/// reason names no address).
pub fn compose(
    from: &Mailbox,
    notify: &NotifyPatient,
    rendered: RenderedEmail,
) -> Result<Message, String> {
    let Some(address) = slotcast_kit::email::address(&notify.patient.email) else {
        return Err("the patient's email address is not valid".to_owned());
    };
    let to = Mailbox::new(Some(notify.patient.name.clone()), address);
    let mut builder = Message::builder()
        .message_id(Some(message_id(notify.notification_id)))
        .from(from.clone())
        .to(to)
        .subject(rendered.subject);
    if let Some(url) = &notify.unsubscribe_url {
        // RFC 8058 one-click unsubscribe: the mail client POSTs `List-Unsubscribe=One-Click` to
        // the URL, no login needed.
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// The email confirming `confirmation`, from `from`, with its `rendered` parts and its calendar
/// entry (`calendar`, written with `method`): inline as a `text/calendar` alternative, which
/// mail clients that handle invitations read, and as an `.ics` attachment for the others.
pub fn compose_confirmation(
    from: &Mailbox,
    confirmation: &AppointmentConfirmation,
    rendered: RenderedEmail,
    calendar: String,
    method: Method,
) -> Result<Message, String> {
    let Some(address) = slotcast_kit::email::address(&confirmation.patient.email) else {
        return Err("the patient's email address is not valid".to_owned());
    };
    let to = Mailbox::new(Some(confirmation.patient.name.clone()), address);
    let calendar_type = ContentType::parse(&format!(
        "text/calendar; charset=utf-8; method={}",
        method.as_str()
    ))
    .map_err(|e| format!("cannot build the calendar part: {e}"))?;
    let ics_type = ContentType::parse("application/ics; name=\"appointment.ics\"")
        .map_err(|e| format!("cannot build the calendar attachment: {e}"))?;
    let body = MultiPart::mixed()
        .multipart(
            MultiPart::alternative_plain_html(rendered.text, rendered.html).singlepart(
                SinglePart::builder()
                    .header(calendar_type)
                    .body(calendar.clone()),
            ),
        )
        .singlepart(Attachment::new("appointment.ics".to_owned()).body(calendar, ics_type));
    Message::builder()
        .message_id(Some(message_id(confirmation.confirmation_id)))
        .from(from.clone())
        .to(to)
        .subject(rendered.subject)
        .multipart(body)
        .map_err(|e| format!("cannot build the message: {e}"))
}

#[cfg(test)]
mod tests {
    use slotcast_events::WaitKind;

    use super::*;

    fn notify(email: &str, unsubscribe_url: Option<&str>) -> NotifyPatient {
        let mut n = crate::render::tests::notify(WaitKind::New, "Grace", None, "Europe/Paris");
        n.patient.email = email.to_owned();
        n.unsubscribe_url = unsubscribe_url.map(str::to_owned);
        n
    }

    fn rendered() -> RenderedEmail {
        RenderedEmail {
            subject: "A time with Dr Ada Lovelace".to_owned(),
            text: "text part".to_owned(),
            html: "<p>html part</p>".to_owned(),
        }
    }

    fn from() -> Mailbox {
        "slotcast <no-reply@slotcast.localhost>".parse().unwrap()
    }

    #[test]
    fn the_email_has_the_notifications_message_id_both_parts_and_one_click_unsubscribe() {
        let n = notify(
            "grace@example.com",
            Some("https://book.example/v1/unsubscribe/t"),
        );
        let message = compose(&from(), &n, rendered()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: {}", message_id(n.notification_id))),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe: <https://book.example/v1/unsubscribe/t>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("text part") && text.contains("html part"),
            "{text}"
        );
        assert_eq!(message.envelope().to()[0].to_string(), "grace@example.com");
    }

    #[test]
    fn a_confirmation_carries_its_calendar_entry_inline_and_attached() {
        use slotcast_events::ConfirmationKind;
        let c = crate::render::tests::confirmation(ConfirmationKind::Cancelled, "en");
        let calendar = "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n".to_owned();
        let message =
            compose_confirmation(&from(), &c, rendered(), calendar, Method::Cancel).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: {}", message_id(c.confirmation_id))),
            "{text}"
        );
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("Content-Type: text/calendar; charset=utf-8; method=CANCEL"),
            "{text}"
        );
        assert!(text.contains("filename=\"appointment.ics\""), "{text}");
        assert!(!text.contains("List-Unsubscribe"), "{text}");
    }

    #[test]
    fn without_an_unsubscribe_link_there_is_no_unsubscribe_header() {
        let message = compose(&from(), &notify("grace@example.com", None), rendered()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(!text.contains("List-Unsubscribe"), "{text}");
    }

    #[test]
    fn an_invalid_address_is_refused_without_quoting_it() {
        let refused =
            compose(&from(), &notify("grace@@example.com", None), rendered()).unwrap_err();
        assert!(!refused.contains("grace"), "{refused}");
    }
}
