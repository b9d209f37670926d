//! Rendering core's [`Reply`] as an actix-web response: the one conversion
//! every response of this crate goes through.

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use reissue_core::{Claims, Error, Reply, Verifier};

/// Renders a [`Reply`] (status, headers, body) as an [`HttpResponse`].
///
/// Use it for replies of your own built on reissue-core, e.g. the example
/// apps' `/signup`, so that they look exactly like the library's.
pub fn into_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => HttpResponse::with_body(status, BoxBody::new(body)),
        None => HttpResponse::new(status),
    };
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        match (
            HeaderName::from_lowercase(name.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            (Ok(name), Ok(value)) => headers.append(name, value),
            _ => tracing::error!(
                header = name,
                "dropped a reply header that is not valid HTTP"
            ),
        }
    }
    response
}

/// The error of this crate's extractors: a core [`Error`] rendered as its
/// [`Reply`], or a route that reads the identity without the middleware.
///
/// Implements [`ResponseError`], so handlers can return it with `?`.
#[derive(Debug)]
pub struct ReissueError {
    cause: Cause,
    reply: Reply,
}

#[derive(Debug)]
enum Cause {
    Core(Error),
    MissingMiddleware(&'static str),
}

impl ReissueError {
    /// `error`, with the `WWW-Authenticate` realm of `verifier`.
    pub fn new<C: Claims>(error: Error, verifier: &Verifier<C>) -> Self {
        Self {
            reply: verifier.reply(&error),
            cause: Cause::Core(error),
        }
    }

    /// `error`, rendered with `realm`.
    pub(crate) fn with_realm(error: Error, realm: &str) -> Self {
        Self {
            reply: error.reply(realm),
            cause: Cause::Core(error),
        }
    }

    /// An extractor ran on a request the middleware did not authenticate.
    /// Always a programming error, so the message says what to add.
    pub(crate) fn missing_middleware<C>() -> Self {
        let claims = std::any::type_name::<C>();
        let description = format!(
            "no reissue identity with claims `{claims}` on this request: wrap the app, scope or \
             resource with `reissue_actix::ReissueMiddleware` built from the verifier of the same claims"
        );
        let reply = Error::Misconfigured(description.into()).reply(reissue_core::DEFAULT_REALM);
        Self {
            cause: Cause::MissingMiddleware(claims),
            reply,
        }
    }

    /// The core error, unless this is the missing-middleware mistake.
    pub fn error(&self) -> Option<&Error> {
        match &self.cause {
            Cause::Core(error) => Some(error),
            Cause::MissingMiddleware(_) => None,
        }
    }

    /// The response this error renders as.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}

/// Rendered with the default realm ([`reissue_core::DEFAULT_REALM`]); use
/// [`ReissueError::new`] to name another.
impl From<Error> for ReissueError {
    fn from(error: Error) -> Self {
        Self {
            reply: error.reply(reissue_core::DEFAULT_REALM),
            cause: Cause::Core(error),
        }
    }
}

impl fmt::Display for ReissueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Core(error) => error.fmt(f),
            Cause::MissingMiddleware(claims) => {
                write!(
                    f,
                    "no reissue identity with claims `{claims}`: the middleware is missing"
                )
            }
        }
    }
}

impl std::error::Error for ReissueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().map(|e| e as _)
    }
}

impl ResponseError for ReissueError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        into_response(self.reply.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_all_go_out() {
        let mut reply = Reply::with_body(200, "text/plain", "x");
        reply.headers.push(("set-cookie", "a=1".to_owned()));
        reply.headers.push(("set-cookie", "b=2".to_owned()));
        let response = into_response(reply);
        let all: Vec<_> = response.headers().get_all("set-cookie").collect();
        assert_eq!(all, ["a=1", "b=2"]);
    }
}
