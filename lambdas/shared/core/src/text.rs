//! Text from clients or upstreams quoted in messages and logs: escaped and bounded, so an
//! answer or a log line never carries more than a recognisable prefix of what was sent.

/// Longest piece of client text quoted back in a message, in characters.
pub const ECHO_CHARS: usize = 64;
/// Longest message or rejection detail, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 300;

/// Client text quoted in a message: in single quotes, escaped (control characters and quotes
/// as `\n`, `\u{1b}`, `\'`) and cut to [`ECHO_CHARS`] characters, so an answer or a log line
/// never carries more than a recognisable prefix of what was sent.
pub fn echo(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(ECHO_CHARS).saturating_add(2));
    out.push('\'');
    for (n, c) in text.chars().enumerate() {
        if n == ECHO_CHARS {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('\'');
    out
}

/// A message cut to [`MAX_MESSAGE_BYTES`] (at a character boundary), for whatever a message
/// built from library errors may quote.
pub fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
