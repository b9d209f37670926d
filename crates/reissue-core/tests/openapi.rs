//! The OpenAPI document of the `/auth` routes against CONTRACT.md: every
//! route of its endpoint table, every error of its error table, on the
//! routes that answer it, and nothing the routes do not answer; the prefix
//! and the cookie setting followed; every `$ref` resolvable. Whether the
//! document is valid OpenAPI 3.1, and whether the servers answer what it
//! says, is `tests/tests/openapi.rs` (openapi-spec-validator, schemathesis).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reissue_core::openapi::{AuthApi, ERROR_CODES, utoipa};
use reissue_core::store::MemoryStore;
use reissue_core::{Config, CookieTransport, Reissue};
use serde_json::Value;
use support::{AnyUser, hs256_keys};

const CONTRACT: &str = include_str!("../../../docs/CONTRACT.md");

/// What each route answers, per CONTRACT.md: status → the `error` codes of
/// that status (none for a success).
fn expected() -> BTreeMap<(&'static str, &'static str), BTreeMap<&'static str, Vec<&'static str>>> {
    let unavailable = ("503", vec!["temporarily_unavailable"]);
    let bad_auth = ("400", vec!["invalid_request"]);
    let unauthenticated = ("401", vec!["unauthorized", "invalid_token"]);
    // the routes that end a session, or spend its refresh token
    let unproven = (
        "401",
        vec!["unauthorized", "invalid_token", "invalid_dpop_proof"],
    );
    let access_denied = ("403", vec!["access_denied"]);
    let routes = [
        (
            ("post", "/login"),
            vec![
                ("200", vec![]),
                ("400", vec!["invalid_request", "invalid_dpop_proof"]),
                ("401", vec!["invalid_credentials"]),
                access_denied.clone(),
                ("429", vec!["too_many_attempts"]),
                unavailable.clone(),
            ],
        ),
        (
            ("post", "/reissue"),
            vec![
                ("200", vec![]),
                bad_auth.clone(),
                unproven.clone(),
                access_denied.clone(),
                unavailable.clone(),
            ],
        ),
        (
            ("post", "/logout"),
            vec![
                ("204", vec![]),
                bad_auth.clone(),
                unproven.clone(),
                access_denied.clone(),
                unavailable.clone(),
            ],
        ),
        (
            ("post", "/logout-all"),
            vec![
                ("204", vec![]),
                bad_auth.clone(),
                unproven.clone(),
                unavailable.clone(),
            ],
        ),
        (
            ("get", "/sessions"),
            vec![
                ("200", vec![]),
                bad_auth.clone(),
                unauthenticated.clone(),
                unavailable.clone(),
            ],
        ),
        (
            ("delete", "/sessions/{sid}"),
            vec![
                ("204", vec![]),
                bad_auth.clone(),
                unproven.clone(),
                ("404", vec!["not_found"]),
                unavailable.clone(),
            ],
        ),
        (
            ("get", "/jwks.json"),
            vec![("200", vec![]), ("404", vec!["not_found"])],
        ),
    ];
    routes
        .into_iter()
        .map(|(route, statuses)| (route, statuses.into_iter().collect()))
        .collect()
}

fn json(api: &AuthApi) -> Value {
    serde_json::to_value(api.document()).expect("the document serializes")
}

/// The operation at `path`, `method`.
#[track_caller]
fn operation<'d>(doc: &'d Value, path: &str, method: &str) -> &'d Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in {:#}", doc["paths"]);
    op
}

/// The `error` codes an error response narrows its body to.
fn codes_of(response: &Value) -> Vec<String> {
    let schema = &response["content"]["application/json"]["schema"];
    let narrowed = schema["allOf"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i.get("properties").is_some()))
        .unwrap_or(schema);
    narrowed["properties"]["error"]["enum"]
        .as_array()
        .map(|codes| {
            codes
                .iter()
                .map(|c| c.as_str().expect("code").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The (method, path) rows of CONTRACT.md's endpoint table.
fn contract_routes() -> Vec<(String, String)> {
    let table = CONTRACT
        .split("## Endpoints the adapters mount")
        .nth(1)
        .expect("CONTRACT.md has the endpoint table");
    let rows: Vec<_> = table
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l.split('`').nth(1).expect("a `METHOD /path` cell");
            let (method, path) = cell.split_once(' ').expect("METHOD /path");
            (method.to_lowercase(), path.to_owned())
        })
        .collect();
    assert!(rows.len() >= 7, "endpoint table not found: {rows:?}");
    rows
}

/// The (status, code) rows of CONTRACT.md's error table.
fn contract_errors() -> BTreeSet<(String, String)> {
    let table = CONTRACT
        .split("## Error responses")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("CONTRACT.md has the error table");
    let rows: BTreeSet<_> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| situation"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[2].to_owned(), cells[3].trim_matches('`').to_owned())
        })
        .collect();
    assert!(rows.len() >= 8, "error table not found: {rows:?}");
    rows
}

#[test]
fn is_openapi_3_1_with_every_route_of_the_contract() {
    let doc = json(&AuthApi::new());
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in contract_routes() {
        operation(&doc, &path, &method);
    }
    let documented: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(documented, contract_routes().len(), "{:#}", doc["paths"]);
}

#[test]
fn every_route_documents_exactly_the_errors_it_can_answer() {
    let doc = json(&AuthApi::new());
    for ((method, path), statuses) in expected() {
        let path = format!("/auth{path}");
        let responses = operation(&doc, &path, method)["responses"]
            .as_object()
            .expect("responses");
        let documented: BTreeSet<&str> = responses.keys().map(String::as_str).collect();
        let wanted: BTreeSet<&str> = statuses.keys().copied().collect();
        assert_eq!(documented, wanted, "{method} {path}");
        for (status, codes) in statuses {
            let response = &responses[status];
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} has no description"
            );
            assert_eq!(codes_of(response), codes, "{method} {path} {status}");
            if status.starts_with('2') {
                continue;
            }
            let headers = response["headers"].as_object();
            let has = |h: &str| headers.is_some_and(|hs| hs.contains_key(h));
            if status == "429" || status == "503" {
                assert!(
                    has("Retry-After"),
                    "{method} {path} {status}: no Retry-After"
                );
            }
            if status == "401" && path != "/auth/login" {
                assert!(
                    has("WWW-Authenticate"),
                    "{method} {path} {status}: no WWW-Authenticate"
                );
            }
        }
    }
}

#[test]
fn every_code_of_the_contract_error_table_is_documented_with_its_status() {
    let doc = json(&AuthApi::new());
    let mut documented = BTreeSet::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            for (status, response) in op["responses"].as_object().expect("responses") {
                for code in codes_of(response) {
                    documented.insert((status.clone(), code));
                }
            }
        }
    }
    for (status, code) in contract_errors() {
        // `insufficient_scope` and `insufficient_user_authentication` belong
        // to the application's routes that require a role or a recent login
        // (`RecentAuth`); no `/auth` route does.
        if code == "insufficient_scope" || code == "insufficient_user_authentication" {
            continue;
        }
        assert!(
            documented.contains(&(status.clone(), code.clone())),
            "CONTRACT.md's {status} `{code}` is on no route of the document: {documented:?}"
        );
    }
    let enumerated: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|c| c.as_str().expect("code"))
        .collect();
    for (_, code) in contract_errors() {
        assert!(enumerated.contains(code.as_str()), "ErrorCode lacks {code}");
    }
    assert_eq!(enumerated, ERROR_CODES.iter().copied().collect());
}

#[test]
fn bodies_are_the_types_that_serialize_them() {
    let doc = json(&AuthApi::new());
    let schemas = &doc["components"]["schemas"];
    let fields = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        fields("TokenPair"),
        set(&[
            "access_token",
            "refresh_token",
            "token_type",
            "expires_in",
            "device_token",
            "refresh_expires_in"
        ])
    );
    assert_eq!(
        fields("CookieTokenResponse"),
        set(&[
            "access_token",
            "token_type",
            "expires_in",
            "refresh_expires_in"
        ])
    );
    assert_eq!(
        fields("SessionView"),
        set(&[
            "sid",
            "created_at",
            "last_used_at",
            "ip",
            "country",
            "user_agent",
            "current"
        ])
    );
    assert_eq!(fields("SessionList"), set(&["sessions"]));
    assert_eq!(fields("RefreshBody"), set(&["refresh_token"]));
    assert_eq!(fields("ErrorBody"), set(&["error", "error_description"]));
    // `country` may be null (CONTRACT.md).
    assert!(
        schemas["SessionView"]["properties"]["country"]["type"]
            .as_array()
            .is_some_and(|t| t.contains(&Value::from("null"))),
        "{:#}",
        schemas["SessionView"]
    );
}

#[test]
fn every_reference_resolves() {
    fn refs<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    for api in [AuthApi::new(), AuthApi::new().cookie_transport(false)] {
        let doc = json(&api);
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "{found:?}");
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        for op in ["reissue", "logout", "logout-all"] {
            for scheme in doc["paths"][format!("/auth/{op}")]["post"]["security"]
                .as_array()
                .expect("security")
                .iter()
                .flat_map(|s| s.as_object().expect("requirement").keys())
            {
                assert!(
                    doc["components"]["securitySchemes"][scheme].is_object(),
                    "{op} names the undefined scheme {scheme}"
                );
            }
        }
    }
}

#[test]
fn the_prefix_is_followed() {
    let doc = json(&AuthApi::new().prefix("/api/auth/"));
    for (method, path) in contract_routes() {
        let moved = path.replacen("/auth", "/api/auth", 1);
        operation(&doc, &moved, &method);
        assert!(doc["paths"].get(&path).is_none(), "{path} still documented");
    }
    let cookie = doc["components"]["securitySchemes"]["refreshCookie"]["description"]
        .as_str()
        .expect("cookie scheme");
    assert!(cookie.contains("Path=/api/auth"), "{cookie}");

    let root = json(&AuthApi::new().prefix("/"));
    operation(&root, "/login", "post");
    operation(&root, "/sessions/{sid}", "delete");
}

#[test]
fn the_cookie_transport_is_described_when_on() {
    let on = json(&AuthApi::new());
    let scheme = &on["components"]["securitySchemes"]["refreshCookie"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "cookie");
    assert_eq!(scheme["name"], "__Secure-reissue-rt");
    let description = scheme["description"].as_str().expect("description");
    for rule in [
        "X-Reissue-Transport: cookie",
        "Origin",
        "Sec-Fetch-Site",
        "403",
    ] {
        assert!(
            description.contains(rule),
            "the cookie scheme does not say {rule}"
        );
    }
    for op in ["login", "reissue", "logout", "logout-all"] {
        let params = operation(&on, &format!("/auth/{op}"), "post")["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{op} has no parameters"));
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "x-reissue-transport" && p["in"] == "header"),
            "{op} lacks the transport header"
        );
    }
    let login_200 = &operation(&on, "/auth/login", "post")["responses"]["200"];
    assert!(login_200["headers"]["Set-Cookie"].is_object());

    let off = json(&AuthApi::new().cookie_transport(false));
    assert!(off["components"]["securitySchemes"]["refreshCookie"].is_null());
    assert!(off["components"]["schemas"]["CookieTokenResponse"].is_null());
    assert!(!off.to_string().contains("x-reissue-transport"));
}

#[test]
fn an_instance_describes_its_own_configuration() {
    let build = |cookies| {
        Reissue::builder(
            Config::new("openapi-test", "openapi-test")
                .realm("my-realm")
                .cookie_transport(cookies),
            hs256_keys(),
            Arc::new(MemoryStore::new()),
            AnyUser,
        )
        .build()
        .expect("reissue")
    };
    let on = json(&build(CookieTransport::new()).openapi());
    assert!(on["components"]["securitySchemes"]["refreshCookie"].is_object());
    assert!(on.to_string().contains(r#"realm=\"my-realm\""#));
    let off = json(&build(CookieTransport::off()).openapi());
    assert!(off["components"]["securitySchemes"]["refreshCookie"].is_null());
}

#[test]
fn the_login_body_is_the_application_credentials() {
    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }
    let doc = json(&AuthApi::new().credentials::<Login>());
    let body = &operation(&doc, "/auth/login", "post")["requestBody"];
    assert_eq!(body["required"], true);
    assert_eq!(
        body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Login"
    );
    assert!(
        doc["components"]["schemas"]["Login"]["properties"]["password"].is_object(),
        "{:#}",
        doc["components"]["schemas"]
    );
    // Without it, any JSON object: the library cannot know the fields.
    let default = json(&AuthApi::new());
    assert_eq!(
        operation(&default, "/auth/login", "post")["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/Credentials"
    );
}
