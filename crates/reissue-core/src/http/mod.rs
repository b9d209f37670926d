//! HTTP without a framework: the request the adapters hand in
//! ([`HttpRequest`]), the reply they render ([`Reply`]), the `/auth`
//! endpoints as functions over them and their route table, the refresh-token cookie, and (feature
//! `openapi`) the OpenAPI document of those endpoints.

pub(crate) mod cookie;
pub(crate) mod endpoint;
#[cfg(feature = "openapi")]
pub mod openapi;
pub(crate) mod reply;
pub(crate) mod request;
pub mod routes;

pub use cookie::{CookieTransport, Origin, REFRESH_COOKIE, TRANSPORT_HEADER};
pub use endpoint::{MAX_BODY_LEN, json_body};
pub use reply::Reply;
pub use request::{HttpRequest, bearer_token};
