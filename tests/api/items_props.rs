//! Property test: random property values against random schemas are accepted exactly when they
//! fit the declared types (the generator knows which values fit), and round-trip through GET.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::helpers::TestApp;

const TYPES: &[&str] = &[
    "string",
    "int64",
    "double",
    "dateTime",
    "boolean",
    "stringCollection",
    "int64Collection",
    "doubleCollection",
    "dateTimeCollection",
];

fn date_time() -> impl Strategy<Value = String> {
    (0i64..4_000_000_000, 0u32..1000, 0usize..4).prop_map(|(seconds, millis, form)| {
        let instant = chrono::DateTime::from_timestamp(seconds, millis * 1_000_000).unwrap();
        match form {
            0 => instant.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            1 => instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            2 => instant
                .with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap())
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            _ => instant.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
        }
    })
}

/// A value that fits the scalar type.
fn fitting_scalar(type_name: &'static str) -> BoxedStrategy<Value> {
    match type_name {
        "string" => "[a-zA-Z0-9 éü]{0,12}".prop_map(Value::String).boxed(),
        "int64" => any::<i64>().prop_map(|n| json!(n)).boxed(),
        "double" => (-1e12f64..1e12).prop_map(|n| json!(n)).boxed(),
        "dateTime" => date_time().prop_map(Value::String).boxed(),
        _ => any::<bool>().prop_map(Value::Bool).boxed(),
    }
}

/// A value of the wrong JSON kind (or an invalid literal) for the scalar type.
fn misfit_scalar(type_name: &'static str) -> BoxedStrategy<Value> {
    match type_name {
        "string" => prop_oneof![
            any::<i32>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
            Just(json!({"a": 1}))
        ]
        .boxed(),
        "int64" => prop_oneof![
            Just(json!(1.5)),
            Just(json!("12")),
            Just(json!(9223372036854775808u64)),
            Just(json!(true))
        ]
        .boxed(),
        "double" => prop_oneof![Just(json!("1.5")), Just(json!(false)), Just(json!([1.0]))].boxed(),
        "dateTime" => prop_oneof![
            Just(json!("yesterday")),
            Just(json!("2024-13-40T10:00:00Z")),
            Just(json!(1714557600))
        ]
        .boxed(),
        _ => prop_oneof![
            Just(json!("true")),
            Just(json!(1)),
            Just(json!(null)).prop_map(|_| json!("no"))
        ]
        .boxed(),
    }
}

/// A value for the property type, and whether it fits.
fn value_for(type_name: &'static str) -> BoxedStrategy<(Value, bool)> {
    match type_name.strip_suffix("Collection") {
        None => prop_oneof![
            3 => fitting_scalar(type_name).prop_map(|v| (v, true)),
            1 => misfit_scalar(type_name).prop_map(|v| (v, false)),
        ]
        .boxed(),
        Some(element) => {
            let element: &'static str = TYPES.iter().copied().find(|t| *t == element).unwrap();
            prop_oneof![
                3 => proptest::collection::vec(fitting_scalar(element), 0..4).prop_map(|v| (Value::Array(v), true)),
                1 => (proptest::collection::vec(fitting_scalar(element), 0..3), misfit_scalar(element))
                    .prop_map(|(mut v, bad)| { v.push(bad); (Value::Array(v), false) }),
                1 => fitting_scalar(element).prop_map(|v| (v, false)),
            ]
            .boxed()
        }
    }
}

fn case() -> impl Strategy<Value = (Vec<&'static str>, Map<String, Value>, bool)> {
    proptest::collection::vec(proptest::sample::select(TYPES), 1..5).prop_flat_map(|types| {
        let values: Vec<BoxedStrategy<(Value, bool)>> =
            types.iter().map(|t| value_for(t)).collect();
        (Just(types), values).prop_map(|(types, values)| {
            let mut properties = Map::new();
            let mut all_fit = true;
            for (index, (value, fits)) in values.into_iter().enumerate() {
                if types[index].ends_with("Collection") && fits {
                    let element = match types[index] {
                        "dateTimeCollection" => "DateTimeOffset".to_string(),
                        other => {
                            let element = other.trim_end_matches("Collection");
                            element[..1].to_uppercase() + &element[1..]
                        }
                    };
                    properties.insert(
                        format!("p{index}@odata.type"),
                        json!(format!("Collection({element})")),
                    );
                }
                properties.insert(format!("p{index}"), value);
                all_fit &= fits;
            }
            (types, properties, all_fit)
        })
    })
}

#[test]
fn values_are_accepted_exactly_when_they_fit_and_read_back_unchanged() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let n_case = std::sync::atomic::AtomicUsize::new(0);
    let mut config = ProptestConfig::with_cases(64);
    config.failure_persistence = None;
    proptest!(config, |((types, properties, all_fit) in case())| {
        let connection = format!("props{}", n_case.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let (put, read) = runtime.block_on(async {
            app.create_connection(&connection).await;
            let schema: Vec<Value> = types.iter().enumerate().map(|(i, t)| json!({"name": format!("p{i}"), "type": t, "isRetrievable": true})).collect();
            app.register_schema(&connection, Value::Array(schema)).await;
            let path = format!("/v1.0/external/connections/{connection}/items/item1");
            let body = json!({"acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}], "properties": properties});
            let put = app.put(&path, &body).await;
            let read = app.get(&path).await;
            app.delete(&format!("/v1.0/external/connections/{connection}")).await;
            (put, read)
        });
        if all_fit {
            prop_assert_eq!(put.status.as_u16(), 200, "{}", put.body);
            prop_assert_eq!(&read.body["properties"], &Value::Object(properties));
        } else {
            prop_assert_eq!(put.status.as_u16(), 400, "accepted a misfit: {}", Value::Object(properties));
            prop_assert_eq!(put.error_code(), "BadRequest");
            prop_assert_eq!(read.status.as_u16(), 404);
        }
    });
}
