//! `serve` the way the conformance suite calls it: state built elsewhere,
//! the server in its own actix System on its own thread.

use std::net::TcpListener;

use example_common::Settings;
use serde_json::{Value, json};

#[test]
fn serves_in_its_own_system() {
    let dir = std::env::temp_dir().join(format!("actix-app-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("users.sqlite").display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db.clone()),
        "REISSUE_ADMIN_EMAILS" => Some("root@example.com".into()),
        _ => None,
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = runtime.block_on(settings.build()).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(actix_app::serve(listener, state))
    });

    runtime.block_on(async {
        let http = reqwest::Client::new();
        let res = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);

        let creds = json!({ "email": "alice@example.com", "password": "password1" });
        let res = http
            .post(format!("{base}/signup"))
            .json(&creds)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = http
            .post(format!("{base}/auth/login"))
            .json(&creds)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let at = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();

        let res = http
            .get(format!("{base}/me"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let me: Value = res.json().await.unwrap();
        assert_eq!(
            (me["email"].as_str(), me["roles"].clone()),
            (Some("alice@example.com"), json!([]))
        );

        let res = http
            .post(format!("{base}/admin/users/1/logout"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "insufficient_scope"
        );
        assert_eq!(
            http.post(format!("{base}/me"))
                .send()
                .await
                .unwrap()
                .status(),
            405
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
