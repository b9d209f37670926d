//! `GET /openapi.json`: the OpenAPI 3.1 document of every route the example
//! apps serve. The `/auth` routes are described by the library
//! ([`Reissue::openapi`](reissue_core::Reissue::openapi)); this module adds
//! the app's own, with the bodies' schemas derived from the structs the
//! handlers serialize.

use reissue_core::openapi::{AuthApi, error_response};
use reissue_core::{Reissue, Reply};
use reissue_diesel::EmailPassword;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, Ref, Required};

use crate::{ADMIN_ROLE, AppState, AppUsers, PasswordChange, Signup};

/// The tag of the app's own routes.
const TAG: &str = "app";

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub(crate) status: &'static str,
}

/// `POST /signup`: the new account.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignedUp {
    /// The user id (the access token's `sub`).
    pub(crate) id: String,
    /// The email as stored (lower case).
    pub(crate) email: String,
}

/// `GET /me`: the caller, as the access token says.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me<'a> {
    /// The user id.
    pub(crate) id: &'a str,
    /// The user's email.
    pub(crate) email: &'a str,
    /// The user's roles, e.g. `["admin"]`.
    pub(crate) roles: &'a [String],
    /// The session id of the access token.
    pub(crate) sid: &'a str,
}

impl AppState {
    /// The OpenAPI 3.1 document of the app: its own routes, and the `/auth`
    /// routes as the library describes them for this configuration.
    pub fn openapi_document(&self) -> OpenApi {
        document(&self.reissue)
    }

    /// `GET /openapi.json`: the document, serialized once at start-up.
    pub fn openapi(&self) -> Reply {
        Reply::with_body(200, "application/json", &*self.openapi_json)
    }
}

/// The app's document for this configuration.
pub(crate) fn document(reissue: &Reissue<AppUsers>) -> OpenApi {
    let auth = reissue.openapi().credentials::<EmailPassword>();
    let mut paths = Paths::new();
    for (method, path, operation) in own_routes(&auth) {
        paths.add_path_operation(path, vec![method], operation);
    }
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("reissue example app")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The example app of reissue (CONTRACT.md): the demo page, signup, \
                         `/me`, forced logout by an admin, metrics, and the `/auth` routes of \
                         the library.",
                )),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .schema_from::<Signup>()
                .schema_from::<PasswordChange>()
                .schema_from::<SignedUp>()
                .schema_from::<Health>()
                .schema_from::<Me<'static>>()
                .build(),
        ))
        .tags(Some([TagBuilder::new()
            .name(TAG)
            .description(Some("The example app's own routes"))
            .build()]))
        .build();
    doc.merge(auth.document());
    doc
}

fn text(status_what: &str, media: &str) -> utoipa::openapi::response::Response {
    ResponseBuilder::new()
        .description(status_what)
        .content(
            media,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .build()
}

fn json_of(what: &str, schema: &str) -> utoipa::openapi::response::Response {
    ResponseBuilder::new()
        .description(what)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

fn own_routes(auth: &AuthApi) -> Vec<(HttpMethod, &'static str, utoipa::openapi::path::Operation)> {
    let op = |id: &str, summary: &str| {
        OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some(id))
            .summary(Some(summary))
    };
    let any_json = ObjectBuilder::new().schema_type(Type::Object);
    vec![
        (
            HttpMethod::Get,
            "/",
            op("demoPage", "The demo page (HTML, no external resources)")
                .response("200", text("The page", "text/html; charset=utf-8"))
                .build(),
        ),
        (
            HttpMethod::Get,
            "/health",
            op("health", "Liveness, no authentication")
                .response("200", json_of("Serving", "Health"))
                .build(),
        ),
        (
            HttpMethod::Get,
            "/metrics",
            op("metrics", "The reissue_* metrics, Prometheus text format")
                .response(
                    "200",
                    text("The metrics", "text/plain; version=0.0.4; charset=utf-8"),
                )
                .build(),
        ),
        (
            HttpMethod::Get,
            "/openapi.json",
            op("openapi", "This document")
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The OpenAPI 3.1 document of every route the app serves")
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(any_json)).build(),
                        )
                        .build(),
                )
                .build(),
        ),
        (
            HttpMethod::Post,
            "/signup",
            op("signup", "Create an account")
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Signup")))
                                .build(),
                        )
                        .build(),
                ))
                .response("201", json_of("The account exists", "SignedUp"))
                .response(
                    "400",
                    error_response(
                        "The body is not JSON with `email` and `password`, the email is \
                         malformed, or the password is under 8 characters",
                        &["invalid_request"],
                    )
                    .build(),
                )
                .response(
                    "409",
                    error_response("An account with this email exists", &["email_taken"]).build(),
                )
                .response("503", auth.unavailable_response())
                .build(),
        ),
        (
            HttpMethod::Get,
            "/me",
            auth.protected(op("me", "The caller, as the access token says"), None)
                .response("200", json_of("The caller", "Me"))
                .build(),
        ),
        (
            HttpMethod::Post,
            "/account/password",
            auth.protected_recent(
                op(
                    "changePassword",
                    "Change the password: every other session of the user ends",
                ),
                None,
                crate::PASSWORD_CHANGE_MAX_AGE,
            )
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("PasswordChange")))
                            .build(),
                    )
                    .build(),
            ))
            .response(
                "204",
                ResponseBuilder::new()
                    .description(
                        "The password changed; the caller's session goes on, the others ended",
                    )
                    .build(),
            )
            .response(
                "400",
                error_response(
                    "The body is not JSON with `current_password` and `new_password`, or the \
                     new password is under 8 characters (or a malformed `Authorization`)",
                    &["invalid_request"],
                )
                .build(),
            )
            .build(),
        ),
        (
            HttpMethod::Post,
            "/admin/users/{id}/logout",
            auth.protected(
                op("adminLogout", "Forced logout of every session of a user"),
                Some(ADMIN_ROLE),
            )
            .parameter(
                ParameterBuilder::new()
                    .name("id")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some("The user id"))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            )
            .response(
                "204",
                ResponseBuilder::new()
                    .description("Every session of the user has ended (also when it had none)")
                    .build(),
            )
            .build(),
        ),
    ]
}
