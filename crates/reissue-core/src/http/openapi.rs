//! The OpenAPI 3.1 document of the `/auth` routes (feature `openapi`).
//!
//! [`AuthApi`] describes every route the adapters mount (`reissue_tower::router`,
//! `reissue_actix::configure`), framework-neutral: request and response
//! bodies, every error of CONTRACT.md's table that each route can answer
//! (status, the `{"error", "error_description"}` body with its codes, the
//! `WWW-Authenticate` and `Retry-After` headers), the bearer scheme, and the
//! cookie transport (the `X-Reissue-Transport: cookie` header, the
//! refresh-token cookie as an API key in a cookie, the `Origin` rules).
//! The bodies' schemas are derived from the types that serialize them, so
//! the document cannot describe a field the library does not send.
//!
//! [`Reissue::openapi`](crate::Reissue::openapi) starts from the
//! application's configuration (whether the cookie transport is on, the
//! realm). Set the [prefix](AuthApi::prefix) when the routes are mounted
//! elsewhere than `/auth`, and the [credentials](AuthApi::credentials) schema
//! of the login body (the library does not know the application's
//! [`Authenticator::Credentials`]); then
//! merge the result into the application's own document:
//!
//! ```
//! use reissue_core::openapi::{AuthApi, utoipa};
//! use utoipa::openapi::OpenApi;
//!
//! /// The login body of this application.
//! #[derive(serde::Deserialize, utoipa::ToSchema)]
//! struct Login {
//!     email: String,
//!     password: String,
//! }
//!
//! // In an app: `reissue.openapi()`, which knows whether cookies are on.
//! let auth = AuthApi::new()
//!     .prefix("/api/auth")
//!     .credentials::<Login>()
//!     .document();
//! let mut app: OpenApi = serde_json::from_str(
//!     r#"{"openapi": "3.1.0", "info": {"title": "my app", "version": "1"}, "paths": {}}"#,
//! )?;
//! app.merge(auth);
//! let json = app.to_json()?;
//! assert!(json.contains(r#""/api/auth/reissue""#));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use utoipa::ToSchema;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, Paths,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, Components, ComponentsBuilder, ObjectBuilder, Schema,
    Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required};

use crate::http::endpoint::{CookieTokenResponse, RefreshBody, SessionList, SessionView};
use crate::http::routes::{DEFAULT_PREFIX, Endpoint, Method, ROUTES, SESSION_PARAM};
use crate::{Authenticator, REFRESH_COOKIE, TRANSPORT_HEADER, TokenPair};

pub use utoipa;

/// The `error` codes of the library's error bodies: CONTRACT.md's error
/// table, plus `not_found` (an unknown session, no public keys).
/// `server_error` (500) is not listed: no route is documented to answer it.
pub const ERROR_CODES: &[&str] = &[
    "unauthorized",
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "invalid_credentials",
    "too_many_attempts",
    "access_denied",
    "not_found",
    "temporarily_unavailable",
    "insufficient_user_authentication",
    "invalid_dpop_proof",
];

/// Security scheme: an access token as `Authorization: Bearer`.
pub const BEARER_SCHEME: &str = "bearerAuth";
/// Security scheme: a refresh token as `Authorization: Bearer` (`/reissue`).
pub const REFRESH_BEARER_SCHEME: &str = "refreshBearer";
/// Security scheme: the refresh token in the `__Secure-reissue-rt` cookie.
pub const REFRESH_COOKIE_SCHEME: &str = "refreshCookie";

/// The tag of the library's operations.
pub const TAG: &str = "auth";

/// The name of the login body's schema in `components.schemas` unless
/// [`AuthApi::credentials`] names another.
const DEFAULT_CREDENTIALS: &str = "Credentials";

/// The OpenAPI 3.1 description of the `/auth` routes; see the
/// [module docs](self).
#[must_use]
#[derive(Clone)]
pub struct AuthApi {
    prefix: String,
    credentials: (Cow<'static, str>, RefOr<Schema>),
    cookies: bool,
    realm: String,
}

impl fmt::Debug for AuthApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthApi")
            .field("prefix", &self.prefix)
            .field("credentials", &self.credentials.0)
            .field("cookies", &self.cookies)
            .field("realm", &self.realm)
            .finish()
    }
}

impl Default for AuthApi {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthApi {
    /// The routes under `/auth`, the cookie transport described, the login
    /// body any JSON object (see [`credentials`](Self::credentials)).
    pub fn new() -> Self {
        let any_object = ObjectBuilder::new()
            .description(Some(
                "The application's login credentials (its `Authenticator::Credentials`).",
            ))
            .build();
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            credentials: (
                DEFAULT_CREDENTIALS.into(),
                Schema::Object(any_object).into(),
            ),
            cookies: true,
            realm: crate::DEFAULT_REALM.to_owned(),
        }
    }

    /// Where the routes are mounted, as given to `reissue_tower::router_at`
    /// or `reissue_actix::scope`: a trailing `/` is ignored, `""` or `"/"`
    /// is the root.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// The login body's schema: the application's credentials type.
    pub fn credentials<T: ToSchema>(mut self) -> Self {
        self.credentials = (T::name(), T::schema());
        self
    }

    /// Whether the cookie transport is described (default on;
    /// [`Reissue::openapi`](crate::Reissue::openapi) follows the configuration).
    pub fn cookie_transport(mut self, on: bool) -> Self {
        self.cookies = on;
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (default `reissue`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The paths of the routes, e.g. `/auth/login`, in the order the
    /// contract lists them, with their method.
    pub fn routes(&self) -> Vec<(HttpMethod, String)> {
        ROUTES
            .iter()
            .map(|r| {
                let method = match r.method {
                    Method::Get => HttpMethod::Get,
                    Method::Post => HttpMethod::Post,
                    Method::Delete => HttpMethod::Delete,
                };
                (method, format!("{}{}", self.prefix, r.path))
            })
            .collect()
    }

    /// The OpenAPI 3.1 document: merge it into the application's own with
    /// [`OpenApi::merge`], or serve it as it is.
    pub fn document(&self) -> OpenApi {
        let operations = ROUTES.iter().map(|r| match r.endpoint {
            Endpoint::Login => self.login(),
            Endpoint::Reissue => self.reissue(),
            Endpoint::Logout => self.logout(),
            Endpoint::LogoutAll => self.logout_all(),
            Endpoint::Sessions => self.sessions(),
            Endpoint::RevokeSession => self.revoke_session(),
            Endpoint::Jwks => self.jwks(),
            Endpoint::Reauthenticate => self.reauthenticate(),
        });
        let mut paths = Paths::new();
        for ((method, path), operation) in self.routes().into_iter().zip(operations) {
            paths.add_path_operation(path, vec![method], operation);
        }
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("reissue /auth")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "Login sessions with short-lived access tokens and rotating refresh \
                         tokens: login, reissue, logout, logout everywhere, the session list, \
                         and the public keys. Every error is JSON \
                         `{\"error\": <code>, \"error_description\": <sentence>}`.",
                    )),
            )
            .paths(paths)
            .components(Some(self.components()))
            .tags(Some([TagBuilder::new()
                .name(TAG)
                .description(Some(
                    "The routes of the reissue library (login sessions and their tokens)",
                ))
                .build()]))
            .build()
    }

    /// Describes an application's route behind the access-token middleware
    /// (`ReissueLayer` / `ReissueMiddleware`): the bearer scheme, and the
    /// errors the middleware answers (400 and 401 with `WWW-Authenticate`,
    /// 503 while the store cannot confirm a session; with `role`, 403
    /// `insufficient_scope`). Add the route's own responses to the result.
    pub fn protected(&self, operation: OperationBuilder, role: Option<&str>) -> OperationBuilder {
        let operation = self
            .access_security(operation)
            .response("400", self.bad_request(false))
            .response("401", self.unauthenticated(false, false))
            .response("503", self.unavailable());
        match role {
            None => operation,
            Some(role) => operation.response(
                "403",
                self.error(
                    &format!("The access token lacks the `{role}` role"),
                    &["insufficient_scope"],
                    Challenge::WwwAuthenticate,
                ),
            ),
        }
    }

    /// [`protected`](Self::protected) for a route that also needs a login
    /// within the last `max_age` seconds (`RecentAuth`): 401 then also
    /// covers `insufficient_user_authentication` (RFC 9470), whose challenge
    /// carries `max_age`.
    pub fn protected_recent(
        &self,
        operation: OperationBuilder,
        role: Option<&str>,
        max_age: u64,
    ) -> OperationBuilder {
        self.protected(operation, role).response(
            "401",
            self.error(
                &format!(
                    "No bearer token (`unauthorized`), one that fails verification or whose \
                     session has ended (`invalid_token`), or no login within the last \
                     {max_age} s (`insufficient_user_authentication`, with \
                     `max_age={max_age}` in the challenge: `POST reauthenticate`)"
                ),
                &[
                    "unauthorized",
                    "invalid_token",
                    "insufficient_user_authentication",
                ],
                Challenge::WwwAuthenticate,
            ),
        )
    }

    /// 503 `temporarily_unavailable` with `Retry-After`, for an
    /// application's route that answers the library's store errors.
    pub fn unavailable_response(&self) -> Response {
        self.unavailable()
    }

    fn components(&self) -> Components {
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "What went wrong (RFC 6749 / RFC 6750 vocabulary, CONTRACT.md's error table)",
            ))
            .enum_values(Some(ERROR_CODES.iter().copied()))
            .build();
        let body = ObjectBuilder::new()
            .description(Some("Every error the library answers"))
            .property("error", Ref::from_schema_name("ErrorCode"))
            .required("error")
            .property(
                "error_description",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "One human sentence; never a token, a password or a stack trace",
                    )),
            )
            .required("error_description")
            .build();
        let mut components = ComponentsBuilder::new()
            .schema("ErrorCode", code)
            .schema("ErrorBody", body)
            .schema(self.credentials.0.clone(), self.credentials.1.clone())
            .schema_from::<TokenPair>()
            .schema_from::<RefreshBody>()
            .schema_from::<SessionList<'static>>()
            .schema_from::<SessionView<'static>>()
            .security_scheme(
                BEARER_SCHEME,
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "An access token (a JWT of type `at+jwt`) as \
                             `Authorization: Bearer <token>`; the scheme name is matched \
                             case-insensitively.",
                        ))
                        .build(),
                ),
            )
            .security_scheme(
                REFRESH_BEARER_SCHEME,
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A refresh token as `Authorization: Bearer <token>`. It is never \
                             accepted where an access token is expected, nor the reverse.",
                        ))
                        .build(),
                ),
            );
        if self.cookies {
            components = components
                .schema_from::<CookieTokenResponse<'static>>()
                .security_scheme(
                    REFRESH_COOKIE_SCHEME,
                    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                        REFRESH_COOKIE,
                        &format!(
                            "The refresh token in the cookie the server set on a login or \
                             reissue that sent `X-Reissue-Transport: cookie` (`HttpOnly; \
                             Secure; SameSite=Strict; Path={}`). Read only from a request \
                             that carries that header too and is not cross-site: an `Origin`, \
                             when present, must be the origin the request was addressed to or \
                             an allowed one, and `Sec-Fetch-Site`, when present, `same-origin` \
                             or `none` (`same-site` only from an allowed origin); otherwise 403 \
                             `access_denied` and the session is untouched.",
                            self.cookie_path()
                        ),
                    ))),
                );
        }
        components.build()
    }

    fn cookie_path(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    fn operation(&self, id: &str, summary: &str, description: &str) -> OperationBuilder {
        OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some(id))
            .summary(Some(summary))
            .description(Some(description))
    }

    /// `X-Reissue-Transport: cookie`, on the routes that set, spend or clear
    /// the cookie.
    fn transport_header(&self) -> Parameter {
        ParameterBuilder::new()
            .name(TRANSPORT_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "`cookie` opts this request into the cookie transport: the refresh token is \
                 set as, read from, or cleared from the `__Secure-reissue-rt` cookie instead of \
                 travelling in the JSON body. Without it, the JSON flow, as if cookies did not \
                 exist.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["cookie"])),
            ))
            .build()
    }

    /// `DPoP`: a proof of possession (RFC 9449) on the routes that bind a
    /// session or need its key.
    fn dpop_header(&self) -> Parameter {
        ParameterBuilder::new()
            .name("DPoP")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "A DPoP proof (RFC 9449 §4): a JWS with `typ` `dpop+jwt`, an ES256 or EdDSA \
                 signature by the public key in its `jwk` header, and `htm`, `htu`, `iat` and a \
                 fresh `jti` naming this request. At login it binds the new session to the key; \
                 a bound session needs one by its key on every reissue, logout and \
                 reauthentication.",
            ))
            .schema(Some(string_schema()))
            .build()
    }

    fn with_transport(&self, op: OperationBuilder) -> OperationBuilder {
        if self.cookies {
            op.parameter(self.transport_header())
        } else {
            op
        }
    }

    /// A refresh token from the header, the cookie, or the body.
    fn refresh_security(&self, op: OperationBuilder) -> OperationBuilder {
        let op = op.security(SecurityRequirement::new::<_, [&str; 0], &str>(
            REFRESH_BEARER_SCHEME,
            [],
        ));
        let op = if self.cookies {
            op.security(SecurityRequirement::new::<_, [&str; 0], &str>(
                REFRESH_COOKIE_SCHEME,
                [],
            ))
        } else {
            op
        };
        // Or neither: the token is in the JSON body.
        op.security(SecurityRequirement::default())
    }

    fn access_security(&self, op: OperationBuilder) -> OperationBuilder {
        op.security(SecurityRequirement::new::<_, [&str; 0], &str>(
            BEARER_SCHEME,
            [],
        ))
    }

    fn token_response(&self, what: &str) -> Response {
        let schema: RefOr<Schema> = if self.cookies {
            AnyOfBuilder::new()
                .item(Ref::from_schema_name("TokenPair"))
                .item(Ref::from_schema_name("CookieTokenResponse"))
                .description(Some(
                    "`TokenPair`, or `CookieTokenResponse` (no `refresh_token`) for a request \
                     that sent `X-Reissue-Transport: cookie`",
                ))
                .into()
        } else {
            Ref::from_schema_name("TokenPair").into()
        };
        let mut response = ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            )
            .header(
                "Cache-Control",
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some("`no-store` (RFC 6749 §5.1)"))
                    .build(),
            );
        if self.cookies {
            response = response.header(
                "Set-Cookie",
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some(format!(
                        "With `X-Reissue-Transport: cookie`: \
                         `__Secure-reissue-rt=<refresh token>; Path={}; HttpOnly; Secure; \
                         SameSite=Strict; Max-Age=<refresh_expires_in>`",
                        self.cookie_path()
                    )))
                    .build(),
            );
        }
        response.build()
    }

    fn no_content(&self, what: &str, clears_cookie: bool) -> Response {
        let mut response = ResponseBuilder::new().description(what);
        if clears_cookie && self.cookies {
            response = response.header("Set-Cookie", self.clear_cookie_header());
        }
        response.build()
    }

    fn clear_cookie_header(&self) -> utoipa::openapi::header::Header {
        HeaderBuilder::new()
            .schema(Some(string_schema()))
            .description(Some(
                "With `X-Reissue-Transport: cookie`: the cookie cleared (`Max-Age=0`)",
            ))
            .build()
    }

    fn login(&self) -> Operation {
        let op = self.operation(
            "login",
            "Log in: credentials for a new session",
            "Checks the credentials and starts a new session: a token response with an access \
             token and a refresh token. Attempts are counted before the password is checked; \
             past the limit per account and client network, 429 even with the right password.",
        );
        self.with_transport(op)
            .parameter(self.dpop_header())
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "The application's credentials, at most 16 KiB of JSON",
                    ))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(self.credentials.0.clone())))
                            .build(),
                    )
                    .build(),
            ))
            .response("200", self.token_response("A new session's tokens"))
            .response(
                "400",
                self.error(
                    "The body is not JSON, lacks a field, is over 16 KiB, or cannot name an \
                     account (`invalid_request`); or the DPoP proof is refused, or missing where \
                     every session must be bound (`invalid_dpop_proof`, with a `DPoP` challenge)",
                    &["invalid_request", "invalid_dpop_proof"],
                    Challenge::None,
                ),
            )
            .response(
                "401",
                self.error(
                    "Unknown account or wrong password (the same body either way)",
                    &["invalid_credentials"],
                    Challenge::None,
                ),
            )
            .response("403", self.access_denied(true))
            .response(
                "429",
                self.error(
                    "Too many attempts for this account (from this network, or from all)",
                    &["too_many_attempts"],
                    Challenge::RetryAfter,
                ),
            )
            .response("503", self.unavailable())
            .build()
    }

    fn reissue(&self) -> Operation {
        let op = self.operation(
            "reissue",
            "Reissue: a refresh token for a new pair",
            "Spends the refresh token and answers a new access token and a new refresh token. \
             The same spent token presented again within the grace window gets the same new \
             pair; after it, or an older token of the session, is reuse: 401 and the whole \
             session is revoked. The refresh token comes from `Authorization: Bearer`, else a \
             JSON body `{\"refresh_token\": ...}`, else the cookie.",
        );
        let op = self.refresh_security(self.with_transport(op));
        op.parameter(self.dpop_header())
            .request_body(Some(self.refresh_body()))
            .response("200", self.token_response("The session's new tokens"))
            .response("400", self.bad_request(true))
            .response("401", self.unauthenticated(true, true))
            .response("403", self.access_denied(true))
            .response("503", self.unavailable())
            .build()
    }

    fn logout(&self) -> Operation {
        let op = self.operation(
            "logout",
            "Log out: end one session",
            "Ends the session of the access token (`Authorization`), or of the refresh token \
             in a JSON body or the cookie. Ending a session that has already ended is also 204.",
        );
        let op = self.with_transport(op);
        let op = self.access_security(op);
        let op = if self.cookies {
            op.security(SecurityRequirement::new::<_, [&str; 0], &str>(
                REFRESH_COOKIE_SCHEME,
                [],
            ))
        } else {
            op
        };
        op.security(SecurityRequirement::default())
            .parameter(self.dpop_header())
            .request_body(Some(self.refresh_body()))
            .response("204", self.no_content("The session has ended", true))
            .response("400", self.bad_request(true))
            .response("401", self.unauthenticated(self.cookies, true))
            .response("403", self.access_denied(false))
            .response("503", self.unavailable())
            .build()
    }

    fn logout_all(&self) -> Operation {
        let op = self.operation(
            "logoutAll",
            "Log out everywhere: end every session of the caller",
            "Ends every session of the access token's user.",
        );
        self.access_security(self.with_transport(op))
            .parameter(self.dpop_header())
            .response("204", self.no_content("Every session has ended", true))
            .response("400", self.bad_request(false))
            .response("401", self.unauthenticated(self.cookies, true))
            .response("503", self.unavailable())
            .build()
    }

    fn sessions(&self) -> Operation {
        let op = self.operation(
            "listSessions",
            "The caller's live sessions",
            "Where the caller is logged in: one entry per live session, `current` for the one \
             of the access token. Times are Unix seconds.",
        );
        self.access_security(op)
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The live sessions")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("SessionList")))
                            .build(),
                    )
                    .build(),
            )
            .response("400", self.bad_request(false))
            .response("401", self.unauthenticated(false, false))
            .response("503", self.unavailable())
            .build()
    }

    fn reauthenticate(&self) -> Operation {
        let op = self.operation(
            "reauthenticate",
            "Step-up: prove the password again for a fresh auth_time",
            "With the access token and the login's credentials, answers a new pair for the \
             same session (`sid` unchanged) whose `auth_time` is now: for routes that need a \
             recent login (401 `insufficient_user_authentication`, RFC 9470). Counted against \
             login throttling like a login; the refresh token the session had is spent.",
        );
        self.access_security(self.with_transport(op))
            .parameter(self.dpop_header())
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "The application's credentials, at most 16 KiB of JSON",
                    ))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(self.credentials.0.clone())))
                            .build(),
                    )
                    .build(),
            ))
            .response("200", self.token_response("The session's new tokens"))
            .response(
                "400",
                self.error(
                    "A malformed `Authorization` header, or a body that is not JSON, lacks a \
                     field, is over 16 KiB, or cannot name an account",
                    &["invalid_request"],
                    Challenge::WwwAuthenticate,
                ),
            )
            .response(
                "401",
                self.error(
                    "No bearer token (`unauthorized`), one that fails verification or whose \
                     session has ended (`invalid_token`), the wrong password or another \
                     account's (`invalid_credentials`), or a bound session without a valid \
                     DPoP proof by its key (`invalid_dpop_proof`)",
                    &[
                        "unauthorized",
                        "invalid_token",
                        "invalid_credentials",
                        "invalid_dpop_proof",
                    ],
                    Challenge::WwwAuthenticate,
                ),
            )
            .response("403", self.access_denied(true))
            .response(
                "429",
                self.error(
                    "Too many attempts for this account (from this network, or from all)",
                    &["too_many_attempts"],
                    Challenge::RetryAfter,
                ),
            )
            .response("503", self.unavailable())
            .build()
    }

    fn revoke_session(&self) -> Operation {
        let op = self.operation(
            "revokeSession",
            "End one of the caller's sessions",
            "Ends the session `sid` of the caller, e.g. another device.",
        );
        self.access_security(op)
            .parameter(self.dpop_header())
            .parameter(
                ParameterBuilder::new()
                    .name(SESSION_PARAM)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some("A session id from `GET sessions`"))
                    .schema(Some(string_schema())),
            )
            .response("204", self.no_content("The session has ended", false))
            .response("400", self.bad_request(false))
            .response("401", self.unauthenticated(false, true))
            .response(
                "404",
                self.error(
                    "`sid` is not one of the caller's live sessions",
                    &["not_found"],
                    Challenge::None,
                ),
            )
            .response("503", self.unavailable())
            .build()
    }

    fn jwks(&self) -> Operation {
        let key = ObjectBuilder::new()
            .description(Some(
                "A public JWK (RFC 7517); never a private or secret part",
            ))
            .property("kty", string_schema())
            .required("kty")
            .property("kid", string_schema())
            .property("alg", string_schema())
            .property("use", string_schema());
        let set = ObjectBuilder::new()
            .property("keys", ArrayBuilder::new().items(key))
            .required("keys");
        let op = self.operation(
            "jwks",
            "The public verification keys (JWKS)",
            "The public keys that verify access tokens, for other services; `kid` is each \
             key's RFC 7638 thumbprint.",
        );
        op.response(
            "200",
            ResponseBuilder::new()
                .description("The JWK set")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(set)).build(),
                )
                .header(
                    "Cache-Control",
                    HeaderBuilder::new()
                        .schema(Some(string_schema()))
                        .description(Some("`public, max-age=300`"))
                        .build(),
                )
                .build(),
        )
        .response(
            "404",
            self.error(
                "Only HMAC keys are configured: there is no public key",
                &["not_found"],
                Challenge::None,
            ),
        )
        .build()
    }

    fn refresh_body(&self) -> utoipa::openapi::request_body::RequestBody {
        RequestBodyBuilder::new()
            .required(Some(Required::False))
            .description(Some(
                "The refresh token, when neither `Authorization` nor the cookie carries one",
            ))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("RefreshBody")))
                    .build(),
            )
            .build()
    }

    /// 400: a malformed `Authorization` header, or (`with_body`) an unusable body.
    fn bad_request(&self, with_body: bool) -> Response {
        let what = if with_body {
            "A malformed `Authorization: Bearer` header (empty, two tokens, characters outside \
             RFC 6750's b64token, over 8 KiB), or a body that is not JSON with the expected \
             fields"
        } else {
            "A malformed `Authorization: Bearer` header (empty, two tokens, characters outside \
             RFC 6750's b64token, over 8 KiB)"
        };
        self.error(what, &["invalid_request"], Challenge::WwwAuthenticate)
    }

    /// 401: no bearer token, or one that fails verification; on the routes
    /// of a session's own end (`dpop`), a missing or refused DPoP proof of a
    /// bound session.
    fn unauthenticated(&self, clears_cookie: bool, dpop: bool) -> Response {
        let mut response = if dpop {
            self.error_builder(
                "No bearer token (`unauthorized`), one that fails verification or whose \
                 session has ended (`invalid_token`), or a session bound to a DPoP key \
                 without a valid proof by it (`invalid_dpop_proof`: nothing was spent or \
                 ended, and the cookie is kept)",
                &["unauthorized", "invalid_token", "invalid_dpop_proof"],
                Challenge::WwwAuthenticate,
            )
        } else {
            self.error_builder(
                "No bearer token (`unauthorized`), or one that fails verification or whose \
                 session has ended (`invalid_token`)",
                &["unauthorized", "invalid_token"],
                Challenge::WwwAuthenticate,
            )
        };
        if clears_cookie && self.cookies {
            response = response.header("Set-Cookie", self.clear_cookie_header());
        }
        response.build()
    }

    /// 403 `access_denied`: the address policy, or (cookie transport) a
    /// cross-site request or one without the transport header.
    fn access_denied(&self, policy: bool) -> Response {
        let what = match (policy, self.cookies) {
            (true, true) => {
                "The client address is refused by the address or country policy (at reissue \
                 the session is revoked), or a request using the refresh-token cookie is \
                 cross-site or lacks `X-Reissue-Transport: cookie`"
            }
            (true, false) => {
                "The client address is refused by the address or country policy (at reissue \
                 the session is revoked)"
            }
            (false, _) => {
                "A request using the refresh-token cookie is cross-site or lacks \
                 `X-Reissue-Transport: cookie`"
            }
        };
        self.error(what, &["access_denied"], Challenge::None)
    }

    fn unavailable(&self) -> Response {
        self.error(
            "The token store is unreachable or timing out; retry after `Retry-After` seconds",
            &["temporarily_unavailable"],
            Challenge::RetryAfter,
        )
    }

    fn error(&self, what: &str, codes: &[&str], challenge: Challenge) -> Response {
        self.error_builder(what, codes, challenge).build()
    }

    fn error_builder(&self, what: &str, codes: &[&str], challenge: Challenge) -> ResponseBuilder {
        let mut response = error_response(what, codes);
        if challenge == Challenge::WwwAuthenticate {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some(format!(
                        "The RFC 6750 challenge: `Bearer realm=\"{}\"`, plus `error` (and, for \
                         `invalid_token`, `error_description`) unless no token was presented; \
                         for `invalid_dpop_proof`, RFC 9449's `DPoP error=\"invalid_dpop_proof\", \
                         algs=\"...\"`",
                        self.realm
                    )))
                    .build(),
            );
        }
        if challenge == Challenge::RetryAfter {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[0-9]+$")),
                    ))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        response
    }
}

/// Which header an error response carries besides `Content-Type`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Challenge {
    None,
    /// `WWW-Authenticate`, for the errors of the bearer scheme.
    WwwAuthenticate,
    RetryAfter,
}

/// An error response whose body is `ErrorBody` with `error` one of `codes`:
/// for an application's own routes, e.g. `error_response("...", &["email_taken"])`
/// (a code outside [`ERROR_CODES`] is allowed: the body is then described
/// without the `ErrorBody` reference).
pub fn error_response(what: &str, codes: &[&str]) -> ResponseBuilder {
    let narrowed = ObjectBuilder::new().property(
        "error",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes.iter().copied())),
    );
    let schema: RefOr<Schema> = if codes.iter().all(|c| ERROR_CODES.contains(c)) {
        AllOfBuilder::new()
            .item(Ref::from_schema_name("ErrorBody"))
            .item(narrowed)
            .into()
    } else {
        narrowed
            .required("error")
            .property("error_description", string_schema())
            .required("error_description")
            .into()
    };
    ResponseBuilder::new().description(what).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(schema))
            .example(Some(serde_json::json!({
                "error": codes.first().copied().unwrap_or("invalid_request"),
                "error_description": "one human sentence",
            })))
            .build(),
    )
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

impl<A: Authenticator> crate::Reissue<A> {
    /// The OpenAPI description of the `/auth` routes as this instance serves
    /// them: the cookie transport described only when it is on, this realm.
    /// Set the [prefix](AuthApi::prefix) if the routes are not at `/auth`.
    pub fn openapi(&self) -> AuthApi {
        let config = self.config();
        AuthApi::new()
            .cookie_transport(config.cookies.is_enabled())
            .realm(config.realm.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::ERROR_CODES;
    use crate::{Error, TokenRejection};

    /// Every error the library can answer, one per variant: the match has no
    /// wildcard, so a new variant does not compile until it is listed here.
    fn every_error() -> Vec<Error> {
        let all = [
            Error::MissingToken,
            Error::MalformedAuthorization("x"),
            Error::InvalidToken(TokenRejection::Expired),
            Error::InsufficientScope("admin".into()),
            Error::InvalidCredentials,
            Error::InsufficientUserAuthentication { max_age: 300 },
            Error::InvalidDpopProof {
                why: crate::ProofRejection::Missing,
                algorithms: crate::DpopAlgorithms::default(),
                login: false,
            },
            Error::TooManyAttempts { retry_after: 1 },
            Error::InvalidRequest("x".into()),
            Error::AccessDenied,
            Error::CookieRefused("x"),
            Error::NotFound,
            Error::NoPublicKeys,
            Error::unavailable("down"),
            Error::Overloaded { retry_after: 1 },
            Error::Misconfigured("x".into()),
            Error::Config("x".into()),
            Error::Internal("x".into()),
        ];
        for e in &all {
            match e {
                Error::MissingToken
                | Error::MalformedAuthorization(_)
                | Error::InvalidToken(_)
                | Error::InsufficientScope(_)
                | Error::InvalidCredentials
                | Error::InsufficientUserAuthentication { .. }
                | Error::InvalidDpopProof { .. }
                | Error::TooManyAttempts { .. }
                | Error::InvalidRequest(_)
                | Error::AccessDenied
                | Error::CookieRefused(_)
                | Error::NotFound
                | Error::NoPublicKeys
                | Error::Unavailable(_)
                | Error::Overloaded { .. }
                | Error::Misconfigured(_)
                | Error::Config(_)
                | Error::Internal(_) => {}
            }
        }
        all.into()
    }

    #[test]
    fn every_client_error_code_is_enumerated() {
        for e in every_error() {
            if e.status() >= 500 && e.status() != 503 {
                assert_eq!(e.code(), "server_error", "{e:?}");
                continue;
            }
            assert!(
                ERROR_CODES.contains(&e.code()),
                "{e:?}: `{}` is not in ERROR_CODES",
                e.code()
            );
        }
    }
}
