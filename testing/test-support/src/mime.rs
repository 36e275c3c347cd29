//! Just enough MIME (RFC 2045-2047) to read captured mail in tests: unfolded and decoded
//! headers, and the decoded text of `text/*` parts. Best effort: what does not parse is kept.

/// Nested multiparts deeper than this are not looked into.
const MAX_DEPTH: usize = 16;

/// The first header `name` of `message`, unfolded, with encoded words decoded.
pub(crate) fn header(message: &str, name: &str) -> Option<String> {
    let (head, _) = split_entity(message);
    raw_header(head, name).map(|value| decode_encoded_words(&value))
}

/// The decoded text of every `text/*` part of `message`, joined by newlines, LF line endings.
pub(crate) fn body_text(message: &str) -> String {
    let mut texts = Vec::new();
    collect_text(message, &mut texts, 0);
    texts.join("\n")
}

/// A leaf part of a message: its media type and parameters (lower-case names), its
/// `Content-Disposition`, and its body decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `text/calendar`, lower case.
    pub mime_type: String,
    pub params: Vec<(String, String)>,
    pub disposition: Option<String>,
    pub text: String,
}

impl Part {
    /// The parameter `name` of its `Content-Type` (`method`, `charset`...).
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// Every leaf part of `message`, multiparts walked in order, bodies decoded.
pub(crate) fn parts(message: &str) -> Vec<Part> {
    let mut out = Vec::new();
    collect_parts(message, &mut out, 0);
    out
}

fn collect_parts(entity: &str, out: &mut Vec<Part>, depth: usize) {
    let (head, body) = split_entity(entity);
    let content_type = raw_header(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let (mime_type, params) = parse_content_type(&content_type);
    if mime_type.starts_with("multipart/") {
        if let Some(boundary) = param(&params, "boundary")
            && depth < MAX_DEPTH
        {
            for part in split_multipart(body, boundary) {
                collect_parts(&part, out, depth + 1);
            }
        }
        return;
    }
    let text = decode_body(head, body, &params);
    out.push(Part {
        disposition: raw_header(head, "Content-Disposition"),
        mime_type,
        params,
        text,
    });
}

fn collect_text(entity: &str, texts: &mut Vec<String>, depth: usize) {
    let (head, body) = split_entity(entity);
    let content_type = raw_header(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let (mime_type, params) = parse_content_type(&content_type);
    if mime_type.starts_with("multipart/") {
        if let Some(boundary) = param(&params, "boundary")
            && depth < MAX_DEPTH
        {
            for part in split_multipart(body, boundary) {
                collect_text(&part, texts, depth + 1);
            }
        }
        return;
    }
    if mime_type == "message/rfc822" && depth < MAX_DEPTH {
        collect_text(body, texts, depth + 1);
        return;
    }
    if !mime_type.starts_with("text/") {
        return;
    }
    let text = decode_body(head, body, &params);
    texts.push(text.replace("\r\n", "\n"));
}

/// A leaf entity's body as text: its transfer encoding undone, then its charset.
fn decode_body(head: &str, body: &str, params: &[(String, String)]) -> String {
    let encoding = raw_header(head, "Content-Transfer-Encoding").unwrap_or_default();
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.as_bytes().to_vec(),
    };
    decode_charset(&bytes, param(params, "charset"))
}

/// Splits an entity into its header section and body at the first empty line.
fn split_entity(entity: &str) -> (&str, &str) {
    if let Some(body) = entity.strip_prefix("\r\n") {
        return ("", body);
    }
    if let Some(body) = entity.strip_prefix('\n') {
        return ("", body);
    }
    let crlf = entity.find("\r\n\r\n").map(|i| (i, i + 4));
    let lf = entity.find("\n\n").map(|i| (i, i + 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match split {
        Some((head_end, body_start)) => (&entity[..head_end], &entity[body_start..]),
        None => (entity, ""),
    }
}

/// The first header `name` (case-insensitive) in a header section, unfolded and trimmed.
fn raw_header(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            // Unfolding removes the line break and keeps the whitespace (RFC 5322 2.2.3).
            if let Some(value) = found.as_mut() {
                value.push_str(line);
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((field, value)) = line.split_once(':')
            && field.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.to_owned());
        }
    }
    found.map(|value| value.trim().to_owned())
}

/// `text/plain; charset="utf-8"` into the lowercase type and its parameters (names lowercase).
fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = split_unquoted(value, ';').into_iter();
    let mime_type = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = pieces
        .filter_map(|piece| {
            let (name, value) = piece.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), unquote(value.trim())))
        })
        .collect();
    (mime_type, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(param, _)| param == name)
        .map(|(_, value)| value.as_str())
}

fn split_unquoted(value: &str, separator: char) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            pieces.push(String::new());
            continue;
        }
        if let Some(piece) = pieces.last_mut() {
            piece.push(c);
        }
    }
    pieces
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// The parts between `--boundary` lines, up to `--boundary--`; preamble and epilogue dropped.
fn split_multipart(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delimiter.as_str()) {
            if rest.starts_with("--") {
                break;
            }
            if rest.trim().is_empty() {
                if let Some(part) = current.replace(Vec::new()) {
                    parts.push(part.join("\r\n"));
                }
                continue;
            }
        }
        if let Some(part) = current.as_mut() {
            part.push(line);
        }
    }
    if let Some(part) = current {
        parts.push(part.join("\r\n"));
    }
    parts
}

/// Decodes quoted-printable (RFC 2045 6.7): `=XX` escapes and `=` soft line breaks.
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Transport may add trailing whitespace; it is not part of the text.
        let line = line.trim_end_matches([' ', '\t']);
        let (line, soft_break) = match line.strip_suffix('=') {
            Some(line) => (line, true),
            None => (line, false),
        };
        unescape_hex(line.as_bytes(), false, &mut out);
        if !soft_break && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Appends `bytes` with `=XX` escapes decoded (and `_` as space for RFC 2047 Q encoding).
fn unescape_hex(bytes: &[u8], underscore_is_space: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'='
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            )
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(if underscore_is_space && byte == b'_' {
            b' '
        } else {
            byte
        });
        i += 1;
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes base64, skipping line breaks and anything else outside the alphabet.
fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    let latin1 = charset.is_some_and(|charset| {
        ["iso-8859-1", "iso8859-1", "latin1", "us-ascii"]
            .iter()
            .any(|name| charset.eq_ignore_ascii_case(name))
    });
    if latin1 {
        bytes.iter().map(|&byte| char::from(byte)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`); whitespace between
/// two adjacent encoded words is dropped, as the RFC says.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        match parse_encoded_word(&rest[start..]) {
            Some((decoded, length)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &rest[start + length..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The decoded text of the encoded word at the start of `text`, and its length.
fn parse_encoded_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let encoded = &after[..end];
    let plain = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    if !plain(charset) || encoding.len() != 1 || encoded.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(encoded),
        "Q" | "q" => {
            let mut bytes = Vec::with_capacity(encoded.len());
            unescape_hex(encoded.as_bytes(), true, &mut bytes);
            bytes
        }
        _ => return None,
    };
    // `after` is a suffix of `text`; the word ends after the `?=` that follows it.
    let length = text.len() - after.len() + end + 2;
    // RFC 2231 allows a language after the charset: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset);
    Some((decode_charset(&bytes, Some(charset)), length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_joins_soft_breaks_and_decodes_escapes() {
        let encoded = "Open https://example.com/offers/accept?token=3Dabc&slot=3D=\r\n42 now=\r\n.\r\nGr=C3=BC=C3=9Fe  \r\n";
        let decoded = String::from_utf8(decode_quoted_printable(encoded)).unwrap();
        assert_eq!(
            decoded,
            "Open https://example.com/offers/accept?token=abc&slot=42 now.\r\nGrüße\r\n"
        );
    }

    #[test]
    fn base64_ignores_line_breaks() {
        let encoded = "SGVsbG8s\r\nIFfDtnJs\r\nZCE=\r\n";
        assert_eq!(
            String::from_utf8(decode_base64(encoded)).unwrap(),
            "Hello, Wörld!"
        );
        assert_eq!(decode_base64("YQ=="), b"a");
        assert_eq!(decode_base64(""), b"");
    }

    #[test]
    fn folded_and_encoded_headers_are_read_back() {
        let message = "From: a@example.com\r\nSubject: =?utf-8?b?SWhyIFRlcm1pbg==?=\r\n =?utf-8?q?_am_Montag_=E2=80=93_best=C3=A4tigt?=\r\nX-Long: one\r\n\ttwo\r\n\r\nbody\r\n";
        assert_eq!(
            header(message, "subject").as_deref(),
            Some("Ihr Termin am Montag – bestätigt")
        );
        assert_eq!(header(message, "X-Long").as_deref(), Some("one\ttwo"));
        assert_eq!(header(message, "Missing"), None);
        // A header named like another one's value is not confused with it.
        assert_eq!(header(message, "body"), None);
    }

    #[test]
    fn text_parts_of_a_multipart_message_are_decoded_and_joined() {
        let message = concat!(
            "Subject: hi\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed;\r\n boundary=\"outer\"\r\n",
            "\r\n",
            "preamble\r\n",
            "--outer\r\n",
            "Content-Type: multipart/alternative; boundary=inner\r\n",
            "\r\n",
            "--inner\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "Gr=C3=BC=C3=9Fe, see https://example.com/a?b=3Dc\r\n",
            "--inner\r\n",
            "Content-Type: text/html; charset=utf-8\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "PHA+SGk8L3A+\r\n",
            "--inner--\r\n",
            "--outer\r\n",
            "Content-Type: image/png\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "iVBORw0KGgo=\r\n",
            "--outer\r\n",
            "Content-Type: text/plain; charset=iso-8859-1\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "caf=E9\r\n",
            "--outer--\r\n",
            "epilogue\r\n",
        );
        assert_eq!(
            body_text(message),
            "Grüße, see https://example.com/a?b=c\n<p>Hi</p>\ncafé"
        );
    }

    #[test]
    fn a_plain_message_without_mime_headers_is_its_body() {
        assert_eq!(
            body_text("Subject: x\r\n\r\nline 1\r\nline 2\r\n"),
            "line 1\nline 2\n"
        );
        assert_eq!(body_text("Subject: x\n\nunix\n"), "unix\n");
    }

    #[test]
    fn malformed_encoded_words_are_kept() {
        assert_eq!(decode_encoded_words("a =? b"), "a =? b");
        assert_eq!(decode_encoded_words("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
        assert_eq!(decode_encoded_words("x =?utf-8?q?y?= z"), "x y z");
    }
}
