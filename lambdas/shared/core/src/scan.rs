//! The one byte scanner of JSON strings the platform shares: the body reader uses it to find
//! where a string ends, the detail writer to know whether a string needs escaping.

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// High bit set in each byte of `v` that is `"`, `\` or a control character (below 0x20).
#[inline]
fn stops(v: u64) -> u64 {
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero_bytes(v ^ (ONES * u64::from(b'"')))
        | zero_bytes(v ^ (ONES * u64::from(b'\\')))
        // Bytes below 0x20 (the high bit excluded, which `& !v` does).
        | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS)
}

/// The index of the first `"`, `\` or control character at or after `from`: eight bytes at a
/// time (the "has a zero byte" and "has a byte less than" bit tricks; the lowest flagged byte
/// is always exact), the last few as one more word padded with spaces, which never stop (a
/// byte-by-byte tail cost more than the check itself on short strings).
pub fn json_string_stop(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at.saturating_add(8)) {
        let found = stops(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let last = rest
        .iter()
        .rev()
        .fold(u64::from_le_bytes([b' '; 8]), |word, &b| {
            (word << 8) | u64::from(b)
        });
    let found = stops(last);
    (found != 0).then(|| at + (found.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_stop_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = stop;
                    assert_eq!(json_string_stop(&bytes, 0), Some(at), "{len} {at} {stop}");
                    assert_eq!(json_string_stop(&bytes, at), Some(at));
                    assert_eq!(json_string_stop(&bytes, at + 1), None);
                }
            }
            // Bytes that never stop: printable ASCII but the two, DEL, UTF-8 (high bit set).
            let plain: Vec<u8> = (0x20..=0xffu8)
                .filter(|b| *b != b'"' && *b != b'\\')
                .collect();
            assert_eq!(json_string_stop(&plain, 0), None);
            assert_eq!(json_string_stop(&vec![b'x'; len], 0), None);
        }
    }
}
