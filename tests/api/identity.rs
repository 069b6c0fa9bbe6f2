//! gcemu as identity provider (token endpoint, metadata, keys), strict mode's checks, lenient
//! mode's fixes, https, and tenant isolation in both modes.

use gcemu::auth::AuthMode;
use gcemu::config::Config;
use gcemu::identity::tls::CertificateSource;
use serde_json::{json, Value};

use crate::helpers::{token, Reply, TestApp};

const TENANT: &str = "6f1e3b7a-0c4d-4e2a-9b1f-2d3c4e5f6a7b";
const OTHER_TENANT: &str = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";
const OWNER_APP: &str = "11111111-2222-3333-4444-555555555555";
const FOREIGN_APP: &str = "22222222-3333-4444-5555-666666666666";
const POWERLESS_APP: &str = "33333333-4444-5555-6666-777777777777";
const SECRET: &str = "s3cret-value";
const USER_ID: &str = "5d5a7c1e-1111-4aaa-9bbb-000000000001";
/// The other tenant's user with the same UPN.
const OTHER_USER_ID: &str = "5d5a7c1e-1111-4aaa-9bbb-0000000000ff";
const USER_UPN: &str = "adele@contoso.com";
const DIRECTORY_GROUP: &str = "5d5a7c1e-2222-4aaa-9bbb-000000000002";

async fn strict_app() -> TestApp {
    let mut config = Config::for_tests();
    config.auth = AuthMode::Strict;
    TestApp::spawn_with(config).await
}

async fn declare_app(app: &TestApp, tenant: &str, app_id: &str, roles: &[&str]) {
    let reply = app
        .post(
            "/_emulator/applications",
            &json!({"tenant": tenant, "appId": app_id, "displayName": format!("app {app_id}"),
                    "secrets": [SECRET], "roles": roles, "scopes": ["ExternalItem.Read.All"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// A token from the control plane (`POST /_emulator/token`).
async fn minted(app: &TestApp, request: Value) -> String {
    let reply = app.post("/_emulator/token", &request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_string()
}

/// A token from the token endpoint.
async fn from_token_endpoint(app: &TestApp, tenant: &str, form: &[(&str, &str)]) -> Reply {
    let body: String = form
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    app.post_raw(
        &format!("/{tenant}/oauth2/v2.0/token"),
        "application/x-www-form-urlencoded",
        body,
    )
    .await
}

async fn call(
    app: &TestApp,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    app.send(request).await
}

fn assert_entra_error(reply: &Reply, status: u16, error: &str, code: u64) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], error, "{}", reply.body);
    assert_eq!(reply.body["error_codes"], json!([code]), "{}", reply.body);
    let description = reply.body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for member in ["timestamp", "trace_id", "correlation_id"] {
        assert!(reply.body[member].is_string(), "{member}: {}", reply.body);
    }
}

#[tokio::test]
async fn client_credentials_give_a_signed_token_that_the_published_keys_verify() {
    let app = strict_app().await;
    declare_app(&app, TENANT, OWNER_APP, &["ExternalItem.ReadWrite.OwnedBy"]).await;
    let reply = from_token_endpoint(
        &app,
        TENANT,
        &[
            ("client_id", OWNER_APP),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_info", "1"),
            (
                "claims",
                r#"{"access_token": {"xms_cc": {"values": ["CP1"]}}}"#,
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 3599);
    let access_token = reply.body["access_token"].as_str().unwrap();

    // The metadata points at the token endpoint and the keys, on the host the client used.
    let metadata = app
        .get(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"))
        .await;
    assert_eq!(metadata.status, 200);
    assert_eq!(
        metadata.body["token_endpoint"],
        app.url(&format!("/{TENANT}/oauth2/v2.0/token"))
    );
    assert!(metadata.body["authorization_endpoint"].is_string());
    let keys = app
        .send(app.client.get(metadata.body["jwks_uri"].as_str().unwrap()))
        .await;
    let jwk = &keys.body["keys"][0];
    let header = jsonwebtoken::decode_header(access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    let claims = jsonwebtoken::decode::<Value>(access_token, &key, &validation)
        .expect("the published key verifies the token")
        .claims;
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], OWNER_APP);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["roles"], json!(["ExternalItem.ReadWrite.OwnedBy"]));
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{TENANT}/"));

    // The token works in strict mode.
    let connections = call(
        &app,
        Some(access_token),
        "GET",
        "/v1.0/external/connections",
        None,
    )
    .await;
    assert_eq!(connections.status, 403, "{}", connections.body);
    let admin = from_token_endpoint(
        &app,
        TENANT,
        &[
            ("client_id", "00000000-0000-0000-0000-0000000000a1"),
            ("client_secret", "gcemu-default-secret"),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    let admin = admin.body["access_token"].as_str().unwrap();
    let connections = call(&app, Some(admin), "GET", "/v1.0/external/connections", None).await;
    assert_eq!(connections.status, 200, "{}", connections.body);
}

#[tokio::test]
async fn the_token_endpoint_refuses_as_entra_does() {
    let app = strict_app().await;
    declare_app(&app, TENANT, OWNER_APP, &["ExternalItem.ReadWrite.All"]).await;
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"id": USER_ID, "userPrincipalName": USER_UPN, "displayName": "Adele",
                    "passwordProfile": {"password": "p@ss"}}),
        )
        .await;
    assert_eq!(
        reply.status, 401,
        "strict mode needs a token for the directory too"
    );
    let admin = minted(&app, json!({"tenant": TENANT})).await;
    for (id, upn, enabled) in [
        (USER_ID, USER_UPN, true),
        (
            "5d5a7c1e-1111-4aaa-9bbb-000000000009",
            "gone@contoso.com",
            false,
        ),
    ] {
        let reply = call(&app, Some(&admin), "POST", "/v1.0/users", Some(&json!({"id": id, "userPrincipalName": upn,
            "displayName": upn, "accountEnabled": enabled, "passwordProfile": {"password": "p@ss"}}))).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let credentials = |secret: &'static str| {
        vec![
            ("client_id", OWNER_APP),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &credentials("wrong")).await,
        401,
        "invalid_client",
        7000215,
    );
    let mut unknown = credentials(SECRET);
    unknown[0] = ("client_id", FOREIGN_APP);
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &unknown).await,
        400,
        "unauthorized_client",
        700016,
    );
    // The app is declared in TENANT only.
    assert_entra_error(
        &from_token_endpoint(&app, OTHER_TENANT, &credentials(SECRET)).await,
        400,
        "unauthorized_client",
        700016,
    );
    let mut no_default = credentials(SECRET);
    no_default[3] = ("scope", "https://graph.microsoft.com/ExternalItem.Read.All");
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &no_default).await,
        400,
        "invalid_scope",
        1002012,
    );
    let mut no_secret = credentials(SECRET);
    no_secret.remove(1);
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &no_secret).await,
        401,
        "invalid_client",
        7000218,
    );
    let mut no_grant = credentials(SECRET);
    no_grant.remove(2);
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &no_grant).await,
        400,
        "invalid_request",
        900144,
    );
    let mut device_code = credentials(SECRET);
    device_code[2] = ("grant_type", "device_code");
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &device_code).await,
        400,
        "unsupported_grant_type",
        70003,
    );

    // The password grant, for directory users.
    let password = |username: &'static str, password: &'static str| {
        vec![
            ("client_id", OWNER_APP),
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            (
                "scope",
                "https://graph.microsoft.com/.default openid profile offline_access",
            ),
        ]
    };
    let signed_in = from_token_endpoint(&app, TENANT, &password(USER_UPN, "p@ss")).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let claims = gcemu::auth::jwt_claims(signed_in.body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["oid"], USER_ID);
    assert_eq!(claims["upn"], USER_UPN);
    assert_eq!(claims["scp"], "ExternalItem.Read.All");
    // The answered scope holds what was asked for, so MSAL's cache finds the token again.
    let answered: Vec<&str> = signed_in.body["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .collect();
    assert!(
        answered.contains(&"https://graph.microsoft.com/ExternalItem.Read.All"),
        "{answered:?}"
    );
    assert!(
        answered.contains(&"https://graph.microsoft.com/.default"),
        "{answered:?}"
    );
    // With `openid`, the ID token MSAL builds its account from; plain JSON, as Entra answers.
    assert!(signed_in
        .header("content-type")
        .starts_with("application/json"));
    assert!(
        !signed_in.header("content-type").contains("odata"),
        "{}",
        signed_in.header("content-type")
    );
    let id_token = gcemu::auth::jwt_claims(signed_in.body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id_token["aud"], OWNER_APP);
    assert_eq!(id_token["iss"], app.url(&format!("/{TENANT}/v2.0")));
    assert_eq!(id_token["preferred_username"], USER_UPN);
    assert_eq!(id_token["oid"], USER_ID);
    let mut with_info = password(USER_UPN, "p@ss");
    with_info.push(("client_info", "1"));
    let reply = from_token_endpoint(&app, TENANT, &with_info).await;
    use base64::Engine;
    let info: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(reply.body["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info, json!({"uid": USER_ID, "utid": TENANT}));
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &password(USER_UPN, "nope")).await,
        400,
        "invalid_grant",
        50126,
    );
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &password("nobody@contoso.com", "p@ss")).await,
        400,
        "invalid_grant",
        50034,
    );
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &password("gone@contoso.com", "p@ss")).await,
        400,
        "invalid_grant",
        50057,
    );
    let mut unconsented = password(USER_UPN, "p@ss");
    unconsented[4] = ("scope", "https://graph.microsoft.com/Sites.FullControl.All");
    assert_entra_error(
        &from_token_endpoint(&app, TENANT, &unconsented).await,
        400,
        "invalid_grant",
        65001,
    );
    // A body that is not a form.
    let json_body = app
        .post(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &json!({"grant_type": "client_credentials"}),
        )
        .await;
    assert_entra_error(&json_body, 400, "invalid_request", 900144);
}

#[tokio::test]
async fn lenient_mode_issues_tokens_to_unknown_clients_but_checks_known_secrets() {
    let app = TestApp::spawn().await;
    let anyone = from_token_endpoint(
        &app,
        "contoso-tenant",
        &[
            ("client_id", FOREIGN_APP),
            ("client_secret", "anything"),
            ("grant_type", "client_credentials"),
            ("scope", "http://127.0.0.1/.default"),
        ],
    )
    .await;
    assert_eq!(anyone.status, 200, "{}", anyone.body);
    let claims = gcemu::auth::jwt_claims(anyone.body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["tid"], "contoso-tenant");
    assert_eq!(claims["appid"], FOREIGN_APP);
    let wrong_default_secret = from_token_endpoint(
        &app,
        "contoso-tenant",
        &[
            ("client_id", "00000000-0000-0000-0000-0000000000a1"),
            ("client_secret", "anything"),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_entra_error(&wrong_default_secret, 401, "invalid_client", 7000215);
}

#[tokio::test]
async fn a_certificate_credential_signs_in_with_a_client_assertion() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let app = strict_app().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["connector".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let reply = app
        .post(
            "/_emulator/applications",
            &json!({"tenant": TENANT, "appId": OWNER_APP, "displayName": "cert app",
                    "certificates": [cert.pem()], "roles": ["ExternalConnection.ReadWrite.All"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let now = chrono::Utc::now().timestamp();
    let assertion = |audience: String| {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            json!({"aud": audience, "iss": OWNER_APP, "sub": OWNER_APP, "jti": uuid::Uuid::new_v4().to_string(),
                   "nbf": now - 5, "exp": now + 600})
            .to_string(),
        );
        let message = format!("{header}.{payload}");
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let signature = signer.sign(&rng, message.as_bytes()).unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let endpoint = app.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let good = assertion(endpoint.clone());
    let form = |assertion: &str| {
        vec![
            ("client_id", OWNER_APP.to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", assertion.to_string()),
            ("grant_type", "client_credentials".to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
        ]
    };
    let borrowed =
        |form: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { form.clone() };
    let send = |pairs: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            from_token_endpoint(app, TENANT, &refs).await
        }
    };
    let reply = send(borrowed(&form(&good))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let claims = gcemu::auth::jwt_claims(reply.body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["appidacr"], "2");
    let for_another_tenant = assertion(app.url(&format!("/{OTHER_TENANT}/oauth2/v2.0/token")));
    assert_entra_error(
        &send(form(&for_another_tenant)).await,
        401,
        "invalid_client",
        50012,
    );
    // One character in the middle of the signature changed.
    let at = good.rfind('.').unwrap() + 10;
    let mut tampered = good.clone();
    let replacement = if &good[at..at + 1] == "A" { "B" } else { "A" };
    tampered.replace_range(at..at + 1, replacement);
    assert_entra_error(&send(form(&tampered)).await, 401, "invalid_client", 700027);
}

/// One request of the strict-mode matrix.
struct Endpoint {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// Acts on connection `conn1` (an OwnedBy app that does not own it is refused).
    on_connection: bool,
    /// The status another tenant's fully privileged token gets (its own, empty tenant).
    other_tenant: u16,
    /// Needs a delegated token (search, retrieval).
    delegated: bool,
}

fn endpoints(operation_id: &str) -> Vec<Endpoint> {
    let conn = "/v1.0/external/connections/conn1";
    let endpoint =
        |method, path: String, body: Option<Value>, on_connection, other_tenant| Endpoint {
            method,
            path,
            body,
            on_connection,
            other_tenant,
            delegated: false,
        };
    let item = json!({"acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}],
                      "properties": {"title": "printer two"}, "content": {"value": "printer", "type": "text"}});
    let activity = json!({"activities": [{"type": "created", "startDateTime": "2024-05-01T10:00:00Z",
                                          "performedBy": {"id": USER_ID, "type": "user"}}]});
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true},
        {"name": "owner", "type": "String", "isRetrievable": true}]});
    let mut list = vec![
        endpoint(
            "POST",
            "/v1.0/external/connections".into(),
            Some(json!({"id": "conn9", "name": "nine", "description": "d"})),
            false,
            201,
        ),
        endpoint("GET", "/v1.0/external/connections".into(), None, false, 200),
        endpoint("GET", conn.into(), None, true, 404),
        endpoint(
            "PATCH",
            conn.into(),
            Some(json!({"description": "changed"})),
            true,
            404,
        ),
        endpoint("DELETE", conn.into(), None, true, 404),
        endpoint("GET", format!("{conn}/schema"), None, true, 404),
        endpoint("PATCH", format!("{conn}/schema"), Some(schema), true, 404),
        endpoint(
            "GET",
            format!("{conn}/operations/{operation_id}"),
            None,
            true,
            404,
        ),
        endpoint(
            "GET",
            "/beta/external/connections/conn1/quota".into(),
            None,
            true,
            404,
        ),
        endpoint("PUT", format!("{conn}/items/i2"), Some(item), true, 404),
        endpoint("GET", format!("{conn}/items/i1"), None, true, 404),
        endpoint("DELETE", format!("{conn}/items/i1"), None, true, 404),
        endpoint(
            "POST",
            format!("{conn}/items/i1/microsoft.graph.externalConnectors.addActivities"),
            Some(activity),
            true,
            404,
        ),
        endpoint(
            "POST",
            format!("{conn}/groups"),
            Some(json!({"id": "g2", "displayName": "G2"})),
            true,
            404,
        ),
        endpoint("GET", format!("{conn}/groups/g1"), None, true, 404),
        endpoint(
            "POST",
            format!("{conn}/groups/g1/members"),
            Some(json!({"id": "g9", "type": "group"})),
            true,
            404,
        ),
        endpoint(
            "DELETE",
            format!("{conn}/groups/g1/members/{USER_ID}"),
            None,
            true,
            404,
        ),
        endpoint("DELETE", format!("{conn}/groups/g1"), None, true, 404),
        endpoint("GET", "/v1.0/users".into(), None, false, 200),
        endpoint("GET", format!("/v1.0/users/{USER_ID}"), None, false, 404),
        endpoint(
            "POST",
            "/v1.0/users".into(),
            Some(json!({"userPrincipalName": "new@contoso.com", "displayName": "New"})),
            false,
            201,
        ),
        endpoint("GET", "/v1.0/groups".into(), None, false, 200),
        endpoint(
            "GET",
            format!("/v1.0/groups/{DIRECTORY_GROUP}/members"),
            None,
            false,
            404,
        ),
        endpoint(
            "DELETE",
            format!("/v1.0/groups/{DIRECTORY_GROUP}/members/{USER_ID}/$ref"),
            None,
            false,
            404,
        ),
        endpoint("DELETE", format!("/v1.0/users/{USER_ID}"), None, false, 404),
    ];
    // Another tenant has no conn1 to search: 400, as for any unknown content source.
    for (path, body, other_tenant) in [
        (
            "/v1.0/search/query",
            json!({"requests": [{"entityTypes": ["externalItem"], "contentSources": ["/external/connections/conn1"], "query": {"queryString": "printer"}}]}),
            400,
        ),
        (
            "/v1.0/copilot/retrieval",
            json!({"queryString": "printer", "dataSource": "externalItem"}),
            200,
        ),
    ] {
        list.push(Endpoint {
            method: "POST",
            path: path.into(),
            body: Some(body),
            on_connection: false,
            other_tenant,
            delegated: true,
        });
    }
    list
}

/// Tenant `TENANT`: the apps, a user in a directory group, and `conn1` created by OWNER_APP
/// with a schema, an item and an external group. Returns the schema operation's id.
async fn build_tenant(app: &TestApp) -> String {
    declare_app(
        app,
        TENANT,
        OWNER_APP,
        &[
            "ExternalConnection.ReadWrite.OwnedBy",
            "ExternalItem.ReadWrite.OwnedBy",
        ],
    )
    .await;
    declare_app(
        app,
        TENANT,
        FOREIGN_APP,
        &[
            "ExternalConnection.ReadWrite.OwnedBy",
            "ExternalItem.ReadWrite.OwnedBy",
        ],
    )
    .await;
    declare_app(app, TENANT, POWERLESS_APP, &["Sites.Read.All"]).await;
    let admin = minted(app, json!({"tenant": TENANT})).await;
    let owner = minted(app, json!({"tenant": TENANT, "app": OWNER_APP})).await;
    let ok = |reply: Reply, what: &str| {
        assert!(
            reply.status.is_success(),
            "{what}: {} {}",
            reply.status,
            reply.body
        )
    };
    ok(
        call(
            app,
            Some(&admin),
            "POST",
            "/v1.0/users",
            Some(&json!({"id": USER_ID, "userPrincipalName": USER_UPN, "displayName": "Adele"})),
        )
        .await,
        "user",
    );
    ok(call(app, Some(&admin), "POST", "/v1.0/groups", Some(&json!({"id": DIRECTORY_GROUP, "displayName": "Sales", "mailEnabled": false, "mailNickname": "sales", "securityEnabled": true}))).await, "group");
    ok(call(app, Some(&admin), "POST", &format!("/v1.0/groups/{DIRECTORY_GROUP}/members/$ref"),
        Some(&json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{USER_ID}")}))).await, "member");
    ok(
        call(
            app,
            Some(&owner),
            "POST",
            "/v1.0/external/connections",
            Some(&json!({"id": "conn1", "name": "one", "description": "d"})),
        )
        .await,
        "connection",
    );
    let schema = call(app, Some(&owner), "PATCH", "/v1.0/external/connections/conn1/schema", Some(&json!({"baseType": "microsoft.graph.externalItem",
        "properties": [{"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true}]}))).await;
    assert_eq!(schema.status, 202, "{}", schema.body);
    let operation_id = schema
        .header("location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    ok(call(app, Some(&owner), "PUT", "/v1.0/external/connections/conn1/items/i1", Some(&json!({
        "acl": [{"type": "user", "value": USER_ID, "accessType": "grant"}],
        "properties": {"title": "printer one"}, "content": {"value": "printer jam", "type": "text"}}))).await, "item");
    ok(
        call(
            app,
            Some(&owner),
            "POST",
            "/v1.0/external/connections/conn1/groups",
            Some(&json!({"id": "g1", "displayName": "G1"})),
        )
        .await,
        "external group",
    );
    ok(
        call(
            app,
            Some(&owner),
            "POST",
            "/v1.0/external/connections/conn1/groups/g1/members",
            Some(&json!({"id": USER_ID, "type": "user"})),
        )
        .await,
        "external member",
    );
    app.wait_for_index().await;
    operation_id
}

/// Nothing of TENANT's data in an answer to another tenant (error messages may echo the request).
fn assert_no_leak(reply: &Reply, label: &str) {
    let text = reply.body.to_string();
    for secret in ["printer one", "printer jam", "Sales", "\"Adele\""] {
        assert!(!text.contains(secret), "{label} leaks {secret}: {text}");
    }
    if reply.status.is_success() {
        assert!(!text.contains("conn1"), "{label} leaks conn1: {text}");
    }
}

async fn snapshot(app: &TestApp, tenant: &str) -> Value {
    let reply = app
        .get(&format!("/_emulator/fixtures?tenant={tenant}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn strict_mode_refuses_every_endpoint_to_each_bad_token_and_changes_nothing() {
    let app = strict_app().await;
    let operation_id = build_tenant(&app).await;
    let before = snapshot(&app, TENANT).await;

    let other_key_dir = tempfile::tempdir().unwrap();
    let other_key =
        gcemu::identity::keys::SigningKey::load_or_create(Some(other_key_dir.path())).unwrap();
    let foreign_signature = gcemu::identity::tokens::mint(
        &other_key,
        &gcemu::identity::tokens::TokenRequest {
            tenant: Some(TENANT.into()),
            roles: vec![
                "ExternalConnection.ReadWrite.All".into(),
                "ExternalItem.ReadWrite.All".into(),
                "Directory.ReadWrite.All".into(),
            ],
            ..Default::default()
        },
        chrono::Utc::now(),
    );
    let unsigned = token(
        json!({"tid": TENANT, "aud": "https://graph.microsoft.com", "exp": chrono::Utc::now().timestamp() + 600,
                                "roles": ["ExternalConnection.ReadWrite.All", "ExternalItem.ReadWrite.All", "Directory.ReadWrite.All"]}),
    );
    let expired = minted(&app, json!({"tenant": TENANT, "lifetimeSeconds": -1})).await;
    let other_audience = minted(
        &app,
        json!({"tenant": TENANT, "audience": "api://my-connector"}),
    )
    .await;
    let powerless = minted(&app, json!({"tenant": TENANT, "app": POWERLESS_APP})).await;
    let powerless_user = minted(
        &app,
        json!({"tenant": TENANT, "app": POWERLESS_APP, "user": USER_UPN, "scopes": ["User.Read"]}),
    )
    .await;
    let foreign = minted(&app, json!({"tenant": TENANT, "app": FOREIGN_APP})).await;
    let other_tenant_admin = minted(&app, json!({"tenant": OTHER_TENANT})).await;
    let other_admin_reply = call(&app, Some(&other_tenant_admin), "POST", "/v1.0/users",
        Some(&json!({"id": OTHER_USER_ID, "userPrincipalName": USER_UPN, "displayName": "Other Adele"}))).await;
    assert_eq!(
        other_admin_reply.status, 201,
        "the same UPN may exist in another tenant"
    );
    let other_tenant_user = minted(&app, json!({"tenant": OTHER_TENANT, "user": USER_UPN})).await;

    let mut checked = 0;
    for endpoint in endpoints(&operation_id) {
        let label = format!("{} {}", endpoint.method, endpoint.path);
        let body = endpoint.body.as_ref();
        let unauthenticated: [(&str, Option<&str>, &str); 4] = [
            ("no token", None, "Access token is empty."),
            (
                "another key's token",
                Some(&foreign_signature),
                "Access token validation failure.",
            ),
            (
                "an expired token",
                Some(&expired),
                "Lifetime validation failed",
            ),
            (
                "another audience's token",
                Some(&other_audience),
                "Invalid audience",
            ),
        ];
        for (what, bearer, message) in unauthenticated.iter().copied().chain([(
            "an unsigned token",
            Some(unsigned.as_str()),
            "Access token validation failure.",
        )]) {
            let reply = call(&app, bearer, endpoint.method, &endpoint.path, body).await;
            reply.assert_error(401, "InvalidAuthenticationToken");
            assert!(
                reply.error_message().contains(message),
                "{label} with {what}: {}",
                reply.body
            );
            assert!(
                reply.header("www-authenticate").starts_with("Bearer "),
                "{label} with {what}"
            );
            checked += 1;
        }
        let lacking = if endpoint.delegated {
            &powerless_user
        } else {
            &powerless
        };
        let reply = call(&app, Some(lacking), endpoint.method, &endpoint.path, body).await;
        reply.assert_error(403, "Authorization_RequestDenied");
        assert!(
            reply.error_message().contains("Insufficient privileges"),
            "{label}: {}",
            reply.body
        );
        if endpoint.on_connection {
            let reply = call(&app, Some(&foreign), endpoint.method, &endpoint.path, body).await;
            reply.assert_error(401, "Unauthorized");
            assert!(
                reply.error_message().contains("authorizedAppIds"),
                "{label}: {}",
                reply.body
            );
            assert!(
                reply.header("www-authenticate").starts_with("Bearer "),
                "{label}"
            );
        }
        let other = if endpoint.delegated {
            &other_tenant_user
        } else {
            &other_tenant_admin
        };
        let reply = call(&app, Some(other), endpoint.method, &endpoint.path, body).await;
        assert_eq!(
            reply.status, endpoint.other_tenant,
            "{label} with another tenant's token: {}",
            reply.body
        );
        assert_no_leak(&reply, &label);
        assert_eq!(
            snapshot(&app, TENANT).await,
            before,
            "{label} changed the tenant"
        );
        checked += 1;
    }
    assert!(checked > 150, "{checked}");

    // The listing an OwnedBy app gets is filtered, not refused (evidence 1.15).
    let listed = call(
        &app,
        Some(&foreign),
        "GET",
        "/v1.0/external/connections",
        None,
    )
    .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["value"], json!([]));
    let listed = call(
        &app,
        Some(&minted(&app, json!({"tenant": TENANT, "app": OWNER_APP})).await),
        "GET",
        "/v1.0/external/connections",
        None,
    )
    .await;
    assert_eq!(listed.body["value"][0]["id"], "conn1");
}

#[tokio::test]
async fn strict_mode_lets_each_endpoint_through_with_the_right_permission() {
    let app = strict_app().await;
    let operation_id = build_tenant(&app).await;
    let owner = minted(&app, json!({"tenant": TENANT, "app": OWNER_APP})).await;
    let admin = minted(&app, json!({"tenant": TENANT})).await;
    let user = minted(&app, json!({"tenant": TENANT, "user": USER_UPN})).await;
    // Deletions last, the connection's very last.
    let mut list = endpoints(&operation_id);
    list.sort_by_key(|endpoint| {
        (
            endpoint.method == "DELETE",
            endpoint.path == "/v1.0/external/connections/conn1",
        )
    });
    for endpoint in list {
        let bearer = if endpoint.delegated {
            &user
        } else if endpoint.on_connection {
            &owner
        } else {
            &admin
        };
        let reply = call(
            &app,
            Some(bearer),
            endpoint.method,
            &endpoint.path,
            endpoint.body.as_ref(),
        )
        .await;
        assert!(
            reply.status.is_success(),
            "{} {}: {} {}",
            endpoint.method,
            endpoint.path,
            reply.status,
            reply.body
        );
        if endpoint.path == "/v1.0/search/query" {
            // i1 (granted to the user) and i2 (everyone), PUT just before.
            assert_eq!(
                reply.body["value"][0]["hitsContainers"][0]["total"], 2,
                "{}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn tenants_are_isolated_for_every_resource_in_both_modes() {
    for mode in [AuthMode::Lenient, AuthMode::Strict] {
        let mut config = Config::for_tests();
        config.auth = mode;
        let app = TestApp::spawn_with(config).await;
        let operation_id = build_tenant(&app).await;
        let before = snapshot(&app, TENANT).await;
        let other_admin = minted(&app, json!({"tenant": OTHER_TENANT})).await;
        let reply = call(&app, Some(&other_admin), "POST", "/v1.0/users",
            Some(&json!({"id": OTHER_USER_ID, "userPrincipalName": USER_UPN, "displayName": "Other Adele"}))).await;
        assert_eq!(reply.status, 201);
        let other_user = minted(&app, json!({"tenant": OTHER_TENANT, "user": USER_UPN})).await;
        for endpoint in endpoints(&operation_id) {
            let bearer = if endpoint.delegated {
                &other_user
            } else {
                &other_admin
            };
            let reply = call(
                &app,
                Some(bearer),
                endpoint.method,
                &endpoint.path,
                endpoint.body.as_ref(),
            )
            .await;
            let label = format!("{mode:?} {} {}", endpoint.method, endpoint.path);
            assert_eq!(
                reply.status, endpoint.other_tenant,
                "{label}: {}",
                reply.body
            );
            assert_no_leak(&reply, &label);
            if endpoint.path.ends_with("/copilot/retrieval") {
                assert_eq!(reply.body["retrievalHits"], json!([]), "{label}");
            }
        }
        assert_eq!(
            snapshot(&app, TENANT).await,
            before,
            "{mode:?}: another tenant changed this one"
        );
        // The explain endpoint answers for the tenant a token names, never another one.
        let explained = app
            .send(app.client.get(app.url(&format!("/_emulator/connections/conn1/items/i1/access?user={USER_UPN}&tenant={TENANT}"))).bearer_auth(&other_user))
            .await;
        explained.assert_error(403, "Forbidden");
        let own = app
            .send(
                app.client
                    .get(app.url(&format!(
                        "/_emulator/connections/conn1/items/i1/access?user={USER_UPN}"
                    )))
                    .bearer_auth(&other_user),
            )
            .await;
        assert_eq!(own.status, 404, "{mode:?}: {}", own.body);
        let mine = app
            .send(
                app.client
                    .get(app.url(&format!(
                        "/_emulator/connections/conn1/items/i1/access?user={USER_UPN}"
                    )))
                    .bearer_auth(minted(&app, json!({"tenant": TENANT})).await),
            )
            .await;
        assert_eq!(mine.status, 200, "{mode:?}: {}", mine.body);
        assert_eq!(mine.body["allowed"], true);
    }
}

#[tokio::test]
async fn lenient_mode_refuses_a_malformed_tid_and_reads_app_only_as_entra_marks_it() {
    let app = TestApp::spawn().await;
    for tid in [
        json!(""),
        json!(7),
        json!("a\u{1}b"),
        json!("x".repeat(129)),
    ] {
        let reply = call(
            &app,
            Some(&token(json!({"tid": tid}))),
            "GET",
            "/v1.0/external/connections",
            None,
        )
        .await;
        reply.assert_error(401, "InvalidAuthenticationToken");
        assert!(reply.error_message().contains("tid"), "{}", reply.body);
    }
    // No scp: an app-only token, refused by search as the real service refuses app-only search.
    let app_only = token(json!({"tid": TENANT, "oid": USER_ID, "upn": USER_UPN}));
    let reply = call(&app, Some(&app_only), "POST", "/v1.0/search/query",
        Some(&json!({"requests": [{"entityTypes": ["externalItem"], "contentSources": ["/external/connections/c1"], "query": {"queryString": "x"}}]}))).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let marked = token(
        json!({"tid": TENANT, "idtyp": "app", "scp": "ExternalItem.Read.All", "oid": USER_ID}),
    );
    let reply = call(&app, Some(&marked), "POST", "/v1.0/search/query",
        Some(&json!({"requests": [{"entityTypes": ["externalItem"], "contentSources": ["/external/connections/c1"], "query": {"queryString": "x"}}]}))).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // A non-JWT still acts as the default application.
    let reply = call(
        &app,
        Some("opaque"),
        "GET",
        "/v1.0/external/connections",
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn applications_are_declared_listed_and_removed_through_the_control_plane() {
    let app = TestApp::spawn().await;
    let listed = app
        .get(&format!("/_emulator/applications?tenant={TENANT}"))
        .await;
    assert_eq!(
        listed.body["value"][0]["appId"],
        "00000000-0000-0000-0000-0000000000a1"
    );
    declare_app(&app, TENANT, OWNER_APP, &["ExternalItem.ReadWrite.OwnedBy"]).await;
    let listed = app
        .get(&format!("/_emulator/applications?tenant={TENANT}"))
        .await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 2);
    let bad = app
        .post("/_emulator/applications", &json!({"appId": "not-a-guid", "displayName": "x", "roles": ["read everything"], "color": "red"}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let targets: Vec<&str> = bad.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"/color"), "{targets:?}");
    let bad_roles = app
        .post(
            "/_emulator/applications",
            &json!({"appId": FOREIGN_APP, "displayName": "x", "roles": ["read everything"]}),
        )
        .await;
    bad_roles.assert_error(400, "InvalidRequest");
    assert!(
        bad_roles.error_message().contains("read everything"),
        "{}",
        bad_roles.body
    );
    assert_eq!(
        app.delete(&format!(
            "/_emulator/applications/{OWNER_APP}?tenant={TENANT}"
        ))
        .await
        .status,
        204
    );
    assert_eq!(
        app.delete(&format!(
            "/_emulator/applications/{OWNER_APP}?tenant={TENANT}"
        ))
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn https_serves_http2_and_http1_with_a_certificate_from_gcemus_ca() {
    let mut config = Config::for_tests();
    config.tls = Some(CertificateSource::LocalCa {
        extra_names: vec!["gcemu.test".into()],
    });
    let app = TestApp::spawn_with(config).await;
    assert!(app.address.starts_with("https://127.0.0.1:"));
    let ca = app.get("/_emulator/ca.pem").await;
    assert_eq!(ca.status, 200);
    assert!(ca
        .body
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    // HTTP/2 by ALPN, and Location says https.
    let created = app
        .send(
            app.client
                .post(app.url("/v1.0/external/connections"))
                .json(&json!({"id": "tls1", "name": "t", "description": "d"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let reply = app
        .client
        .get(app.url("/v1.0/external/connections/tls1"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.version(), reqwest::Version::HTTP_2);
    let schema = app
        .patch("/v1.0/external/connections/tls1/schema", &json!({"baseType": "microsoft.graph.externalItem", "properties": [{"name": "title", "type": "String"}]}))
        .await;
    assert!(
        schema
            .header("location")
            .starts_with(&app.url("/v1.0/external/connections/tls1/operations/")),
        "{}",
        schema.header("location")
    );
    let metadata = app
        .get(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"))
        .await;
    assert_eq!(
        metadata.body["token_endpoint"],
        app.url(&format!("/{TENANT}/oauth2/v2.0/token"))
    );
    // HTTP/1.1 only, by a client that offers nothing else.
    let http1 = reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.body.as_str().unwrap().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let reply = http1
        .get(app.url("/_emulator/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.version(), reqwest::Version::HTTP_11);
    assert_eq!(reply.status(), 200);
    // A client that does not trust the CA is refused by its own TLS check.
    assert!(reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .unwrap()
        .get(app.url("/_emulator/health"))
        .send()
        .await
        .is_err());
    // Plain http to the https port gets no answer.
    let plain = reqwest::Client::new()
        .get(app.url("/_emulator/health").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn the_control_plane_acts_only_on_the_tenant_of_a_token_it_is_sent() {
    let app = strict_app().await;
    build_tenant(&app).await;
    let before = snapshot(&app, TENANT).await;
    let other = minted(&app, json!({"tenant": OTHER_TENANT})).await;
    let with_token = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&other)
    };
    // Reading or changing TENANT with OTHER_TENANT's token is refused.
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("/_emulator/applications?tenant={TENANT}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/_emulator/applications/{OWNER_APP}?tenant={TENANT}"),
        ),
        (
            reqwest::Method::GET,
            format!("/_emulator/fixtures?tenant={TENANT}"),
        ),
        (
            reqwest::Method::GET,
            format!("/_emulator/report?tenant={TENANT}"),
        ),
        (
            reqwest::Method::POST,
            format!("/_emulator/reset?tenant={TENANT}"),
        ),
    ] {
        let reply = app.send(with_token(method.clone(), &path)).await;
        reply.assert_error(403, "Forbidden");
        assert!(
            reply.error_message().contains("cannot act on tenant"),
            "{method} {path}: {}",
            reply.body
        );
    }
    let minted_for_tenant = app
        .send(
            with_token(reqwest::Method::POST, "/_emulator/token").json(&json!({"tenant": TENANT})),
        )
        .await;
    minted_for_tenant.assert_error(403, "Forbidden");
    // A reset with a token and no ?tenant= resets the token's tenant only.
    let reset = app
        .send(with_token(reqwest::Method::POST, "/_emulator/reset"))
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(snapshot(&app, TENANT).await, before, "TENANT is untouched");
    // Without a token the control plane is the test harness's: it may act on any tenant.
    assert_eq!(
        app.get(&format!("/_emulator/applications?tenant={TENANT}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_refused_tokens_claims_do_not_reach_a_tenants_journal_or_report() {
    let app = strict_app().await;
    let forged = token(
        json!({"tid": "victim-tenant", "aud": "https://graph.microsoft.com",
                              "exp": chrono::Utc::now().timestamp() + 600}),
    );
    let reply = call(
        &app,
        Some(&forged),
        "PUT",
        "/v1.0/external/connections/c1/items/i1",
        Some(&json!({})),
    )
    .await;
    reply.assert_error(401, "InvalidAuthenticationToken");
    let journal = app.get("/_emulator/requests").await;
    assert_eq!(
        journal.body["value"][0]["tenant"],
        "(unauthenticated request)"
    );
    let report = app.get("/_emulator/report?tenant=victim-tenant").await;
    assert_eq!(report.status, 200);
    assert!(
        !report
            .body
            .to_string()
            .contains("/v1.0/external/connections/c1/items/i1"),
        "{}",
        report.body
    );
    // An out-of-range lifetime is a 400, not an overflow.
    let reply = app
        .post("/_emulator/token", &json!({"lifetimeSeconds": i64::MIN}))
        .await;
    reply.assert_error(400, "InvalidRequest");
}
