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

fn test_key(name: &str) -> String {
    format!("{}/../../tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn good_key_files_are_taken() {
    for file in ["k1-ed25519.pem", "k2-p256.pem", "k3-rsa2048.pem"] {
        settings(&[("REISSUE_JWT_KEY", &test_key(file))]).unwrap();
    }
    // A retired key may be given by its public half.
    settings(&[
        ("REISSUE_JWT_KEY", &test_key("k2-p256.pem")),
        (
            "REISSUE_JWT_VERIFY_KEYS",
            &format!(
                "{}, {}",
                test_key("k1-ed25519.pub.pem"),
                test_key("k3-rsa2048.pem")
            ),
        ),
    ])
    .unwrap();
}

#[test]
fn bad_key_files_refuse_to_start_naming_the_variable() {
    let bad = [
        "bad-rsa1024.pem",
        "bad-p384.pem",
        "bad-x25519.pem",
        "bad-hmac-secret.txt",
        "no-such-file.pem",
    ];
    for var in ["REISSUE_JWT_KEY", "REISSUE_JWT_VERIFY_KEYS"] {
        for file in bad {
            let path = test_key(file);
            let line = refused(&[(var, &path)], var);
            assert!(line.contains(file), "{line}");
        }
    }
    // A public key cannot sign.
    refused(
        &[("REISSUE_JWT_KEY", &test_key("k1-ed25519.pub.pem"))],
        "REISSUE_JWT_KEY",
    );
    // One bad path among good ones.
    refused(
        &[(
            "REISSUE_JWT_VERIFY_KEYS",
            &format!(
                "{},{}",
                test_key("k1-ed25519.pem"),
                test_key("bad-rsa1024.pem")
            ),
        )],
        "REISSUE_JWT_VERIFY_KEYS",
    );
}

fn settings_of(vars: &[(&str, &str)]) -> Settings {
    settings(vars).unwrap()
}

#[test]
fn a_refused_key_file_is_never_printed() {
    let path = test_key("bad-rsa1024.pem");
    let pem = std::fs::read_to_string(&path).unwrap();
    let line = refused(&[("REISSUE_JWT_KEY", &path)], "REISSUE_JWT_KEY");
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    assert!(!line.contains(&body), "{line}");
    let settings = settings(&[("REISSUE_JWT_KEY", &test_key("k1-ed25519.pem"))]).unwrap();
    let k1 = std::fs::read_to_string(test_key("k1-ed25519.pem")).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains(k1.lines().nth(1).unwrap()), "{debug}");
    // Nor the HMAC secret, as text or as bytes.
    let secret = "a-secret-of-at-least-32-bytes-0123456789";
    let settings = settings_of(&[("REISSUE_JWT_SECRET", secret)]);
    let debug = format!("{settings:?}");
    let bytes = format!("{:?}", secret.as_bytes());
    let inner = bytes.trim_matches(|c| c == '[' || c == ']');
    assert!(!debug.contains(secret) && !debug.contains(inner), "{debug}");
}

#[test]
fn a_flag_is_refused_as_its_variable_is() {
    for (flag, var) in [
        ("--access-ttl=soon", "REISSUE_ACCESS_TTL"),
        ("--session-max-age=-1", "REISSUE_SESSION_MAX_AGE"),
        ("--trusted-proxies=10.0.0.0/99", "REISSUE_TRUSTED_PROXIES"),
        ("--jwt-secret=", "REISSUE_JWT_SECRET"),
        ("--jwt-secret=short", "REISSUE_JWT_SECRET"),
        ("--allowed-countries=GB", "REISSUE_ALLOWED_COUNTRIES"),
        ("--revocation=sometimes", "REISSUE_REVOCATION"),
        ("--cookies=maybe", "REISSUE_COOKIES"),
        ("--addr=nowhere", "REISSUE_ADDR"),
    ] {
        match Settings::try_from_args(["app", flag]) {
            Err(StartError(line)) => {
                assert!(line.starts_with(var), "{flag}: {line:?}");
                assert!(!line.contains('\n'), "one line: {line:?}");
                assert!(!line.contains("short"), "the secret is not echoed: {line}");
            }
            Ok(s) => panic!("{flag}: expected a refusal naming {var}, got {s:?}"),
        }
    }
    let s = Settings::try_from_args(["app", "--addr", "127.0.0.1:4321"]).unwrap();
    assert_eq!(s.addr().port(), 4321);
    // A flag the apps do not have: clap's first line only.
    match Settings::try_from_args(["app", "--no-such-flag"]) {
        Err(StartError(line)) => assert!(line.contains("--no-such-flag") && !line.contains('\n')),
        Ok(s) => panic!("{s:?}"),
    }
}

#[test]
fn a_blank_variable_counts_as_unset() {
    let s = settings_of(&[
        ("REISSUE_ADDR", " "),
        ("REISSUE_ACCESS_TTL", ""),
        ("DATABASE_URL", "  "),
        ("REDIS_URL", ""),
    ]);
    assert_eq!(s.addr().port(), 3000);
}

#[test]
fn debug_never_shows_a_url_password() {
    let s = settings_of(&[
        (
            "DATABASE_URL",
            "postgres://app:db-s3cret@127.0.0.1:5432/app",
        ),
        (
            "REDIS_URL",
            "rediss://default:redis-s3cret@cache.example.com:6380",
        ),
    ]);
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("db-s3cret") && !debug.contains("redis-s3cret"),
        "{debug}"
    );
    assert!(
        debug.contains("cache.example.com"),
        "the rest is shown: {debug}"
    );
}
