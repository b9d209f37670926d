//! `GET /openapi.json` of both example apps, checked from outside: the
//! document covers every route of CONTRACT.md, `openapi-spec-validator`
//! accepts it as OpenAPI 3.1, and a property-based `schemathesis` run
//! against the running app finds no 5xx and no response (status, content
//! type, body, headers) that the document does not describe. The library's
//! document alone is validated too, under another prefix and with the
//! cookie transport off.
//!
//! Python is `reissue_conformance::python()`: `$REISSUE_TEST_PYTHON`, else
//! a venv of `tests/python/requirements.txt` it builds on first use. Each
//! schemathesis run is bounded by `REISSUE_SCHEMATHESIS_EXAMPLES` cases per
//! operation (default 25); its seed is random unless
//! `REISSUE_SCHEMATHESIS_SEED` is set, and printed in its report.
#![allow(missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use reissue_conformance::*;
use reissue_core::openapi::AuthApi;
use serde_json::Value;

on_both_adapters!(
    served_document_describes_every_route,
    schemathesis_finds_nothing
);

const CONTRACT: &str = include_str!("../../docs/CONTRACT.md");

fn python_dir() -> String {
    format!("{}/python", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `$REISSUE_TEST_PYTHON -c <code> <args>`; panics with its output
/// when it cannot start or fails.
#[track_caller]
fn run_python(what: &str, code: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let python = python();
    // schemathesis keeps a cache in its working directory: not in the repo.
    let scratch = tempfile::tempdir().expect("temp dir");
    let out = Command::new(&python)
        .current_dir(scratch.path())
        .arg("-c")
        .arg(code)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set REISSUE_TEST_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}; needs pip install -r tests/python/requirements.txt):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// openapi-spec-validator, as its command line does it (3.1 detected from
/// the document).
#[track_caller]
fn validate(file: &Path) {
    run_python(
        "openapi-spec-validator",
        "import sys; from openapi_spec_validator.__main__ import main; sys.exit(main())",
        &[file.to_str().expect("utf-8 path")],
        &[],
    );
}

/// The `METHOD /path` cells of the CONTRACT.md tables of routes: the
/// library's endpoints and the example apps'.
fn contract_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for heading in ["## Endpoints the adapters mount", "## The example apps"] {
        let table = CONTRACT
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("CONTRACT.md lacks {heading}"));
        routes.extend(
            table
                .lines()
                .skip_while(|l| !l.starts_with("| `"))
                .take_while(|l| l.starts_with('|'))
                .filter_map(|l| l.split('`').nth(1))
                .filter_map(|cell| cell.split_once(' '))
                .map(|(m, p)| (m.to_lowercase(), p.to_owned())),
        );
    }
    assert!(routes.len() >= 14, "route tables not found: {routes:?}");
    routes
}

async fn document(s: &TestServer) -> Value {
    let r = s.send(s.get("/openapi.json")).await;
    r.assert_status(200);
    r.assert_json_type();
    r.json()
}

async fn served_document_describes_every_route(t: Target) {
    let s = t.start(&[]);
    let doc = document(&s).await;
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    for (method, path) in contract_routes() {
        assert!(
            doc["paths"][&path][&method].is_object(),
            "{method} {path} is not in the served document"
        );
    }
    // The app's own protected routes carry the library's bearer errors.
    let me = &doc["paths"]["/me"]["get"];
    assert!(
        me["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
        "{me}"
    );
    let admin = &doc["paths"]["/admin/users/{id}/logout"]["post"]["responses"];
    assert!(
        admin["403"].to_string().contains("insufficient_scope"),
        "{admin}"
    );
    assert!(
        doc["paths"]["/signup"]["post"]["responses"]["409"]
            .to_string()
            .contains("email_taken")
    );
    // The cookie transport is on in the example apps, and described.
    assert_eq!(
        doc["components"]["securitySchemes"]["refreshCookie"]["name"],
        "__Secure-reissue-rt"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write the document");
    validate(&file);

    // Cookies off: the served document says nothing of them.
    let plain = t.start(&[("REISSUE_COOKIES", "0")]);
    let doc = document(&plain).await;
    assert!(doc["components"]["securitySchemes"]["refreshCookie"].is_null());
    assert!(!doc.to_string().contains("x-reissue-transport"));
    std::fs::write(&file, doc.to_string()).expect("write the document");
    validate(&file);

    // The library's document alone, mounted elsewhere.
    let library = AuthApi::new().prefix("/api/v1/auth").document();
    std::fs::write(&file, library.to_json().expect("json")).expect("write the document");
    validate(&file);
}

async fn schemathesis_finds_nothing(t: Target) {
    // An address fuzzing will not type, so no generated login locks it out.
    let admin = format!(
        "openapi-admin-{}-{}@example.com",
        std::process::id(),
        unique()
    );
    let s = t.start(&[("REISSUE_ADMIN_EMAILS", &admin)]);
    s.vouched_user_named(&admin).await;
    let doc = document(&s).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write the document");

    let examples =
        std::env::var("REISSUE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".to_owned());
    let report = dir.path().join("report");
    let mut args = vec![
        "run",
        file.to_str().expect("utf-8 path"),
        "--url",
        s.base(),
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_schema_conformance,response_headers_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        &examples,
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report-dir",
        report.to_str().expect("utf-8 path"),
    ];
    let seed = std::env::var("REISSUE_SCHEMATHESIS_SEED").ok();
    if let Some(seed) = &seed {
        args.extend(["--seed", seed]);
    }
    let hooks = format!("{}/schemathesis_auth.py", python_dir());
    let out = run_python(
        "schemathesis",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        &args,
        &[
            ("SCHEMATHESIS_HOOKS", hooks.as_str()),
            ("REISSUE_OPENAPI_BASE", s.base()),
            ("REISSUE_OPENAPI_EMAIL", admin.as_str()),
            ("REISSUE_OPENAPI_PASSWORD", PASSWORD),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 0 with nothing tested would prove nothing.
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    let operations = contract_routes().len();
    assert_eq!(
        tested,
        Some(operations),
        "schemathesis tested too little:\n{stdout}"
    );
    assert!(
        stdout.contains(" passed") && !stdout.contains("No test cases were generated"),
        "{stdout}"
    );
}
