//! The layer on a plain tower stack (no axum): any `http` service works.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use reissue_core::{Algorithm, Identity, Key, KeySet, TokenCodec, UserClaims, Verifier};
use reissue_tower::{ReissueLayer, RequestHead};
use tower::{ServiceBuilder, ServiceExt, service_fn};

fn codec() -> TokenCodec {
    let key = Key::hmac("k1", Algorithm::HS256, &[9; 32]).unwrap();
    TokenCodec::new(KeySet::new(key).unwrap(), "iss", "aud", 5)
}

#[tokio::test]
async fn works_on_any_http_service() {
    let verifier: Verifier<UserClaims> = Verifier::stateless(codec(), "api");
    let service = ServiceBuilder::new()
        .layer(ReissueLayer::new(verifier))
        .service(service_fn(|req: Request<String>| async move {
            let user = req.extensions().get::<Arc<Identity<UserClaims>>>().unwrap();
            let peer = reissue_core::HttpRequest::peer_addr(&RequestHead::from(&req));
            Ok::<_, Infallible>(Response::new(format!("{} from {:?}", user.user_id, peer)))
        }));

    let res = service
        .clone()
        .oneshot(Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        br#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
    );

    let sid = reissue_core::SessionId::random();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = codec()
        .issue_access("42", &sid, &UserClaims::new("x@y.z", vec![]), now, 60)
        .unwrap();
    let mut req = Request::new(String::new());
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req.extensions_mut()
        .insert(SocketAddr::from(([10, 0, 0, 1], 4000)));
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"42 from Some(10.0.0.1)");
}

/// tower-http's accessors: what the layer wrapped stays reachable.
#[test]
fn the_inner_service_is_reachable() {
    #[derive(Clone, Debug, PartialEq)]
    struct Inner(u32);
    let verifier: Verifier<UserClaims> = Verifier::stateless(codec(), "api");
    let mut service = tower::Layer::layer(&ReissueLayer::new(verifier), Inner(1));
    assert_eq!(service.get_ref(), &Inner(1));
    service.get_mut().0 = 2;
    assert_eq!(service.into_inner(), Inner(2));
}

/// The rejection tells its status and body, as axum's own rejections do,
/// and they are what the client gets.
#[cfg(feature = "axum")]
#[tokio::test]
async fn the_rejection_tells_its_status_and_body() {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    use reissue_tower::AuthUser;

    // No layer: a 500 that says what to add.
    let (mut parts, ()) = Request::new(()).into_parts();
    let rejection = AuthUser::<UserClaims>::from_request_parts(&mut parts, &())
        .await
        .unwrap_err();
    assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        rejection.body_text().contains("ReissueLayer"),
        "{}",
        rejection.body_text()
    );
    let (status, text) = (rejection.status(), rejection.body_text());
    let res = rejection.into_response();
    assert_eq!(res.status(), status);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], text.as_bytes());

    // An optional layer let an anonymous request through: 401.
    let verifier: Verifier<UserClaims> = Verifier::stateless(codec(), "api");
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(
                |user: Result<AuthUser<UserClaims>, reissue_tower::AuthUserRejection>| async move {
                    let rejection = user.unwrap_err();
                    format!("{} {}", rejection.status().as_u16(), rejection.body_text())
                },
            ),
        )
        .route_layer(ReissueLayer::new(verifier).optional());
    let res = app
        .oneshot(Request::get("/").body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"401 {"error":"unauthorized","error_description":"a bearer token is required"}"#
    );
}
