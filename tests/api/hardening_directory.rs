//! Regression tests for the directory and membership defects of the hardening issue:
//! colliding directory ids (9), the external group limit during expansion (5), and the
//! orphan-member and dropped-invalidation races (11).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use gcemu::domain::directory::ExternalMemberType;
use gcemu::domain::ids::{ConnectionId, TenantId};
use gcemu::domain::principal::Caller;
use gcemu::store::groups::ExternalGroup;
use serde_json::{json, Value};

use crate::access::{build_tenant, put_sample_items};
use crate::helpers::{Reply, TestApp};
use crate::items::ready_app;
use crate::search::{search_as, token_for};

async fn create_user(app: &TestApp, id: &str, upn: &str) -> Reply {
    app.post(
        "/v1.0/users",
        &json!({"id": id, "userPrincipalName": upn, "displayName": upn}),
    )
    .await
}

async fn create_group(app: &TestApp, id: &str) -> Reply {
    app.post("/v1.0/groups", &json!({"id": id, "displayName": id}))
        .await
}

async fn add_directory_member(app: &TestApp, group: &str, member: &str) -> Reply {
    app.post(
        &format!("/v1.0/groups/{group}/members/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")}),
    )
    .await
}

async fn access(app: &TestApp, item: &str, user: &str) -> Value {
    let reply = app
        .get(&format!(
            "/_emulator/connections/tickets/items/{item}/access?user={user}"
        ))
        .await;
    assert_eq!(reply.status, 200, "{item}/{user}: {}", reply.body);
    reply.body
}

#[track_caller]
fn assert_clash(reply: &Reply, property: &str) {
    reply.assert_error(400, "Request_BadRequest");
    assert!(
        reply.error_message().starts_with(&format!(
            "Another object with the same value for property {property} already exists"
        )),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_user_id_or_upn_that_is_already_a_directory_name_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        create_user(&app, "adele-id", "adele@contoso.com")
            .await
            .status,
        201
    );
    assert_eq!(create_group(&app, "sales").await.status, 201);

    let reply = create_user(&app, "ADELE@contoso.com", "other@contoso.com").await;
    assert_clash(&reply, "id");
    assert!(reply
        .error_message()
        .contains("userPrincipalName of a user"));
    assert_clash(
        &create_user(&app, "Sales", "sales-person@contoso.com").await,
        "id",
    );
    assert_clash(
        &create_user(&app, "ADELE-ID", "adele2@contoso.com").await,
        "id",
    );
    assert_eq!(
        create_user(&app, "bob@contoso.com", "robert@contoso.com")
            .await
            .status,
        201,
        "an id may look like a UPN while no one uses it"
    );
    assert_clash(
        &create_user(&app, "someone", "BOB@contoso.com").await,
        "userPrincipalName",
    );

    assert_eq!(
        app.get("/v1.0/users/adele@contoso.com").await.body["id"],
        "adele-id"
    );
    assert_eq!(
        app.get("/v1.0/users/bob@contoso.com").await.body["userPrincipalName"],
        "robert@contoso.com"
    );
    let users = app.get("/v1.0/users").await.body;
    assert_eq!(users["value"].as_array().unwrap().len(), 2, "{users}");
}

#[tokio::test]
async fn a_group_id_that_is_already_a_directory_name_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        create_user(&app, "adele-id", "adele@contoso.com")
            .await
            .status,
        201
    );
    assert_clash(&create_group(&app, "Adele-Id").await, "id");
    assert_clash(&create_group(&app, "adele@contoso.com").await, "id");
    assert_eq!(create_group(&app, "sales").await.status, 201);
    assert_clash(&create_group(&app, "SALES").await, "id");
    let groups = app.get("/v1.0/groups").await.body;
    assert_eq!(groups["value"].as_array().unwrap().len(), 1, "{groups}");
}

#[tokio::test]
async fn ids_that_cannot_be_a_path_segment_are_refused() {
    let app = TestApp::spawn().await;
    let reply = create_user(&app, "a/b", "ab@contoso.com").await;
    reply.assert_error(400, "Request_BadRequest");
    assert!(reply.error_message().contains("'/'"), "{}", reply.body);
    create_group(&app, " padded")
        .await
        .assert_error(400, "Request_BadRequest");
    assert_eq!(
        app.get("/v1.0/users").await.body["value"],
        json!([]),
        "nothing was stored"
    );
}

/// Rows written before ids were checked (here forced through SQL): a user and a group both
/// called `twin`. Membership rows carry the member type, so the user does not inherit the
/// group's memberships, and deleting the user keeps the group's.
#[tokio::test]
async fn a_user_and_a_group_with_the_same_id_keep_their_own_memberships() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    assert_eq!(
        create_user(&app, "twin", "twin@contoso.com").await.status,
        201
    );
    assert_eq!(create_group(&app, "staff").await.status, 201);
    assert_eq!(create_group(&app, "admins").await.status, 201);
    let tenant = TenantId::default_tenant();
    app.state
        .store
        .write(move |db| {
            db.execute(
                "INSERT INTO directory_groups (tenant_id, id, display_name) VALUES (?1, 'twin', 'Twin group')",
                [tenant.as_str()],
            )?;
            db.execute(
                "INSERT INTO directory_members (tenant_id, group_id, member_type, member_id) VALUES (?1, 'admins', 'group', 'twin')",
                [tenant.as_str()],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        add_directory_member(&app, "staff", "twin").await.status,
        204
    );
    for (item, group) in [("staffonly", "staff"), ("adminsonly", "admins")] {
        let reply = app
            .put(
                &format!("/v1.0/external/connections/tickets/items/{item}"),
                &json!({"acl": [{"type": "group", "value": group, "accessType": "grant"}],
                        "properties": {"title": item}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(
        access(&app, "staffonly", "twin@contoso.com").await["allowed"],
        true,
        "the user 'twin' was added to staff (a lookup resolves users first)"
    );
    assert_eq!(
        access(&app, "adminsonly", "twin@contoso.com").await["allowed"],
        false,
        "the group 'twin' in admins does not make the user 'twin' a member"
    );

    assert_eq!(app.delete("/v1.0/users/twin@contoso.com").await.status, 204);
    let members = app.get("/v1.0/groups/admins/members").await.body;
    assert_eq!(
        members["value"][0]["@odata.type"], "#microsoft.graph.group",
        "deleting the user kept the group's membership: {members}"
    );
    assert_eq!(members["value"][0]["id"], "twin");
    assert_eq!(
        app.get("/v1.0/groups/staff/members").await.body["value"],
        json!([])
    );
}

/// Adds and a delete of the same external group race; once the group is created again it has
/// no members: every add either saw the group (and the delete removed its row) or was refused.
#[tokio::test]
async fn a_group_deleted_during_member_adds_comes_back_without_members() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    let groups = "/v1.0/external/connections/tickets/groups";
    for round in 0..8 {
        let reply = app.post(groups, &json!({"id": "racing"})).await;
        assert_eq!(reply.status, 201, "round {round}: {}", reply.body);
        let app = &app;
        let adds = (0..24).map(|index| async move {
            let body = json!({"id": format!("user-{round}-{index}@contoso.com"), "type": "user"});
            app.post(&format!("{groups}/racing/members"), &body).await
        });
        let racing = format!("{groups}/racing");
        let delete = app.delete(&racing);
        let (replies, deleted) = tokio::join!(futures_join_all(adds.collect::<Vec<_>>()), delete);
        assert_eq!(deleted.status, 204, "{}", deleted.body);
        for reply in &replies {
            assert!(
                reply.status == 201 || reply.status == 404,
                "{}: {}",
                reply.status,
                reply.body
            );
        }
        let reply = app.post(groups, &json!({"id": "racing"})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let tenant = TenantId::default_tenant();
        let memberships = app
            .state
            .store
            .read(move |db| {
                gcemu::store::groups::all_memberships(db, &tenant, &ConnectionId::lookup("tickets"))
            })
            .await
            .unwrap();
        assert_eq!(
            memberships,
            vec![],
            "round {round}: orphan members came back"
        );
        assert_eq!(app.delete(&format!("{groups}/racing")).await.status, 204);
    }
}

/// Awaits every future concurrently (in one task), keeping their order.
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Polls `future` once and drops it, as axum does with a handler whose client disconnected.
fn poll_once_then_drop<F: Future>(future: F) {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    assert!(
        future.as_mut().poll(&mut context).is_pending(),
        "the write waits for the store, which is held"
    );
}

/// Holds the store thread until the returned sender is used (or dropped), so that jobs queue.
fn hold_the_store(app: &TestApp) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    poll_once_then_drop(app.state.store.read(move |_| {
        let _ = held.recv();
        Ok(())
    }));
    release
}

/// A caller whose future is dropped right after its write was queued still invalidates the
/// cached expansion: the invalidation is the write's post-commit effect.
#[tokio::test]
async fn a_membership_write_whose_caller_went_away_still_invalidates_the_cache() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    let caller = Caller {
        tenant: TenantId::default_tenant(),
        ..Caller::default_app()
    };

    assert_eq!(
        access(&app, "nestedEntra", "erin@contoso.com").await["allowed"],
        false,
        "cached: erin is in no group"
    );
    let release = hold_the_store(&app);
    poll_once_then_drop(gcemu::service::directory::add_member(
        &app.state,
        &caller,
        "allstaff",
        "erin@contoso.com",
    ));
    release.send(()).unwrap();
    assert_eq!(
        access(&app, "nestedEntra", "erin@contoso.com").await["allowed"],
        true,
        "the dropped directory add committed and invalidated the cache"
    );

    assert_eq!(
        access(&app, "nestedExternal", "dave@contoso.com").await["allowed"],
        false
    );
    let release = hold_the_store(&app);
    poll_once_then_drop(gcemu::service::groups::add_member(
        &app.state,
        &caller,
        &ConnectionId::lookup("tickets"),
        "tier2",
        "dave@contoso.com",
        ExternalMemberType::User,
    ));
    release.send(()).unwrap();
    assert_eq!(
        access(&app, "nestedExternal", "dave@contoso.com").await["allowed"],
        true,
        "the dropped external add committed and invalidated the cache"
    );
}

/// Deleting a connection drops its external groups; the cache forgets them even when the
/// request is dropped right after its write was queued, so a connection created again with
/// the same id and an empty group of the same name grants nothing through the old members.
#[tokio::test]
async fn a_dropped_connection_delete_still_forgets_the_connections_groups() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    assert_eq!(
        access(&app, "nestedExternal", "bob@contoso.com").await["allowed"],
        true,
        "cached: bob is in helpdesk, in tier2"
    );
    let caller = Caller {
        tenant: TenantId::default_tenant(),
        ..Caller::default_app()
    };
    let release = hold_the_store(&app);
    poll_once_then_drop(gcemu::service::connections::delete(
        &app.state,
        &caller,
        &ConnectionId::lookup("tickets"),
    ));
    release.send(()).unwrap();
    app.create_connection("tickets").await;
    app.register_schema("tickets", crate::items::ticket_schema())
        .await;
    put_sample_items(&app).await;
    let reply = app
        .post(
            "/v1.0/external/connections/tickets/groups",
            &json!({"id": "tier2"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        access(&app, "nestedExternal", "bob@contoso.com").await["allowed"],
        false,
        "the new tier2 has no members"
    );
}

/// A user in more external groups than a query allows is refused with 400 (the walk stops at
/// the first group too many); at the limit the search runs.
#[tokio::test]
async fn a_user_in_more_external_groups_than_a_query_allows_gets_400() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    let limit = gcemu::domain::acl::MAX_EXTERNAL_GROUPS_PER_QUERY;
    let tenant = TenantId::default_tenant();
    app.state
        .store
        .write(move |db| {
            let connection_id = ConnectionId::lookup("tickets");
            for index in 0..limit {
                let group = ExternalGroup {
                    id: format!("wide{index}"),
                    display_name: None,
                    description: None,
                };
                gcemu::store::groups::insert(db, &tenant, &connection_id, &group)?;
                gcemu::store::groups::add_member(
                    db,
                    &tenant,
                    &connection_id,
                    &group.id,
                    "erin@contoso.com",
                    ExternalMemberType::User,
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    app.state.principals.clear();
    let token = token_for(&app, "erin@contoso.com").await;
    let request = json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"], "query": {"queryString": "quokka"}});
    let reply = search_as(&app, &token, request.clone()).await;
    assert_eq!(
        reply.status, 200,
        "{limit} groups are allowed: {}",
        reply.body
    );

    let reply = app
        .post(
            "/v1.0/external/connections/tickets/groups",
            &json!({"id": "one-too-many"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = app
        .post(
            "/v1.0/external/connections/tickets/groups/one-too-many/members",
            &json!({"id": "erin@contoso.com", "type": "user"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = search_as(&app, &token, request).await;
    reply.assert_error(400, "InvalidRequest");
    assert!(
        reply
            .error_message()
            .contains(&format!("more than the {limit} external groups")),
        "{}",
        reply.body
    );
}
