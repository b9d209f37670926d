//! Start-up refusals of the example apps' configuration: one line naming
//! the variable.

use std::collections::HashMap;

use example_common::{Settings, StartError};

fn settings(vars: &[(&str, &str)]) -> Result<Settings, StartError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(|name| vars.get(name).cloned())
}

#[track_caller]
fn refused(vars: &[(&str, &str)], var: &str) -> String {
    match settings(vars) {
        Err(StartError(line)) => {
            assert!(line.starts_with(var), "{line:?} does not name {var}");
            assert!(!line.contains('\n'), "one line: {line:?}");
            line
        }
        Ok(s) => panic!("{vars:?}: expected a refusal naming {var}, got {s:?}"),
    }
}

#[test]
fn an_empty_jwt_secret_refuses_to_start() {
    for blank in ["", " ", "\t", "  \n "] {
        let line = refused(&[("REISSUE_JWT_SECRET", blank)], "REISSUE_JWT_SECRET");
        assert!(line.contains("empty"), "{line}");
    }
    // Unset is the documented random-key mode, not a refusal.
    settings(&[]).expect("unset secret: a random key");
    // Short is refused, long enough is fine.
    refused(&[("REISSUE_JWT_SECRET", "too short")], "REISSUE_JWT_SECRET");
    settings(&[("REISSUE_JWT_SECRET", &"s".repeat(32))]).unwrap();
}

#[test]
fn the_secret_never_appears_in_the_refusal() {
    let secret = "short-but-secret";
    let line = refused(&[("REISSUE_JWT_SECRET", secret)], "REISSUE_JWT_SECRET");
    assert!(!line.contains(secret), "{line}");
}
