//! `MachineAdmin` (feature `admin`) against clerk-mock: every call of Clerk's machines API, its
//! errors, paging, and the retry rule for the calls that must not run twice.

use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint, Fault};
use m2m_core::clerk::{
    ClerkError, CreateMachineRequest, ListMachinesQuery, MachineAdmin, MachineOrder,
    UpdateMachineRequest,
};
use m2m_core::clock::ManualClock;
use secrecy::{ExposeSecret, SecretString};

use crate::support::client;

fn admin(mock: &ClerkMock, clock: &ManualClock) -> MachineAdmin {
    MachineAdmin::new(
        client(&mock.api_url(), clock),
        SecretString::from(mock.instance_secret_key()),
    )
}

fn create(name: &str) -> CreateMachineRequest {
    CreateMachineRequest {
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_get_update_scope_rotate_delete() {
    let mock = ClerkMock::start().await;
    let clock = ManualClock::new();
    let admin = admin(&mock, &clock);

    let api = admin.create(&create("api")).await.expect("create api");
    assert_eq!(api.machine.default_token_ttl, 3600);
    assert_eq!(
        api.secret_key.expose_secret(),
        mock.machine(&api.machine.id).expect("in mock").secret_key
    );
    let bot = admin
        .create(&CreateMachineRequest {
            name: "bot".into(),
            scoped_machines: vec![api.machine.id.clone()],
            default_token_ttl: Some(600),
        })
        .await
        .expect("create bot");
    assert_eq!(bot.machine.default_token_ttl, 600);
    assert_eq!(
        bot.machine.scoped_ids().collect::<Vec<_>>(),
        [api.machine.id.as_str()]
    );

    let got = admin.get(&bot.machine.id).await.expect("get");
    assert_eq!(got, bot.machine);

    let updated = admin
        .update(
            &bot.machine.id,
            &UpdateMachineRequest {
                name: Some("bot2".into()),
                default_token_ttl: Some(120),
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (updated.name.as_str(), updated.default_token_ttl),
        ("bot2", 120)
    );

    let scope = admin
        .add_scope(&api.machine.id, &bot.machine.id)
        .await
        .expect("add scope");
    assert_eq!(
        (scope.from_machine_id.as_str(), scope.to_machine_id.as_str()),
        (api.machine.id.as_str(), bot.machine.id.as_str())
    );
    let again = admin
        .add_scope(&api.machine.id, &bot.machine.id)
        .await
        .expect_err("a repeated scope");
    assert!(
        matches!(again, ClerkError::BadRequest { status: 409, .. }),
        "{again:?}"
    );
    let removed = admin
        .remove_scope(&api.machine.id, &bot.machine.id)
        .await
        .expect("remove scope");
    assert!(removed.deleted);
    let gone = admin
        .remove_scope(&api.machine.id, &bot.machine.id)
        .await
        .expect_err("already removed");
    assert!(matches!(gone, ClerkError::NotFound { .. }), "{gone:?}");

    let key = admin.secret_key(&bot.machine.id).await.expect("secret key");
    assert_eq!(key.expose_secret(), bot.secret_key.expose_secret());
    let rotated = admin
        .rotate_secret_key(&bot.machine.id, Duration::from_secs(60))
        .await
        .expect("rotate");
    assert_ne!(rotated.expose_secret(), key.expose_secret());
    assert_eq!(
        mock.machine(&bot.machine.id).expect("bot").secret_key,
        rotated.expose_secret()
    );

    let deleted = admin.delete(&bot.machine.id).await.expect("delete");
    assert!(deleted.deleted);
    let missing = admin.get(&bot.machine.id).await.expect_err("deleted");
    assert!(
        matches!(missing, ClerkError::NotFound { .. }),
        "{missing:?}"
    );
    assert_eq!(missing.code(), Some("machine_not_found"));
}

#[tokio::test]
async fn list_all_reads_every_page_and_list_honours_query_and_order() {
    let mock = ClerkMock::start().await;
    let clock = ManualClock::new();
    let admin = admin(&mock, &clock);
    // 1,203 machines: three pages of 500; created directly in the mock to keep the test fast.
    for i in 0..1203 {
        mock.create_machine(&format!("m{i:04}"), &[]);
    }
    let all = admin.list_all().await.expect("all pages");
    assert_eq!(all.len(), 1203);
    assert_eq!(all[0].name, "m0000", "oldest first");
    assert_eq!(mock.calls(Endpoint::ListMachines), 3);

    let page = admin
        .list(&ListMachinesQuery {
            limit: Some(2),
            offset: Some(1),
            query: Some("m000".into()),
            order_by: Some(MachineOrder::NameDescending),
        })
        .await
        .expect("page");
    assert_eq!(page.total_count, 10, "m0000..m0009 match");
    let names: Vec<_> = page.data.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["m0008", "m0007"]);
}

#[tokio::test]
async fn requests_clerk_would_refuse_are_refused_before_sending() {
    let mock = ClerkMock::start().await;
    let clock = ManualClock::new();
    let admin = admin(&mock, &clock);
    let m = admin.create(&create("a")).await.expect("create").machine;
    let before = mock.total_requests();
    let refusals = [
        admin
            .rotate_secret_key(&m.id, Duration::from_secs(28_801))
            .await
            .err(),
        admin
            .rotate_secret_key(&m.id, Duration::from_millis(1500))
            .await
            .err(),
        admin.create(&create("")).await.err(),
        admin.create(&create(&"x".repeat(256))).await.err(),
        admin
            .create(&CreateMachineRequest {
                name: "a".into(),
                default_token_ttl: Some(0),
                ..Default::default()
            })
            .await
            .err(),
        admin.get("mch_x/secret_key").await.err(),
        admin.add_scope(&m.id, "../machines").await.err(),
        admin
            .list(&ListMachinesQuery {
                limit: Some(501),
                ..Default::default()
            })
            .await
            .err(),
    ];
    for (i, r) in refusals.iter().enumerate() {
        assert!(
            matches!(r, Some(ClerkError::BadRequest { status: 422, .. })),
            "{i}: {r:?}"
        );
    }
    assert_eq!(mock.total_requests(), before, "nothing was sent");
    // The bounds themselves pass.
    admin
        .rotate_secret_key(&m.id, Duration::from_secs(28_800))
        .await
        .expect("8 h grace");
    admin
        .rotate_secret_key(&m.id, Duration::ZERO)
        .await
        .expect("no grace");
}

#[tokio::test]
async fn clerk_errors_surface_typed_and_without_the_key() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let machine_key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("bot")
        .secret_key;
    let wrong = MachineAdmin::new(
        client(&mock.api_url(), &clock),
        SecretString::from(machine_key.clone()),
    );
    let err = wrong.list_all().await.expect_err("a machine key");
    assert!(matches!(err, ClerkError::Unauthorized { .. }), "{err:?}");
    assert!(!format!("{err} {err:?} {wrong:?}").contains(&machine_key));
    let instance_key = mock.instance_secret_key();
    let admin = admin(&mock, &clock);
    assert!(!format!("{admin:?}").contains(&instance_key));
    let err = admin
        .add_scope("mch_2JobApplierBot0000000000000", "mch_nosuchmachine")
        .await
        .expect_err("unknown target");
    assert!(matches!(err, ClerkError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn create_and_rotate_retry_only_a_429() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let admin = admin(&mock, &clock);
    let bot = mock.machine_by_name("JobApplier.Bot").expect("bot");

    mock.inject(Some(Endpoint::CreateMachine), Fault::status(502), 1);
    let err = admin.create(&create("x")).await.expect_err("502");
    assert!(matches!(err, ClerkError::Unavailable { .. }), "{err:?}");
    assert_eq!(mock.calls(Endpoint::CreateMachine), 1, "not retried");
    mock.inject(
        Some(Endpoint::RotateMachineSecretKey),
        Fault::status(503),
        1,
    );
    admin
        .rotate_secret_key(&bot.id, Duration::ZERO)
        .await
        .expect_err("503");
    assert_eq!(
        mock.calls(Endpoint::RotateMachineSecretKey),
        1,
        "not retried"
    );

    mock.inject(Some(Endpoint::CreateMachine), Fault::rate_limited(1), 1);
    admin.create(&create("y")).await.expect("retried after 429");
    assert_eq!(mock.calls(Endpoint::CreateMachine), 3);
    assert_eq!(mock.machines().iter().filter(|m| m.name == "y").count(), 1);

    // Reads are retried as every other call is.
    mock.inject(Some(Endpoint::GetMachine), Fault::status(502), 1);
    admin.get(&bot.id).await.expect("retried");
    assert_eq!(mock.calls(Endpoint::GetMachine), 2);
}
