//! Small value types: session ids and country codes.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A session id: 128 random bits, base64url without padding (22 characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses a session id as found in a URL or a token; `None` unless it has
    /// the shape of one (so that nothing else reaches a store key).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 22
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case (`"DE"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a two-letter code, case-insensitively; `None` for anything else.
    pub fn new(code: &str) -> Option<Self> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).ok_or_else(|| serde::de::Error::custom("expected a two-letter country code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_well_formed() {
        let a = SessionId::random();
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, SessionId::random());
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn session_id_parse_refuses_key_injection() {
        for bad in [
            "",
            "short",
            "aaaaaaaaaaaaaaaaaaaaa:",
            "aaaaaaaaaaaaaaaaaaaa}{",
            "{aaaaaaaaaaaaaaaaaaaaa}",
            "aaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn countries_parse_case_insensitively_and_refuse_junk() {
        assert_eq!(Country::new("de").unwrap().as_str(), "DE");
        for bad in ["", "D", "DEU", "1A", "é"] {
            assert_eq!(Country::new(bad), None, "{bad:?}");
        }
    }
}
