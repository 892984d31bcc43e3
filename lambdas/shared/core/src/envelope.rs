//! The envelope browser sessions send and the detail that lands on the bus.

use std::cell::RefCell;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Who sent a request: the browser session and tab.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientInfo {
    pub app_version: String,
    pub session_id: String,
    pub tab_id: String,
    pub nonce: String,
}

/// A client timestamp in epoch milliseconds. Accepted as a number of milliseconds
/// (`Date.now()`) or an RFC 3339 string; always written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 timestamp")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom(format!("{v} is out of range for a timestamp")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).ok_or_else(|| {
                    E::custom(format!(
                        "'{v}' is not an RFC 3339 timestamp or epoch milliseconds"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; RFC3339_MAX];
        s.serialize_str(
            self.write_rfc3339(&mut buffer)
                .map_err(serde::ser::Error::custom)?,
        )
    }
}

/// Room for `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_MAX: usize = 24;

impl Timestamp {
    /// RFC 3339 in UTC: `2023-11-14T22:13:20Z`, with `.mmm` when the milliseconds are not
    /// zero, written into `buffer`. The calendar arithmetic is Howard Hinnant's
    /// `civil_from_days` (a test holds it to `time`'s over four centuries): `time`'s generic
    /// RFC 3339 formatter and its i128 date conversion were a measurable share of the forward
    /// hot path (README, "Benchmark and fuzzing").
    pub fn write_rfc3339(self, buffer: &mut [u8; RFC3339_MAX]) -> Result<&str, &'static str> {
        let seconds = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000) as u32;
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        // Days since 0000-03-01, split into 400-year eras of 146,097 days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let year = u32::try_from(year)
            .ok()
            .filter(|y| *y <= 9999)
            .ok_or("year outside 0000-9999")?;
        let (hour, minute, second) = (
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        let digits = |out: &mut [u8], mut value: u32| {
            for slot in out.iter_mut().rev() {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        digits(&mut buffer[0..4], year);
        buffer[4] = b'-';
        digits(&mut buffer[5..7], month);
        buffer[7] = b'-';
        digits(&mut buffer[8..10], day);
        buffer[10] = b'T';
        digits(&mut buffer[11..13], hour);
        buffer[13] = b':';
        digits(&mut buffer[14..16], minute);
        buffer[16] = b':';
        digits(&mut buffer[17..19], second);
        let len = match millis {
            0 => 19,
            ms => {
                buffer[19] = b'.';
                digits(&mut buffer[20..23], ms);
                23
            }
        };
        buffer[len] = b'Z';
        std::str::from_utf8(&buffer[..=len]).map_err(|_| "not UTF-8")
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buffer = [0u8; RFC3339_MAX];
        f.write_str(
            self.write_rfc3339(&mut buffer)
                .map_err(|_| std::fmt::Error)?,
        )
    }
}

/// The `detail` of a forwarded event on the bus. Consumers rely on this shape: change it only
/// with a new version of the consumer contract.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedDetail<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub schema_version: &'a str,
    /// Copied from `payload.tenantId` so rules can filter on `detail.tenantId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<&'a str>,
    pub session_id: &'a str,
    pub tab_id: &'a str,
    pub app_version: &'a str,
    pub client_ts: Timestamp,
    /// The payload as it leaves the session: the client's JSON text when redaction changed
    /// nothing, else the redacted payload re-encoded.
    pub payload: &'a RawValue,
    /// The client's meta object as sent (`{}` when absent).
    pub meta: &'a RawValue,
}

/// The per-event fields of a [`ForwardedDetail`] (the session's fields are the request's).
#[derive(Debug, Clone, Copy)]
pub struct DetailHead<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub schema_version: &'a str,
    pub tenant_id: Option<&'a str>,
    pub client_ts: Timestamp,
}

/// Writes the details of one request's events: exactly the bytes serde_json writes for a
/// [`ForwardedDetail`] (a test holds them equal), without serde's per-field machinery, and
/// with the session's fields encoded once per request instead of once per event.
#[derive(Debug, Clone)]
pub struct DetailWriter {
    /// `,"sessionId":…,"tabId":…,"appVersion":…,"clientTs":`
    session: String,
    /// The last second written, as `YYYY-MM-DDTHH:MM:SS`: a request's events are usually
    /// seconds apart at most, so the calendar arithmetic runs about once per request.
    second: RefCell<Option<(i64, String)>>,
}

impl DetailWriter {
    pub fn new(session_id: &str, tab_id: &str, app_version: &str) -> Self {
        let mut session = String::with_capacity(64 + session_id.len() + tab_id.len());
        session.push_str(",\"sessionId\":");
        write_json_str(&mut session, session_id);
        session.push_str(",\"tabId\":");
        write_json_str(&mut session, tab_id);
        session.push_str(",\"appVersion\":");
        write_json_str(&mut session, app_version);
        session.push_str(",\"clientTs\":");
        Self {
            session,
            second: RefCell::new(None),
        }
    }

    /// Appends one detail to `out`; `payload` appends the payload's JSON text, `meta` is the
    /// meta's JSON text (`{}` when absent).
    /// Fails only on a timestamp outside years 0000–9999.
    pub fn write(
        &self,
        out: &mut String,
        head: DetailHead<'_>,
        payload: impl FnOnce(&mut String),
        meta: Option<&str>,
    ) -> Result<(), &'static str> {
        out.push_str("{\"id\":");
        write_json_str(out, head.id);
        out.push_str(",\"topic\":");
        write_json_str(out, head.topic);
        out.push_str(",\"schemaVersion\":");
        write_json_str(out, head.schema_version);
        if let Some(tenant_id) = head.tenant_id {
            out.push_str(",\"tenantId\":");
            write_json_str(out, tenant_id);
        }
        out.push_str(&self.session);
        out.push('"');
        self.write_client_ts(out, head.client_ts)?;
        out.push_str("\",\"payload\":");
        payload(out);
        out.push_str(",\"meta\":");
        out.push_str(meta.unwrap_or("{}"));
        out.push('}');
        Ok(())
    }
}

impl DetailWriter {
    /// What [`Timestamp::write_rfc3339`] writes, with the date and time of day reused while
    /// the second stays the same.
    fn write_client_ts(&self, out: &mut String, ts: Timestamp) -> Result<(), &'static str> {
        let seconds = ts.0.div_euclid(1000);
        let millis = ts.0.rem_euclid(1000) as u32;
        let mut second = self.second.borrow_mut();
        match &*second {
            Some((cached, prefix)) if *cached == seconds => out.push_str(prefix),
            _ => {
                let whole = seconds.checked_mul(1000).ok_or("timestamp out of range")?;
                let mut buffer = [0u8; RFC3339_MAX];
                let prefix = &Timestamp(whole).write_rfc3339(&mut buffer)?[..19];
                out.push_str(prefix);
                *second = Some((seconds, prefix.to_owned()));
            }
        }
        if millis != 0 {
            out.push('.');
            for digit in [millis / 100, millis / 10 % 10, millis % 10] {
                out.push(char::from(b'0' + digit as u8));
            }
        }
        out.push('Z');
        Ok(())
    }
}

/// A JSON string literal, escaped as serde_json escapes (control characters, `"` and `\\`);
/// most strings need none and are copied as they are.
pub fn write_json_str(out: &mut String, s: &str) {
    if needs_escaping(s.as_bytes()) {
        out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether any byte is a control character, `"` or `\\`.
fn needs_escaping(bytes: &[u8]) -> bool {
    crate::scan::json_string_stop(bytes, 0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_accept_millis_and_rfc3339() {
        let a: Timestamp = serde_json::from_value(json!(1_700_000_000_123_i64)).unwrap();
        let b: Timestamp = serde_json::from_value(json!("2023-11-14T22:13:20.123Z")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            Timestamp(1_700_000_000_000).to_rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            Timestamp(1_700_000_000_100).to_rfc3339(),
            "2023-11-14T22:13:20.100Z"
        );
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339(&Timestamp(1_767_225_599_007).to_rfc3339()),
            Some(Timestamp(1_767_225_599_007))
        );
        let err = serde_json::from_value::<Timestamp>(json!("yesterday")).unwrap_err();
        assert!(
            err.to_string().contains("not an RFC 3339 timestamp"),
            "{err}"
        );
    }

    #[test]
    fn the_detail_writer_writes_what_serde_writes() {
        let writer = DetailWriter::new("sess-\"1\"", "tab\n1", "4.2.0");
        let meta = RawValue::from_string(r#"{"page": "/chat"}"#.to_owned()).unwrap();
        let payload =
            RawValue::from_string(r#"{"tenantId":"t\u00e9", "n": [1, 2]}"#.to_owned()).unwrap();
        let empty = RawValue::from_string("{}".to_owned()).unwrap();
        for (id, tenant_id, ts, meta) in [
            ("e1", Some("acme"), 1_767_225_600_123, Some(&*meta)),
            ("e\\2\u{1}", None, 1_767_225_600_000, None),
            ("é🦀", Some("t\"x"), 0, Some(&*meta)),
            // The same second again, with and without milliseconds, and before 1970.
            ("e3", None, 1_767_225_600_007, None),
            ("e4", None, 1_767_225_600_000, None),
            ("e5", None, -1, None),
            ("e6", None, -1_000, None),
        ] {
            let detail = ForwardedDetail {
                id,
                topic: "session.lifecycle.started",
                schema_version: "1.0.0",
                tenant_id,
                session_id: "sess-\"1\"",
                tab_id: "tab\n1",
                app_version: "4.2.0",
                client_ts: Timestamp(ts),
                payload: &payload,
                meta: meta.unwrap_or(&empty),
            };
            let head = DetailHead {
                id,
                topic: detail.topic,
                schema_version: detail.schema_version,
                tenant_id,
                client_ts: detail.client_ts,
            };
            let mut out = String::new();
            writer
                .write(
                    &mut out,
                    head,
                    |out| out.push_str(payload.get()),
                    meta.map(RawValue::get),
                )
                .unwrap();
            assert_eq!(out, serde_json::to_string(&detail).unwrap());
        }
        let mut out = String::new();
        let out_of_range = DetailHead {
            id: "e",
            topic: "t",
            schema_version: "1",
            tenant_id: None,
            client_ts: Timestamp(i64::MAX),
        };
        assert!(writer.write(&mut out, out_of_range, |_| {}, None).is_err());
    }

    #[test]
    fn rfc3339_dates_agree_with_the_time_crate() {
        // Every ~13 hours over four centuries (leap years, century rules), plus the edges.
        let step = 47_123_457_i64;
        let start = -2_208_988_800_000_i64; // 1900-01-01
        let end = 10_413_792_000_000_i64; // 2300-01-01
        let edges = [0, -1, 1, 253_402_300_799_999, -62_167_219_200_000];
        for ms in (start..end).step_by(step as usize).chain(edges) {
            let expected = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            // `time` writes fractions without trailing zeros; ours are always 3 digits.
            let ours = Timestamp(ms).to_rfc3339();
            assert_eq!(
                Timestamp::parse_rfc3339(&ours),
                Some(Timestamp(ms)),
                "{ours}"
            );
            assert_eq!(ours[..19], expected[..19], "{ms}");
        }
        let mut buffer = [0u8; RFC3339_MAX];
        assert!(
            Timestamp(253_402_300_800_000)
                .write_rfc3339(&mut buffer)
                .is_err()
        );
        assert!(
            Timestamp(-62_167_219_200_001)
                .write_rfc3339(&mut buffer)
                .is_err()
        );
    }

    #[test]
    fn strings_are_escaped_exactly_when_serde_would() {
        let mut samples: Vec<String> = (0u8..=0x7f)
            .map(|b| format!("abcdefgh{}ijklmnop", b as char))
            .collect();
        samples.extend((0u8..=0x7f).map(|b| (b as char).to_string()));
        // Every position of every length up to two words, so each byte of the padded last
        // word is covered.
        for len in 1..=17 {
            for at in 0..len {
                for c in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é'] {
                    let mut s: String = "a".repeat(at);
                    s.push(c);
                    s.push_str(&"a".repeat(len - at - 1));
                    samples.push(s);
                }
            }
        }
        samples.extend(
            [
                "",
                "plain-ascii-longer-than-eight",
                "é🦀 multi-byte ÿ",
                "\u{80}\u{ff}\u{7ff}",
            ]
            .map(String::from),
        );
        for s in samples {
            let mut out = String::new();
            write_json_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }
}
