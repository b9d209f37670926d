//! The member names an access token's payload reserves: the registered
//! claims reissue writes beside the application's own (flattened into the
//! same object). An application claim of one of these names would put two
//! members of that name in the token (RFC 8725 §3.11: a verifier elsewhere
//! may read either), so such a claims type is refused up front.

use serde::de::{self, Deserializer, Visitor};

use crate::{Error, Result};

/// The reserved names ([`Claims`](crate::Claims) lists them).
pub const RESERVED_CLAIMS: [&str; 15] = [
    "iss",
    "aud",
    "sub",
    "sid",
    "jti",
    "iat",
    "exp",
    "nbf",
    "typ",
    "gen",
    "app",
    "client_id",
    "auth_time",
    "amr",
    "cnf",
];

/// Refuses a claims type whose fields (as its `Deserialize` names them)
/// include a reserved name; `Ok(false)` for a type that names no fields
/// (maps, JSON values), whose members are then checked at each mint
/// ([`check_members`]).
pub(crate) fn check_type<C: serde::de::DeserializeOwned>() -> Result<bool> {
    let mut fields = None;
    let _ = C::deserialize(FieldProbe(&mut fields));
    let Some(fields) = fields else {
        return Ok(false);
    };
    match fields.iter().find(|f| RESERVED_CLAIMS.contains(f)) {
        Some(name) => Err(reserved(name)),
        None => Ok(true),
    }
}

/// Refuses application claims that serialize a reserved member.
pub(crate) fn check_members(app: &impl serde::Serialize) -> Result<()> {
    let value = serde_json::to_value(app)
        .map_err(|e| Error::Internal(format!("the claims do not serialize: {e}")))?;
    match value
        .as_object()
        .and_then(|o| o.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())))
    {
        Some(name) => Err(reserved(name)),
        None => Ok(()),
    }
}

fn reserved(name: &str) -> Error {
    Error::Config(format!(
        "the application's claims have a member named `{name}`, which the access token \
         reserves (its registered claims are written beside the application's); rename it, \
         e.g. with #[serde(rename = \"app_{name}\")]"
    ))
}

/// A deserializer that only records the field names a struct asks for.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct Probed;

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = Probed;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> std::result::Result<V::Value, Probed> {
        *self.0 = Some(fields);
        Err(Probed)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Probed> {
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct WithSub {
        email: String,
        sub: String,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Renamed {
        #[serde(rename = "client_id")]
        client: String,
    }

    #[test]
    fn a_claims_type_with_a_reserved_field_is_refused_by_name() {
        let err = check_type::<WithSub>().unwrap_err().to_string();
        assert!(err.contains("`sub`"), "{err}");
        let err = check_type::<Renamed>().unwrap_err().to_string();
        assert!(err.contains("`client_id`"), "{err}");
        assert!(check_type::<crate::UserClaims>().unwrap());
        // a JSON value names no fields: checked when it is minted
        assert!(!check_type::<serde_json::Value>().unwrap());
    }

    #[test]
    fn members_are_checked_where_the_type_names_none() {
        let err = check_members(&serde_json::json!({"email": "a", "exp": 1}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`exp`"), "{err}");
        check_members(&serde_json::json!({"email": "a"})).unwrap();
        check_members(&crate::UserClaims::new("a", vec![])).unwrap();
    }

    impl crate::Claims for WithSub {}

    /// A token whose payload has two `sub` members (as a claims type with a
    /// `sub` field minted one before this check) is refused.
    #[test]
    fn a_token_with_a_duplicate_member_is_refused() {
        let key = crate::Key::hmac("k", crate::Algorithm::HS256, &[7; 32]).unwrap();
        let codec = crate::TokenCodec::new(crate::KeySet::new(key).unwrap(), "i", "a", 0);
        let sid = crate::SessionId::random();
        let app = WithSub {
            email: "e".into(),
            sub: "admin".into(),
        };
        let now = crate::clock::now_secs();
        let token = codec.issue_access("42", &sid, &app, now, 60).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let json =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap();
        let json = String::from_utf8(json).unwrap();
        assert_eq!(json.matches("\"sub\"").count(), 2, "{json}");
        assert!(codec.verify_access::<WithSub>(&token).is_err());
        assert!(codec.verify_access::<serde_json::Value>(&token).is_err());
    }
}
