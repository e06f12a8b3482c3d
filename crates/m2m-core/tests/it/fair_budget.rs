//! The Clerk-miss budget shared fairly (docs/verification.md, "Under attack"): one client
//! address spraying random `mt_` tokens spends at most its share, so another address's freshly
//! minted token is still verified; the whole spray still costs at most the budget; and
//! `X-Forwarded-For` names the client only when the peer is a configured trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Extension, Json, Router};
use clerk_mock::{Endpoint, Seed};
use m2m_core::settings::{MissBudget, TrustedProxies};
use m2m_core::verifier::{PeerAddr, Reason};
use m2m_core::{AuthLayer, Principal, Verifier, VerifyError};
use rand::Rng;
use serde_json::json;
use tower::ServiceExt;

use crate::verify::{Fixture, fixture, fixture_with};

fn random_token() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..32)
        .map(|_| rng.random_range(b'A'..=b'Z') as char)
        .collect();
    format!("mt_{tail}")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

const SPRAYER: &str = "127.0.0.1";
const BOT: &str = "127.0.0.2";

impl Fixture {
    async fn from(&self, token: &str, client: &str) -> Result<Principal, VerifyError> {
        self.verifier
            .verify_token_from(token, Some(ip(client)))
            .await
    }

    fn fresh_applier_token(&self) -> String {
        let created = self.mint("JobApplier.Bot", json!({}));
        created["token"].as_str().expect("token").to_owned()
    }
}

fn refused_by_share(r: &Result<Principal, VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Unavailable { retry_after, .. }) if *retry_after >= Duration::from_secs(1))
}

#[tokio::test]
async fn a_spray_from_one_address_cannot_starve_another_addresss_new_token() {
    let f = fixture().await;
    for _ in 0..2_000 {
        let r = f.from(&random_token(), SPRAYER).await;
        assert!(
            matches!(r, Err(VerifyError::Invalid(Reason::NotFound))) || refused_by_share(&r),
            "{r:?}"
        );
    }
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        u64::from(MissBudget::PER_CLIENT.burst),
        "the sprayer spent its share only"
    );
    let stats = f.verifier.opaque_stats().expect("stats");
    assert_eq!(
        stats
            .client_share_refusals
            .load(std::sync::atomic::Ordering::Relaxed),
        2_000 - u64::from(MissBudget::PER_CLIENT.burst)
    );
    // A bot's token minted mid-spray, from another address: verified at once.
    let token = f.fresh_applier_token();
    f.from(&token, BOT).await.expect("the bot's new token");
    // And the spray goes on, still within its share as the clock moves.
    for _ in 0..5 {
        f.clock.advance(Duration::from_secs(1));
        for _ in 0..500 {
            let _ = f.from(&random_token(), SPRAYER).await;
        }
        let token = f.fresh_applier_token();
        f.from(&token, BOT)
            .await
            .expect("every second, a new token");
    }
    let share = MissBudget::PER_CLIENT;
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        u64::from(share.burst + 5 * share.per_second) + 6,
        "the sprayer's share plus the bot's six tokens"
    );
}

#[tokio::test]
async fn an_ipv6_client_counts_by_its_64() {
    let f = fixture().await;
    for i in 0..200u32 {
        let addr = format!("2001:db8:1:2:{:x}::1", i + 1);
        let _ = f.from(&random_token(), &addr).await;
    }
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        u64::from(MissBudget::PER_CLIENT.burst),
        "one /64, one share"
    );
    let token = f.fresh_applier_token();
    f.from(&token, "2001:db8:1:3::1")
        .await
        .expect("another /64");
}

#[tokio::test]
async fn many_addresses_together_still_cost_at_most_the_budget() {
    let f = fixture().await;
    let spray = |round: u32| {
        let f = &f;
        async move {
            for i in 0..400u32 {
                let addr = format!("10.{}.{}.{}", round % 200, i / 200, i % 200 + 1);
                let _ = f.from(&random_token(), &addr).await;
            }
        }
    };
    spray(0).await;
    let budget = MissBudget::default();
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), u64::from(budget.burst));
    for round in 1..=10 {
        f.clock.advance(Duration::from_secs(1));
        spray(round).await;
    }
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        u64::from(budget.burst + 10 * budget.per_second),
        "50 + 10/s, however many addresses"
    );
}

#[tokio::test]
async fn without_a_client_address_only_the_whole_budget_applies() {
    let f = fixture().await;
    for _ in 0..200 {
        let _ = f.verify(&random_token()).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 50);
}

#[tokio::test]
async fn the_share_settings_are_honoured() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.cache.per_client = MissBudget {
            burst: 3,
            per_second: 1,
        };
    })
    .await;
    for _ in 0..20 {
        let _ = f.from(&random_token(), SPRAYER).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 3);
    f.clock.advance(Duration::from_secs(2));
    for _ in 0..20 {
        let _ = f.from(&random_token(), SPRAYER).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 5);
}

#[tokio::test]
async fn jwt_m2m_tokens_cost_no_clerk_call_so_a_spray_cannot_touch_them() {
    let f = fixture().await;
    for i in 0..300u32 {
        let _ = f
            .from(
                &random_token(),
                &format!("10.0.{}.{}", i / 250, i % 250 + 1),
            )
            .await;
    }
    let calls = f.mock.calls(Endpoint::VerifyToken);
    let created = f.mint("JobApplier.Bot", json!({"token_format": "jwt"}));
    let jwt = created["token"].as_str().expect("jwt");
    f.from(jwt, BOT).await.expect("verified locally");
    f.from(jwt, SPRAYER).await.expect("from any address");
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), calls, "no Clerk call");
}

// ---- through the AuthLayer: where the client address comes from ----

fn app(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|Extension(p): Extension<Principal>| async move { Json(json!({"actor": p.actor()})) }),
        )
        .layer(AuthLayer::new(verifier))
}

/// One request from `peer` (as axum's `ConnectInfo`, which `service_kit::serve` inserts), with
/// an optional `X-Forwarded-For`.
async fn call(app: &Router, peer: &str, xff: Option<&str>, token: &str) -> StatusCode {
    let mut req = Request::builder()
        .uri("/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .extension(ConnectInfo(SocketAddr::new(ip(peer), 40_000)));
    if let Some(v) = xff {
        req = req.header("x-forwarded-for", v);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response")
        .status()
}

/// Sprays 200 random tokens from `peer`, each claiming another client in `X-Forwarded-For`.
async fn forged_spray(app: &Router, peer: &str) {
    for i in 0..200u32 {
        let xff = format!("198.51.100.{}", i % 250 + 1);
        let status = call(app, peer, Some(&xff), &random_token()).await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{status}"
        );
    }
}

#[tokio::test]
async fn the_layer_charges_the_connections_peer() {
    let f = fixture().await;
    let app = app(Arc::new(f.verifier_clone()));
    for _ in 0..100 {
        let _ = call(&app, SPRAYER, None, &random_token()).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 10);
    let token = f.fresh_applier_token();
    assert_eq!(call(&app, BOT, None, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_peer_addr_extension_works_for_servers_without_connect_info() {
    let f = fixture().await;
    let app = app(Arc::new(f.verifier_clone()));
    for _ in 0..100 {
        let req = Request::builder()
            .uri("/whoami")
            .header(header::AUTHORIZATION, format!("Bearer {}", random_token()))
            .extension(PeerAddr(ip(SPRAYER)))
            .body(Body::empty())
            .expect("request");
        let _ = app.clone().oneshot(req).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 10);
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_trusted_proxies_are_configured() {
    let f = fixture().await;
    let app = app(Arc::new(f.verifier_clone()));
    forged_spray(&app, SPRAYER).await;
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        10,
        "200 forged clients, one share: the peer's"
    );
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_when_the_peer_is_not_a_trusted_proxy() {
    let f = fixture().await;
    let app = app(Arc::new(f.verifier_clone_with(|c| {
        c.cache.trusted_proxies = "10.0.0.0/8".parse::<TrustedProxies>().expect("parse");
    })));
    forged_spray(&app, SPRAYER).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 10);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_share() {
    let f = fixture().await;
    let app = app(Arc::new(f.verifier_clone_with(|c| {
        c.cache.trusted_proxies = "10.0.0.0/8".parse::<TrustedProxies>().expect("parse");
    })));
    // The balancer's peer address is the same for everyone; the sprayer behind it is one
    // client, whatever it writes to the left of what the balancer appended.
    for i in 0..200u32 {
        let xff = format!("192.0.2.{}, {SPRAYER}", i % 250 + 1);
        let _ = call(&app, "10.0.0.5", Some(&xff), &random_token()).await;
    }
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        10,
        "the sprayer's share"
    );
    let token = f.fresh_applier_token();
    assert_eq!(
        call(&app, "10.0.0.5", Some(BOT), &token).await,
        StatusCode::OK
    );
    // Without the header, the balancer itself pays: a share of its own, not the sprayer's.
    let token = f.fresh_applier_token();
    assert_eq!(call(&app, "10.0.0.5", None, &token).await, StatusCode::OK);
}
