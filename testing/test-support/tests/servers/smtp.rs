use std::time::Duration;

use anyhow::{Context as _, bail};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use slotcast_test_support::{ReplyMode, SmtpServer, init_tracing};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WAIT: Duration = Duration::from_secs(5);

/// An SMTP client conversation typed out by hand.
struct Conversation {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Conversation {
    /// Connects and returns the greeting.
    async fn open(server: &SmtpServer) -> anyhow::Result<(Self, String)> {
        let (reader, writer) = TcpStream::connect(("127.0.0.1", server.port()))
            .await?
            .into_split();
        let mut conversation = Self {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = conversation.reply().await?;
        Ok((conversation, greeting))
    }

    /// Sends one line and returns the (possibly multi-line) reply.
    async fn say(&mut self, line: &str) -> anyhow::Result<String> {
        self.send(&format!("{line}\r\n")).await?;
        self.reply().await
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        Ok(())
    }

    /// One reply; the lines of a multi-line reply are joined with `\n`.
    async fn reply(&mut self) -> anyhow::Result<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(WAIT, self.reader.read_line(&mut line)).await??;
            if read == 0 {
                bail!("connection closed after {lines:?}");
            }
            let line = line.strip_suffix("\r\n").context("reply without CRLF")?;
            lines.push(line.to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(lines.join("\n"));
            }
        }
    }
}

fn assert_code(reply: &str, code: &str) {
    assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
}

#[tokio::test]
async fn a_message_typed_over_raw_smtp_is_captured_with_dot_stuffing_undone() -> anyhow::Result<()>
{
    init_tracing();
    let server = SmtpServer::start().await?;
    assert_eq!(server.url(), format!("smtp://127.0.0.1:{}", server.port()));
    let (mut smtp, greeting) = Conversation::open(&server).await?;
    assert_code(&greeting, "220 ");

    let ehlo = smtp.say("EHLO client.test").await?;
    let lines: Vec<&str> = ehlo.lines().collect();
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("250-")),
        "{ehlo}"
    );
    assert_code(lines[lines.len() - 1], "250 ");
    for extension in ["PIPELINING", "8BITMIME", "SMTPUTF8"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );

    assert_code(
        &smtp
            .say("MAIL FROM:<noreply@slotcast.test> BODY=8BITMIME")
            .await?,
        "250 ",
    );
    assert_code(&smtp.say("RCPT TO:<ann@example.com>").await?, "250 ");
    assert_code(&smtp.say("RCPT TO:<bob@example.com>").await?, "250 ");
    assert_code(&smtp.say("DATA").await?, "354 ");
    smtp.send("Subject: Your slot\r\n\r\n..leading dot\r\n..\r\nlast line\r\n.\r\n")
        .await?;
    assert_code(&smtp.reply().await?, "250 ");

    assert_code(&smtp.say("NOOP").await?, "250 ");
    assert_code(&smtp.say("RSET").await?, "250 ");
    // A second message on the same connection, its envelope pipelined in one write.
    smtp.send("MAIL FROM:<>\r\nRCPT TO:<cid@example.com>\r\nDATA\r\n")
        .await?;
    assert_code(&smtp.reply().await?, "250 ");
    assert_code(&smtp.reply().await?, "250 ");
    assert_code(&smtp.reply().await?, "354 ");
    smtp.send("Subject: second\r\n\r\nhello\r\n.\r\n").await?;
    assert_code(&smtp.reply().await?, "250 ");
    assert_code(&smtp.say("QUIT").await?, "221 ");

    let mails = server.wait_for_messages(2, WAIT).await?;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].from, "noreply@slotcast.test");
    assert_eq!(mails[0].to, ["ann@example.com", "bob@example.com"]);
    assert_eq!(
        mails[0].data,
        "Subject: Your slot\r\n\r\n.leading dot\r\n.\r\nlast line\r\n"
    );
    assert_eq!(mails[0].header("subject").as_deref(), Some("Your slot"));
    assert_eq!(mails[0].body_text(), ".leading dot\n.\nlast line\n");
    assert_eq!(mails[1].from, "");
    assert_eq!(mails[1].to, ["cid@example.com"]);
    assert_eq!(mails[1].body_text(), "hello\n");
    Ok(())
}

#[tokio::test]
async fn commands_out_of_order_are_refused() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let (mut smtp, _) = Conversation::open(&server).await?;
    assert_code(&smtp.say("HELO client.test").await?, "250 ");
    assert_code(&smtp.say("RCPT TO:<ann@example.com>").await?, "503 ");
    assert_code(&smtp.say("DATA").await?, "503 ");
    assert_code(&smtp.say("MAIL FROM:<a@example.com>").await?, "250 ");
    assert_code(&smtp.say("MAIL FROM:<a@example.com>").await?, "503 ");
    assert_code(&smtp.say("DATA").await?, "554 ");
    assert_code(&smtp.say("STARTTLS").await?, "502 ");
    assert_code(&smtp.say("AUTH PLAIN AGFiYwBkZWY=").await?, "502 ");
    assert_code(&smtp.say("WHAT").await?, "500 ");
    assert_code(&smtp.say("QUIT").await?, "221 ");
    assert!(server.messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn temp_fail_answers_451_after_the_data_and_captures_nothing() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let (mut smtp, _) = Conversation::open(&server).await?;
    assert_code(&smtp.say("EHLO client.test").await?, "250");
    server.set_reply(ReplyMode::TempFail);

    assert_code(&smtp.say("MAIL FROM:<a@example.com>").await?, "250 ");
    assert_code(&smtp.say("RCPT TO:<ann@example.com>").await?, "250 ");
    assert_code(&smtp.say("DATA").await?, "354 ");
    let refused = smtp.say("Subject: x\r\n\r\nbody\r\n.").await?;
    assert_eq!(refused, "451 4.3.0 try again later");
    assert!(server.messages().is_empty());

    // Back to accepting: the next transaction on the same connection goes through.
    server.set_reply(ReplyMode::Accept);
    assert_code(&smtp.say("MAIL FROM:<a@example.com>").await?, "250 ");
    assert_code(&smtp.say("RCPT TO:<ann@example.com>").await?, "250 ");
    assert_code(&smtp.say("DATA").await?, "354 ");
    assert_code(&smtp.say("Subject: x\r\n\r\nbody\r\n.").await?, "250 ");
    assert_eq!(server.wait_for_messages(1, WAIT).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rejected_recipient_gets_550_and_the_others_get_the_mail() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    server.set_reply(ReplyMode::RejectRecipient("gone@example.com".into()));
    let (mut smtp, _) = Conversation::open(&server).await?;
    assert_code(&smtp.say("EHLO client.test").await?, "250");
    assert_code(&smtp.say("MAIL FROM:<a@example.com>").await?, "250 ");
    assert_code(&smtp.say("RCPT TO:<Gone@Example.com>").await?, "550 5.1.1 ");
    assert_code(&smtp.say("RCPT TO:<ann@example.com>").await?, "250 ");
    assert_code(&smtp.say("DATA").await?, "354 ");
    assert_code(&smtp.say("Subject: x\r\n\r\nbody\r\n.").await?, "250 ");

    let mails = server.wait_for_messages(1, WAIT).await?;
    assert_eq!(mails[0].to, ["ann@example.com"]);
    Ok(())
}

#[tokio::test]
async fn waiting_for_mail_that_never_comes_says_how_many_arrived() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let error = server
        .wait_for_messages(1, Duration::from_millis(100))
        .await
        .err()
        .context("no mail was sent, yet the wait succeeded")?;
    assert!(error.to_string().contains("0 arrived"), "{error}");
    Ok(())
}

fn offer_mail(to: &str, url: &str) -> anyhow::Result<Message> {
    let plain = format!(
        "Grüße! A slot opened up. Accept it within 15 minutes: {url}\nThis is a long line so that it must be wrapped."
    );
    let html = format!("<p>Grüße! <a href=\"{url}\">Accept the slot</a></p>");
    let plain = Body::new_with_encoding(plain, ContentTransferEncoding::QuotedPrintable)
        .map_err(|_| anyhow::anyhow!("cannot encode the plain part"))?;
    let html = Body::new_with_encoding(html, ContentTransferEncoding::Base64)
        .map_err(|_| anyhow::anyhow!("cannot encode the HTML part"))?;
    Ok(Message::builder()
        .from("Slotcast <noreply@slotcast.test>".parse()?)
        .to(to.parse()?)
        .subject("Ihr Termin am Montag – ein Platz ist frei geworden, bitte bestätigen")
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(plain),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )?)
}

#[tokio::test]
async fn lettre_delivers_pooled_mail_that_decodes_back_to_its_text() -> anyhow::Result<()> {
    init_tracing();
    let server = SmtpServer::start().await?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?.build();
    let url = "https://slotcast.test/offers/0b6c7e52-8f0e-4d0c-9a55-2a1c4f3e9d11/accept?token=abc=def&x=1";

    for to in ["ann@example.com", "bob@example.com", "cid@example.com"] {
        mailer.send(offer_mail(to, url)?).await?;
    }

    let mails = server.wait_for_messages(3, WAIT).await?;
    assert_eq!(mails[2].to, ["cid@example.com"]);
    assert_eq!(mails[0].from, "noreply@slotcast.test");
    let mail = &mails[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Ihr Termin am Montag – ein Platz ist frei geworden, bitte bestätigen")
    );
    assert_eq!(mail.header("to").as_deref(), Some("ann@example.com"));
    assert!(
        !mail.data.contains(url),
        "the test should exercise decoding"
    );
    let text = mail.body_text();
    assert!(
        text.contains(&format!("Accept it within 15 minutes: {url}")),
        "{text}"
    );
    assert!(text.contains(&format!("<a href=\"{url}\">")), "{text}");
    assert!(text.contains("Grüße!"), "{text}");
    Ok(())
}

#[tokio::test]
async fn lettre_sees_temp_fail_as_transient_and_a_rejected_recipient_as_permanent()
-> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?.build();
    let url = "https://slotcast.test/x";

    server.set_reply(ReplyMode::TempFail);
    let error = mailer
        .send(offer_mail("ann@example.com", url)?)
        .await
        .err()
        .context("TempFail accepted the mail")?;
    assert!(error.is_transient(), "{error}");

    server.set_reply(ReplyMode::RejectRecipient("ann@example.com".into()));
    let error = mailer
        .send(offer_mail("ann@example.com", url)?)
        .await
        .err()
        .context("the rejected recipient got the mail")?;
    assert!(error.is_permanent(), "{error}");

    server.set_reply(ReplyMode::Accept);
    mailer.send(offer_mail("ann@example.com", url)?).await?;
    assert_eq!(server.wait_for_messages(1, WAIT).await?.len(), 1);
    Ok(())
}
