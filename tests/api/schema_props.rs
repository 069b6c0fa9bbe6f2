//! Property test through HTTP: a schema the validator accepts reads back unchanged through
//! `GET .../schema`; a schema it refuses is answered 400 naming the offending property.

use gcemu::domain::schema::Schema;
use gcemu::http::extract::ApiVersion;
use gcemu::http::schema::parse_schema;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::helpers::TestApp;

const TYPE_NAMES: &[&str] = &[
    "string",
    "String",
    "int64",
    "Int64",
    "double",
    "dateTime",
    "DateTime",
    "boolean",
    "stringCollection",
    "StringCollection",
    "int64Collection",
    "doubleCollection",
    "dateTimeCollection",
    "principal",
    "principalCollection",
];
const LABEL_NAMES: &[&str] = &[
    "title",
    "Title",
    "url",
    "createdDateTime",
    "authors",
    "iconUrl",
    "tags",
    "fileName",
];

fn boolean() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<bool>().prop_map(Value::Bool),
        1 => any::<bool>().prop_map(|b| Value::String(if b { "True".into() } else { "false".into() })),
    ]
}

fn property_json() -> impl Strategy<Value = Value> {
    (
        prop_oneof![9 => "[a-z][a-zA-Z0-9]{0,7}", 1 => "[a-z][a-z_ -]{1,5}"],
        proptest::sample::select(TYPE_NAMES),
        (boolean(), boolean(), boolean(), boolean(), boolean()),
        proptest::collection::vec("[a-z][a-z0-9]{0,4}", 0..2),
        proptest::collection::vec(proptest::sample::select(LABEL_NAMES), 0..2),
        prop_oneof![4 => Just(None), 1 => "[a-z ]{0,30}".prop_map(Some), 1 => Just(Some("d".repeat(201)))],
    )
        .prop_map(|(name, type_name, flags, aliases, labels, description)| {
            let mut property = Map::new();
            property.insert("name".into(), json!(name));
            property.insert("type".into(), json!(type_name));
            property.insert("isSearchable".into(), flags.0);
            property.insert("isQueryable".into(), flags.1);
            property.insert("isRetrievable".into(), flags.2);
            property.insert("isRefinable".into(), flags.3);
            property.insert("isExactMatchRequired".into(), flags.4);
            property.insert("aliases".into(), json!(aliases));
            property.insert("labels".into(), json!(labels));
            if let Some(description) = description {
                property.insert("description".into(), json!(description));
            }
            Value::Object(property)
        })
}

fn schema_json() -> impl Strategy<Value = Value> {
    proptest::collection::vec(property_json(), 1..6).prop_map(
        |properties| json!({"baseType": "microsoft.graph.externalItem", "properties": properties}),
    )
}

#[test]
fn accepted_schemas_round_trip_and_refused_ones_name_the_property() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let n_connection = std::sync::atomic::AtomicUsize::new(0);
    let mut config = ProptestConfig::with_cases(96);
    config.failure_persistence = None;
    proptest!(config, |(body in schema_json())| {
        let connection_id = format!("conn{}", n_connection.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let submitted: Schema = parse_schema(body.as_object().unwrap(), ApiVersion::Beta).unwrap();
        let violations = submitted.validate();
        let (reply, read_back) = runtime.block_on(async {
            app.create_connection(&connection_id).await;
            let path = format!("/beta/external/connections/{connection_id}/schema");
            let reply = app.patch(&path, &body).await;
            let read_back = app
                .send(app.client.get(app.url(&path)).header("prefer", "include-unknown-enum-members"))
                .await;
            app.delete(&format!("/beta/external/connections/{connection_id}")).await;
            (reply, read_back)
        });
        match violations.first() {
            None => {
                prop_assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
                let mut read_back = read_back.body.as_object().unwrap().clone();
                read_back.remove("@odata.context");
                let parsed = parse_schema(&read_back, ApiVersion::Beta).unwrap();
                prop_assert_eq!(parsed, submitted);
            }
            Some(violation) => {
                prop_assert_eq!(reply.status.as_u16(), 400, "{}", reply.body);
                prop_assert_eq!(reply.error_code(), "InvalidRequest");
                let index: usize = violation.violation.target["properties[".len()..]
                    .split(']')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .expect("a property violation names its index");
                let name = &submitted.properties[index].name;
                prop_assert!(reply.error_message().contains(&format!("'{name}'")), "'{}' not named in {}", name, reply.error_message());
                prop_assert_eq!(read_back.status.as_u16(), 404, "a refused schema is not stored");
            }
        }
    });
}
