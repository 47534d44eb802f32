//! The fixed-size text fields of PPTP control messages (RFC 2637 section
//! 2): Host Name and Vendor String (64 octets), Phone Number, Subaddress,
//! Dialed and Dialing Number (64 octets), Call Statistics (128 octets).
//!
//! "If less than 64 octets in length, the remainder of this field SHOULD be
//! filled with octets of value 0" (section 2.1): a field is NUL padded, and a
//! full field has no NUL at all. The octets are kept as they arrived (so a
//! parsed message emits back to the same bytes); [`Text::text`] decodes them
//! for logs and events, lossily and escaped, and never panics.

use core::fmt;
use core::fmt::Write as _;

/// A fixed-size, NUL-padded text field of `N` octets.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Text<const N: usize> {
    octets: [u8; N],
}

impl<const N: usize> Text<N> {
    /// An all-NUL field (the empty text).
    pub const EMPTY: Text<N> = Text { octets: [0; N] };

    /// `text`, NUL padded; cut to `N` octets at a character boundary when it
    /// is longer (a full field carries no terminating NUL, as RFC 2637
    /// allows).
    pub fn new(text: &str) -> Text<N> {
        let mut end = text.len().min(N);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut octets = [0; N];
        octets[..end].copy_from_slice(&text.as_bytes()[..end]);
        Text { octets }
    }

    /// The field as it travels. `bytes` shorter than `N` is NUL padded,
    /// longer is cut.
    pub fn from_bytes(bytes: &[u8]) -> Text<N> {
        let mut octets = [0; N];
        let n = bytes.len().min(N);
        octets[..n].copy_from_slice(&bytes[..n]);
        Text { octets }
    }

    /// All `N` octets, padding included.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.octets
    }

    /// The octets before the first NUL.
    pub fn value(&self) -> &[u8] {
        let end = self.octets.iter().position(|&b| b == 0).unwrap_or(N);
        &self.octets[..end]
    }

    /// The text before the first NUL, for logs and events: printable ASCII
    /// as it is, valid UTF-8 beyond ASCII as it is, `\` doubled, and every
    /// control octet or invalid UTF-8 octet as `\xNN`. A peer cannot put a
    /// line break or a terminal escape into a log line through it.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.value().len());
        let mut rest = self.value();
        while !rest.is_empty() {
            match core::str::from_utf8(rest) {
                Ok(valid) => {
                    push_escaped(&mut out, valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // from_utf8 said these octets are valid.
                    push_escaped(&mut out, core::str::from_utf8(valid).unwrap_or_default());
                    let bad = e.error_len().unwrap_or(after.len());
                    for &b in &after[..bad] {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                    rest = &after[bad..];
                }
            }
        }
        out
    }

    /// No octet before the first NUL.
    pub fn is_empty(&self) -> bool {
        self.value().is_empty()
    }
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text::EMPTY
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.text())
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl<const N: usize> From<&str> for Text<N> {
    fn from(text: &str) -> Self {
        Text::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_cut() {
        let t: Text<8> = Text::new("abc");
        assert_eq!(t.as_bytes(), b"abc\0\0\0\0\0");
        assert_eq!(t.text(), "abc");
        let t: Text<4> = Text::new("abcdef");
        assert_eq!(t.as_bytes(), b"abcd");
        assert_eq!(t.text(), "abcd");
        // "é" is two octets: cut before it rather than inside it.
        let t: Text<4> = Text::new("abcé");
        assert_eq!(t.as_bytes(), b"abc\0");
        assert!(Text::<4>::EMPTY.is_empty());
    }

    #[test]
    fn hostile_octets_are_escaped() {
        let t: Text<16> = Text::from_bytes(b"a\nb\x1b[31m\xff\\\0junk");
        assert_eq!(t.text(), "a\\x0ab\\x1b[31m\\xff\\\\");
        assert_eq!(t.value(), b"a\nb\x1b[31m\xff\\");
        let t: Text<8> = Text::from_bytes("日本".as_bytes());
        assert_eq!(t.text(), "日本");
    }
}
