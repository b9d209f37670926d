//! A framework-neutral HTTP response: what the adapters turn into their own type.

/// `content-type`.
pub(crate) const CONTENT_TYPE: &str = "content-type";
/// The JSON media type.
pub(crate) const JSON: &str = "application/json";

/// Status, headers and body of a response, as plain data, so that the tower
/// and actix adapters render exactly the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(&'static str, String)>,
    /// The body, of the type `content-type` names (JSON for every reply of
    /// the library).
    pub body: Option<String>,
}

impl Reply {
    /// `204 No Content`.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A JSON reply.
    pub fn json(status: u16, body: &impl serde::Serialize) -> Self {
        let body = serde_json::to_string(body).expect("serializing plain data cannot fail");
        Self {
            status,
            headers: vec![(CONTENT_TYPE, JSON.to_owned())],
            body: Some(body),
        }
    }

    /// A reply with a body of any media type, e.g. an application's HTML page.
    pub fn with_body(
        status: u16,
        content_type: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            status,
            headers: vec![(CONTENT_TYPE, content_type.into())],
            body: Some(body.into()),
        }
    }

    /// Adds `Cache-Control: no-store` (RFC 6749 §5.1), for responses carrying tokens.
    pub(crate) fn no_store(mut self) -> Self {
        self.headers.push(("cache-control", "no-store".to_owned()));
        self.headers.push(("pragma", "no-cache".to_owned()));
        self
    }
}
