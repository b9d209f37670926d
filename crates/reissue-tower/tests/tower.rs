//! The layer on a plain tower stack (no axum): any `http` service works.

use std::convert::Infallible;
use std::net::SocketAddr;

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
            let user = req.extensions().get::<Identity<UserClaims>>().unwrap();
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
