//! `.../items/{itemId}` (PUT, GET, PATCH, DELETE), `addActivities`, and beta `.../quota`
//! (spec/items.md, spec/limits.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{ApiVersion, GraphRequest, JsonBody, JsonObject, Members};
use super::openapi::wire;
use crate::domain::acl::{AccessType, AclEntry, AclType, IdentitySource};
use crate::domain::ids::{ConnectionId, ItemId};
use crate::domain::item::{
    parse_date_time, ActivityType, ContentType, ExternalActivity, ExternalItem, ItemContent,
    IDENTITY_TYPES, MAX_ACTIVITIES_PER_CALL,
};
use crate::domain::Violation;
use crate::service;
use crate::service::items::ItemUpdate;
use crate::state::AppState;

const ITEM_TYPE: &str = "microsoft.graph.externalConnectors.externalItem";
const ACL_TYPE: &str = "microsoft.graph.externalConnectors.acl";
const ITEM_MEMBERS: &[&str] = &[
    "id",
    "acl",
    "properties",
    "content",
    "activities",
    "informationProtectionLabel",
];
/// The live service answers a body that does not match the schema with this sentence (evidence 1.10).
const CONTENT_MISMATCH: &str =
    "Property content in payload has a value that does not match schema.";

#[utoipa::path(
    put, path = "/external/connections/{connection_id}/items/{item_id}", tag = "items", operation_id = "putItem",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id: 1 to 128 ASCII letters, digits, `_` and `-`.")),
    request_body = wire::ExternalItemPut,
    responses((status = 200, description = "Stored (created or replaced), checked against the connection's schema.", body = wire::ExternalItem))
)]
pub async fn put(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, item_id)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    // Most bodies have the common shape and are read straight into types; any other goes the
    // general way, which gives every error its exact answer (a JSON error before an id error).
    let well_formed = (!body.is_large())
        .then(|| well_formed::read(&body.0))
        .flatten();
    let (item, activities) = match well_formed {
        Some(read) => {
            let item_id = parse_item_id(&item_id)?;
            match read.into_item(item_id.clone()) {
                Some(item) => (item, Vec::new()),
                None => read_item(body.into_object().await?, item_id, graph.version)?,
            }
        }
        None => {
            let body = body.into_object().await?;
            let item_id = parse_item_id(&item_id)?;
            read_item(body, item_id, graph.version)?
        }
    };
    let connection_id = ConnectionId::lookup(&connection_id);
    let stored =
        service::items::put(&state, &graph.caller, &connection_id, item, activities).await?;
    let body = ItemBody {
        context: graph.context(&format!(
            "external/connections('{connection_id}')/items/$entity"
        )),
        version: graph.version,
        item: &stored,
        activities: true,
    };
    // About the size of the body sent: grown once or not at all, instead of doubling from empty.
    let mut bytes =
        Vec::with_capacity(ANSWER_CAPACITY + stored.content.as_ref().map_or(0, |c| c.value.len()));
    body.write_to(&mut bytes).map_err(|error| {
        ApiError::from(service::Error::Internal(format!("item answer: {error}")))
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

/// Bytes reserved for an item answer beyond its content's text.
const ANSWER_CAPACITY: usize = 1024;

/// An item as Graph answers a write (`item_properties`, then `activities: []` when asked for),
/// written from the item itself: its properties are not copied into a JSON tree first, and its
/// content's text, the bulk of most items, is escaped by `write_json_string`.
struct ItemBody<'a> {
    context: Option<String>,
    version: ApiVersion,
    item: &'a ExternalItem,
    activities: bool,
}

impl ItemBody<'_> {
    /// Appends the answer's JSON to `out`, as compact as serde_json writes it.
    fn write_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        struct Acl<'a>(ApiVersion, &'a [AclEntry]);
        impl serde::Serialize for Acl<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut entries = serializer.serialize_seq(Some(self.1.len()))?;
                for entry in self.1 {
                    entries.serialize_element(&AclEntryBody(self.0, entry))?;
                }
                entries.end()
            }
        }
        struct AclEntryBody<'a>(ApiVersion, &'a AclEntry);
        impl serde::Serialize for AclEntryBody<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let entry = self.1;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("type", entry.acl_type.as_str())?;
                map.serialize_entry("value", &entry.value)?;
                map.serialize_entry("accessType", entry.access_type.as_str())?;
                if self.0 == ApiVersion::Beta {
                    if let Some(source) = entry.identity_source {
                        map.serialize_entry("identitySource", source.as_str())?;
                    }
                }
                map.end()
            }
        }

        let item = self.item;
        out.push(b'{');
        if let Some(context) = &self.context {
            out.extend_from_slice(b"\"@odata.context\":");
            write_json_string(out, context);
            out.push(b',');
        }
        out.extend_from_slice(b"\"id\":");
        write_json_string(out, item.id.as_str());
        out.extend_from_slice(b",\"acl\":");
        serde_json::to_writer(&mut *out, &Acl(self.version, &item.acl))?;
        out.extend_from_slice(b",\"properties\":");
        serde_json::to_writer(&mut *out, &item.properties)?;
        match &item.content {
            Some(content) => {
                out.extend_from_slice(b",\"content\":{\"value\":");
                write_json_string(out, &content.value);
                out.extend_from_slice(b",\"type\":");
                write_json_string(out, content.content_type.as_str());
                out.push(b'}');
            }
            None => out.extend_from_slice(b",\"content\":null"),
        }
        if let Some(label) = &item.sensitivity_label_id {
            out.extend_from_slice(b",\"informationProtectionLabel\":{\"sensitivityLabelId\":");
            write_json_string(out, label);
            out.push(b'}');
        }
        if self.activities {
            out.extend_from_slice(b",\"activities\":[]");
        }
        out.push(b'}');
        Ok(())
    }
}

/// Appends `text` as a JSON string, byte for byte as serde_json writes it (`\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else as is), but
/// checking 16 bytes at a time for something to escape, where serde_json looks at each byte.
/// A block that holds an escape is walked byte by byte, so no text costs more than twice a walk.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    const BLOCK: usize = 16;
    fn escaped(byte: u8) -> bool {
        byte < 0x20 || byte == b'"' || byte == b'\\'
    }
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Bytes before `start` are written; `i` is the next to look at.
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let end = (i + BLOCK).min(bytes.len());
        let block = &bytes[i..end];
        if block.len() == BLOCK && !block.iter().fold(false, |any, &byte| any | escaped(byte)) {
            i = end;
            continue;
        }
        for (at, &byte) in block.iter().enumerate() {
            if !escaped(byte) {
                continue;
            }
            out.extend_from_slice(&bytes[start..i + at]);
            start = i + at + 1;
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                control => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(control >> 4)]);
                    out.push(HEX[usize::from(control & 0xf)]);
                }
            }
        }
        i = end;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The common shape of an item `PUT` body, read straight into types: `acl` entries of exactly
/// `type`, `value` and `accessType`, `properties`, and `content` of exactly `type` and `value`,
/// nothing else. A body of any other shape, or one these members do not make a valid item of,
/// is not read here: `read_item` reads it from the JSON tree and answers its errors, so both
/// ways give the same item for a body this one accepts (a property test checks it).
mod well_formed {
    use std::borrow::Cow;

    use serde_json::{Map, Value};

    use crate::domain::acl::{AccessType, AclEntry, AclType};
    use crate::domain::ids::ItemId;
    use crate::domain::item::{ContentType, ExternalItem, ItemContent};

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Item<'a> {
        #[serde(borrow)]
        acl: Vec<ObjectOnly<Ace<'a>>>,
        properties: Map<String, Value>,
        #[serde(default, borrow)]
        content: Option<ObjectOnly<Content<'a>>>,
    }

    /// `T` read only from a JSON object: a derived struct also takes an array of its members'
    /// values, which Graph refuses.
    struct ObjectOnly<T>(T);

    impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Members<T>(std::marker::PhantomData<T>);
            impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Members<T> {
                type Value = T;
                fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                    formatter.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                }
            }
            deserializer
                .deserialize_map(Members(std::marker::PhantomData))
                .map(ObjectOnly)
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ace<'a> {
        #[serde(rename = "type", borrow)]
        acl_type: Cow<'a, str>,
        value: String,
        #[serde(rename = "accessType", borrow)]
        access_type: Cow<'a, str>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Content<'a> {
        #[serde(rename = "type", borrow)]
        content_type: Cow<'a, str>,
        value: String,
    }

    /// The body, when it has the common shape.
    pub(super) fn read(bytes: &[u8]) -> Option<Item<'_>> {
        serde_json::from_slice::<ObjectOnly<Item>>(bytes)
            .ok()
            .map(|item| item.0)
    }

    impl Item<'_> {
        /// The item, when its members make a valid one as `read_item` would read it.
        pub(super) fn into_item(self, id: ItemId) -> Option<ExternalItem> {
            let mut acl = Vec::with_capacity(self.acl.len());
            for (index, ObjectOnly(ace)) in self.acl.into_iter().enumerate() {
                let entry = AclEntry {
                    acl_type: AclType::parse(&ace.acl_type)?,
                    value: ace.value,
                    access_type: AccessType::parse(&ace.access_type)?,
                    identity_source: None,
                };
                entry.validate(index).ok()?;
                acl.push(entry);
            }
            let content = match self.content {
                None => None,
                Some(ObjectOnly(content)) => Some(ItemContent {
                    content_type: ContentType::parse(&content.content_type)?,
                    value: content.value,
                }),
            };
            Some(ExternalItem {
                id,
                acl,
                properties: self.properties,
                content,
                sensitivity_label_id: None,
            })
        }
    }
}

/// Reads an item PUT body (also an item of a fixtures document) and its inline activities.
pub(super) fn read_item(
    mut body: Map<String, Value>,
    item_id: ItemId,
    version: ApiVersion,
) -> Result<(ExternalItem, Vec<ExternalActivity>), ApiError> {
    // Moved out of the body rather than copied (the other members keep their order, so the
    // first unknown member reported stays the same); each is checked below in its turn.
    let properties = body.shift_remove("properties");
    let content = body.shift_remove("content");
    let members = Members::new(&body, ITEM_TYPE);
    allow_item_members(&members)?;
    check_body_id(&members, &item_id)?;
    let acl = match members.get("acl") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "An item needs an 'acl' (a list of access control entries).",
            )
            .with_target("acl"))
        }
        Some(value) => parse_acl(value, version)?,
    };
    let properties = match properties {
        None | Some(Value::Null) => return Err(ApiError::invalid("An item needs 'properties' with at least one property.").with_target("properties")),
        Some(Value::Object(properties)) => properties,
        Some(_) => return Err(ApiError::new(ErrorCode::BadRequest, "Property properties in payload has a value that does not match schema: it must be an object.").with_target("properties")),
    };
    let content = parse_content(content)?;
    let activities = match members.get("activities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(activities)) if activities.len() > MAX_ACTIVITIES_PER_CALL => {
            return Err(ApiError::invalid(format!(
                "At most {MAX_ACTIVITIES_PER_CALL} activities can be sent with an item; {} were sent.",
                activities.len()
            ))
            .with_target("activities"))
        }
        Some(Value::Array(activities)) => activities
            .iter()
            .enumerate()
            .map(|(index, activity)| {
                parse_activity(activity, index, true)
                    .map_err(|v| ApiError::invalid(v.message).with_target(v.target))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(
                ApiError::deserialization("'activities' must be a list.").with_target("activities")
            )
        }
    };
    let sensitivity_label_id = parse_label(members.get("informationProtectionLabel"))?.flatten();
    let item = ExternalItem {
        id: item_id,
        acl,
        properties,
        content,
        sensitivity_label_id,
    };
    Ok((item, activities))
}

#[utoipa::path(
    patch, path = "/external/connections/{connection_id}/items/{item_id}", tag = "items", operation_id = "updateItem",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id: 1 to 128 ASCII letters, digits, `_` and `-`.")),
    request_body = wire::ExternalItemPatch,
    responses((status = 200, description = "The item after the update.", body = wire::ExternalItem))
)]
pub async fn update(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, item_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let item_id = parse_item_id(&item_id)?;
    let members = Members::new(&body, ITEM_TYPE);
    allow_item_members(&members)?;
    if members.get("activities").is_some() {
        return Err(
            ApiError::invalid("Activities cannot be sent with PATCH; use addActivities.")
                .with_target("activities"),
        );
    }
    check_body_id(&members, &item_id)?;
    let update = ItemUpdate {
        sensitivity_label_id: parse_label(members.get("informationProtectionLabel"))?,
        acl: members.get("acl").map(|value| parse_acl(value, graph.version)).transpose()?,
        properties: match members.get("properties") {
            None => None,
            Some(Value::Object(properties)) => Some(properties.clone()),
            Some(_) => return Err(ApiError::new(ErrorCode::BadRequest, "Property properties in payload has a value that does not match schema: it must be an object.").with_target("properties")),
        },
        content: match members.get("content") {
            None => None,
            value => Some(parse_content(value.cloned())?),
        },
    };
    let connection_id = ConnectionId::lookup(&connection_id);
    let item =
        service::items::update(&state, &graph.caller, &connection_id, &item_id, update).await?;
    Ok(Json(Value::Object(item_json(&graph, &connection_id, &item))).into_response())
}

#[utoipa::path(
    get, path = "/external/connections/{connection_id}/items/{item_id}", tag = "items", operation_id = "getItem",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id: 1 to 128 ASCII letters, digits, `_` and `-`.")),
    responses((status = 200, description = "The item.", body = wire::ExternalItem))
)]
pub async fn get(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, item_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let item_id = parse_item_id(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    let connection_id = ConnectionId::lookup(&connection_id);
    let item = service::items::get(&state, &graph.caller, &connection_id, &item_id).await?;
    Ok(Json(Value::Object(item_json(&graph, &connection_id, &item))).into_response())
}

#[utoipa::path(
    delete, path = "/external/connections/{connection_id}/items/{item_id}", tag = "items", operation_id = "deleteItem",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id: 1 to 128 ASCII letters, digits, `_` and `-`.")),
    responses((status = 204, description = "Deleted; the next search no longer finds it."))
)]
pub async fn delete(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, item_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let item_id = parse_item_id(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    service::items::delete(
        &state,
        &graph.caller,
        &ConnectionId::lookup(&connection_id),
        &item_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../items` (no id): only `PUT .../items/{id}` creates items; the live service answers 404 (evidence 1.4).
#[utoipa::path(
    method(get, post, put, patch, delete), path = "/external/connections/{connection_id}/items", tag = "items", operation_id = "itemsCollection",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    responses((status = 404, description = "Items are created with `PUT .../items/{itemId}`; the collection answers `404` to every method (observed).", body = wire::ErrorEnvelope))
)]
pub async fn collection() -> ApiError {
    ApiError::new(ErrorCode::ItemNotFound, "The requested resource does not exist.").with_inner(
        "ResourceNotFound",
        Some("Item"),
        "Items are created with PUT .../items/{itemId}; the items collection cannot be listed or posted to.",
    )
}

/// `addActivities`: at most 20 per call; `200` when all are recorded, `207` with an error per failed entry.
#[utoipa::path(
    post, path = "/external/connections/{connection_id}/items/{item_id}/addActivities", tag = "items", operation_id = "addActivities",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id: 1 to 128 ASCII letters, digits, `_` and `-`.")),
    request_body = wire::AddActivities,
    responses(
        (status = 200, description = "Every activity was recorded.", body = wire::ExternalActivityResults),
        (status = 207, description = "Some activities were refused: each has its `error`.", body = wire::ExternalActivityResults)
    )
)]
pub async fn add_activities(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, item_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let item_id = parse_item_id(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    let members = Members::new(&body, "microsoft.graph.externalConnectors.addActivities");
    members.allow_only(&["activities"])?;
    let activities = match members.get("activities") {
        Some(Value::Array(activities)) => activities,
        _ => {
            return Err(ApiError::invalid(
                "The body needs 'activities': a list of externalActivity objects.",
            )
            .with_target("activities"))
        }
    };
    if activities.len() > MAX_ACTIVITIES_PER_CALL {
        return Err(ApiError::invalid(format!(
            "At most {MAX_ACTIVITIES_PER_CALL} activities can be added per call; {} were sent.",
            activities.len()
        ))
        .with_target("activities"));
    }
    let parsed: Vec<Result<ExternalActivity, Violation>> = activities
        .iter()
        .enumerate()
        .map(|(index, activity)| parse_activity(activity, index, false))
        .collect();
    let results = service::items::add_activities(
        &state,
        &graph.caller,
        &ConnectionId::lookup(&connection_id),
        &item_id,
        parsed,
    )
    .await?;
    let all_recorded = results.iter().all(Result::is_ok);
    let value: Vec<Value> = results
        .iter()
        .zip(activities)
        .map(|(result, sent)| {
            let mut entry = Map::new();
            entry.insert("@odata.type".into(), json!("#microsoft.graph.externalConnectors.externalActivityResult"));
            for member in ["type", "startDateTime", "performedBy"] {
                entry.insert(member.into(), sent.get(member).cloned().unwrap_or(Value::Null));
            }
            if let Ok(activity) = result {
                entry.insert("type".into(), json!(activity.activity_type.as_str()));
            }
            entry.insert(
                "error".into(),
                match result {
                    Ok(_) => Value::Null,
                    Err(violation) => json!({"code": "InvalidRequest", "message": violation.message, "target": violation.target}),
                },
            );
            Value::Object(entry)
        })
        .collect();
    let mut body = graph
        .body_with_context("Collection(microsoft.graph.externalConnectors.externalActivityResult)");
    body.insert("value".into(), Value::Array(value));
    let status = if all_recorded {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(Value::Object(body))).into_response())
}

/// Beta `GET .../quota`: `{"itemsRemaining": N}`; v1.0 has no such navigation property.
#[utoipa::path(
    get, path = "/external/connections/{connection_id}/quota", tag = "items", operation_id = "getQuota",
    description = "Beta only: on `/v1.0` the segment is unknown (`400 BadRequest`).",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    responses((status = 200, description = "Items the tenant may still add.", body = wire::ConnectionQuota))
)]
pub async fn quota(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
) -> Result<Response, ApiError> {
    if graph.version == ApiVersion::V1 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Resource not found for the segment 'quota'.",
        ));
    }
    let connection_id = ConnectionId::lookup(&connection_id);
    let items_remaining =
        service::items::items_remaining(&state, &graph.caller, &connection_id).await?;
    let mut body = graph.body_with_context(&format!(
        "external/connections('{connection_id}')/quota/$entity"
    ));
    body.insert("itemsRemaining".into(), json!(items_remaining));
    Ok(Json(Value::Object(body)).into_response())
}

/// An `id` in the body is allowed, but must be the one in the URL.
fn check_body_id(members: &Members<'_>, item_id: &ItemId) -> Result<(), ApiError> {
    match members.string("id")? {
        Some(Some(body_id)) if body_id != item_id.as_str() => Err(ApiError::invalid(format!(
            "The item id in the body ('{body_id}') differs from the one in the URL ('{item_id}')."
        ))
        .with_target("id")),
        _ => Ok(()),
    }
}

pub(super) fn parse_item_id(raw: &str) -> Result<ItemId, ApiError> {
    ItemId::parse(raw).map_err(|violation| {
        ApiError::invalid(format!("{}.", capitalize(&violation.message))).with_target("id")
    })
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Unknown top-level members are refused as the live service refuses them (evidence 1.10):
/// custom properties belong inside `properties`.
fn allow_item_members(members: &Members<'_>) -> Result<(), ApiError> {
    members.allow_only(ITEM_MEMBERS).map_err(|error| {
        let detail = error.inner.map(|inner| inner.message).unwrap_or_default();
        ApiError::new(
            ErrorCode::InvalidRequest,
            "The request is malformed or incorrect.",
        )
        .with_inner(
            "DeserializationError",
            None,
            format!("{detail} Custom properties go inside 'properties'."),
        )
    })
}

fn parse_acl(value: &Value, version: ApiVersion) -> Result<Vec<AclEntry>, ApiError> {
    let Value::Array(entries) = value else {
        return Err(
            ApiError::deserialization("'acl' must be a list of access control entries.")
                .with_target("acl"),
        );
    };
    let declared: &[&str] = match version {
        ApiVersion::V1 => &["type", "value", "accessType"],
        ApiVersion::Beta => &["type", "value", "accessType", "identitySource"],
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            // Error targets are written out only for an error: an item's entries are many.
            let target = || format!("acl[{index}]");
            let Value::Object(map) = entry else {
                return Err(ApiError::deserialization(format!("{} must be an object.", target())).with_target(target()));
            };
            let members = Members::element(map, ACL_TYPE, "acl", index);
            members.allow_only(declared)?;
            let required = |name: &str| -> Result<&str, ApiError> {
                match members.str(name)? {
                    Some(Some(text)) => Ok(text),
                    _ => Err(ApiError::invalid(format!("{} needs '{name}'.", target())).with_target(format!("{}.{name}", target()))),
                }
            };
            let raw_type = required("type")?;
            let acl_type = AclType::parse(raw_type).ok_or_else(|| {
                let names: Vec<&str> = AclType::ALL.iter().map(|t| t.as_str()).collect();
                ApiError::invalid(format!("{}: '{raw_type}' is not an acl type; use one of: {}.", target(), names.join(", ")))
                    .with_target(format!("{}.type", target()))
            })?;
            let value = required("value")?;
            let raw_access = required("accessType")?;
            let access_type = AccessType::parse(raw_access).ok_or_else(|| {
                ApiError::invalid(format!("{}: '{raw_access}' is not an accessType; use grant or deny.", target()))
                    .with_target(format!("{}.accessType", target()))
            })?;
            let identity_source = match members.str("identitySource")? {
                None | Some(None) => None,
                Some(Some(raw)) => Some(IdentitySource::parse(raw).ok_or_else(|| {
                    ApiError::invalid(format!("{}: '{raw}' is not an identitySource; use azureActiveDirectory or external.", target()))
                        .with_target(format!("{}.identitySource", target()))
                })?),
            };
            let entry = AclEntry {
                acl_type,
                value: value.to_string(),
                access_type,
                identity_source,
            };
            entry.validate(index).map_err(|v| ApiError::invalid(format!("{}.", capitalize(&v.message))).with_target(v.target))?;
            Ok(entry)
        })
        .collect()
}

fn parse_content(value: Option<Value>) -> Result<Option<ItemContent>, ApiError> {
    let mut map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(
                ApiError::new(ErrorCode::BadRequest, CONTENT_MISMATCH).with_target("content")
            );
        }
    };
    let members = Members::nested(
        &map,
        "microsoft.graph.externalConnectors.externalItemContent",
        "content".into(),
    );
    members.allow_only(&["type", "value"])?;
    let content_type = match members.str("type")? {
        Some(Some(raw)) => ContentType::parse(raw).ok_or_else(|| {
            ApiError::invalid(format!(
                "content.type '{raw}' is not supported; use text or html."
            ))
            .with_target("content.type")
        })?,
        _ => {
            return Err(ApiError::invalid("content needs a type: text or html.")
                .with_target("content.type"))
        }
    };
    // Moved out of the body: the content is most of an item.
    let value = match map.shift_remove("value") {
        Some(Value::String(text)) => text,
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(
                ApiError::new(ErrorCode::BadRequest, CONTENT_MISMATCH).with_target("content.value")
            )
        }
    };
    Ok(Some(ItemContent {
        content_type,
        value,
    }))
}

/// Reads one externalActivity; inline activities on PUT must carry their `@odata.type` (spec/items.md).
fn parse_activity(
    value: &Value,
    index: usize,
    inline: bool,
) -> Result<ExternalActivity, Violation> {
    let target = format!("activities[{index}]");
    let Value::Object(map) = value else {
        return Err(Violation::new(
            &target,
            format!("{target} must be an externalActivity object"),
        ));
    };
    match map.get("@odata.type").and_then(Value::as_str) {
        Some(odata_type) if odata_type.trim_start_matches('#').eq_ignore_ascii_case("microsoft.graph.externalConnectors.externalActivity") => {}
        Some(other) => {
            return Err(Violation::new(format!("{target}.@odata.type"), format!("{target}: '{other}' is not '#microsoft.graph.externalConnectors.externalActivity'")))
        }
        None if inline => {
            return Err(Violation::new(format!("{target}.@odata.type"), format!("{target} needs \"@odata.type\": \"#microsoft.graph.externalConnectors.externalActivity\"")))
        }
        None => {}
    }
    if let Some(unknown) = map.keys().find(|k| {
        !k.starts_with('@') && !["type", "startDateTime", "performedBy"].contains(&k.as_str())
    }) {
        return Err(Violation::new(
            format!("{target}.{unknown}"),
            format!("{target}: '{unknown}' is not a member of externalActivity"),
        ));
    }
    let raw_type = map.get("type").and_then(Value::as_str).unwrap_or_default();
    let activity_type = ActivityType::parse(raw_type).ok_or_else(|| {
        Violation::new(
            format!("{target}.type"),
            format!("{target}: type '{raw_type}' must be viewed, modified, created or commented"),
        )
    })?;
    let start = map
        .get("startDateTime")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if parse_date_time(start).is_none() {
        return Err(Violation::new(
            format!("{target}.startDateTime"),
            format!("{target}: startDateTime '{start}' is not an ISO 8601 date and time"),
        ));
    }
    let performed_by = map.get("performedBy").and_then(Value::as_object);
    let performed_by_id = performed_by
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    let raw_identity = performed_by
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("user");
    let identity_type = crate::domain::connection::parse_enum_member(IDENTITY_TYPES, raw_identity);
    let (Some(performed_by_id), Some(performed_by_type)) = (performed_by_id, identity_type) else {
        return Err(Violation::new(
            format!("{target}.performedBy"),
            format!("{target}: performedBy needs an id and a type (user, group or externalGroup)"),
        ));
    };
    Ok(ExternalActivity {
        activity_type,
        start_date_time: start.to_string(),
        performed_by_id: performed_by_id.to_string(),
        performed_by_type,
    })
}

/// An activity as an inline `activities` entry of an item PUT (fixtures export).
pub(super) fn activity_json(activity: &ExternalActivity) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.externalConnectors.externalActivity",
        "type": activity.activity_type.as_str(),
        "startDateTime": activity.start_date_time,
        "performedBy": { "id": activity.performed_by_id, "type": activity.performed_by_type },
    })
}

pub fn acl_json(version: ApiVersion, acl: &[AclEntry]) -> Value {
    Value::Array(
        acl.iter()
            .map(|entry| {
                let mut value = Map::new();
                value.insert("type".into(), json!(entry.acl_type.as_str()));
                value.insert("value".into(), json!(entry.value));
                value.insert("accessType".into(), json!(entry.access_type.as_str()));
                if version == ApiVersion::Beta {
                    if let Some(source) = entry.identity_source {
                        value.insert("identitySource".into(), json!(source.as_str()));
                    }
                }
                Value::Object(value)
            })
            .collect(),
    )
}

fn item_json(
    graph: &GraphRequest,
    connection_id: &ConnectionId,
    item: &ExternalItem,
) -> Map<String, Value> {
    let mut body = graph.body_with_context(&format!(
        "external/connections('{connection_id}')/items/$entity"
    ));
    body.extend(item_properties(graph.version, item));
    body
}

/// An item's members as Graph shows them (no annotations).
pub(super) fn item_properties(version: ApiVersion, item: &ExternalItem) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("id".into(), json!(item.id.as_str()));
    body.insert("acl".into(), acl_json(version, &item.acl));
    body.insert("properties".into(), Value::Object(item.properties.clone()));
    body.insert(
        "content".into(),
        match &item.content {
            Some(content) => json!({"value": content.value, "type": content.content_type.as_str()}),
            None => Value::Null,
        },
    );
    if let Some(label) = &item.sensitivity_label_id {
        body.insert(
            "informationProtectionLabel".into(),
            json!({ "sensitivityLabelId": label }),
        );
    }
    body
}

/// `informationProtectionLabel`: `{"sensitivityLabelId": "..."}`; `None` when absent, `Some(None)` when null.
fn parse_label(value: Option<&Value>) -> Result<Option<Option<String>>, ApiError> {
    let map =
        match value {
            None => return Ok(None),
            Some(Value::Null) => return Ok(Some(None)),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(ApiError::deserialization(
                "informationProtectionLabel must be an object: {\"sensitivityLabelId\": \"...\"}.",
            )
            .with_target("informationProtectionLabel")),
        };
    let members = Members::nested(
        map,
        "microsoft.graph.externalConnectors.externalItemInformationProtectionLabel",
        "informationProtectionLabel".into(),
    );
    members.allow_only(&["sensitivityLabelId"])?;
    Ok(Some(members.string("sensitivityLabelId")?.flatten()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::ContentType;
    use proptest::prelude::*;

    /// The general way: the JSON tree, then `read_item`.
    fn read_generally(bytes: &[u8], version: ApiVersion) -> Option<ExternalItem> {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
            return None;
        };
        let (item, activities) = read_item(body, ItemId::parse("a1").unwrap(), version).ok()?;
        assert!(activities.is_empty());
        Some(item)
    }

    fn read_typed(bytes: &[u8]) -> Option<ExternalItem> {
        well_formed::read(bytes)?.into_item(ItemId::parse("a1").unwrap())
    }

    /// JSON values of the kinds item members are sent with: mostly strings that are right for
    /// some member, sometimes a value of another kind.
    fn member_value() -> BoxedStrategy<String> {
        let text = proptest::sample::select(
            &[
                "everyone",
                "Everyone",
                "grant",
                "deny",
                "DENY",
                "Grant",
                "user",
                "group",
                "externalGroup",
                "everyoneExceptGuests",
                "text",
                "html",
                "HTML",
                "external",
                "azureActiveDirectory",
                "",
                " ",
                "e0c5d1c1-6f0e-4d6c-9f55-0b0a3b0f1c11",
                "team a",
                "caf\\u00e9",
                "tab\\there",
            ][..],
        )
        .prop_map(|text| format!("\"{text}\""));
        prop_oneof![
            12 => text,
            1 => Just("null".to_string()),
            1 => Just("3".to_string()),
            1 => Just("[]".to_string()),
            1 => Just("{}".to_string()),
        ]
        .boxed()
    }

    /// Members in the common shape, then at times one more (declared elsewhere, misspelt in
    /// case, unknown, or repeated), in a shuffled order.
    fn object_with(members: Vec<(&'static str, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
        let names: Vec<&'static str> = members.iter().map(|(name, _)| *name).collect();
        let values: Vec<BoxedStrategy<String>> = members.into_iter().map(|(_, v)| v).collect();
        let extra_name = prop_oneof![
            Just("identitySource".to_string()),
            Just("Type".to_string()),
            Just("extra".to_string()),
            proptest::sample::select(names.clone()).prop_map(str::to_string),
        ];
        let extra = proptest::option::weighted(0.25, (extra_name, member_value()));
        let dropped = proptest::option::weighted(0.1, 0..names.len());
        let as_array = proptest::bool::weighted(0.1);
        let values_in_a_list = values.clone();
        let object = (values, extra, dropped)
            .prop_map(move |(values, extra, dropped)| {
                let mut members: Vec<String> = names
                    .iter()
                    .zip(values)
                    .enumerate()
                    .filter(|(index, _)| Some(*index) != dropped)
                    .map(|(_, (name, value))| format!("\"{name}\":{value}"))
                    .collect();
                if let Some((name, value)) = extra {
                    members.push(format!("\"{name}\":{value}"));
                }
                members
            })
            .prop_shuffle()
            .prop_map(|members| format!("{{{}}}", members.join(",")));
        // The members' values in a list, in the order a derived struct would take them.
        let list = values_in_a_list.prop_map(|values| format!("[{}]", values.join(",")));
        (as_array, object, list)
            .prop_map(|(as_array, object, list)| if as_array { list } else { object })
            .boxed()
    }

    /// Mostly one of `choices` (right and wrong for the member), at times any member value.
    fn field(choices: &'static [&'static str]) -> BoxedStrategy<String> {
        prop_oneof![
            4 => proptest::sample::select(choices).prop_map(|text| format!("\"{text}\"")),
            1 => member_value(),
        ]
        .boxed()
    }

    fn item_body() -> impl Strategy<Value = String> {
        let entry = object_with(vec![
            (
                "type",
                field(&[
                    "everyone",
                    "user",
                    "group",
                    "externalGroup",
                    "everyoneExceptGuests",
                    "Everyone",
                    "nobody",
                ]),
            ),
            (
                "value",
                field(&[
                    "everyone",
                    "g1",
                    "e0c5d1c1-6f0e-4d6c-9f55-0b0a3b0f1c11",
                    "",
                    " ",
                    "caf\\u00e9",
                ]),
            ),
            (
                "accessType",
                field(&["grant", "deny", "Grant", "DENY", "allow"]),
            ),
        ]);
        let acl = prop_oneof![
            8 => proptest::collection::vec(entry, 0..4).prop_map(|e| format!("[{}]", e.join(","))),
            1 => member_value(),
        ]
        .boxed();
        let properties = prop_oneof![
            6 => Just(r#"{"title":"T","n":2,"tags@odata.type":"Collection(String)","tags":["x"]}"#.to_string()),
            1 => Just("{}".to_string()),
            1 => member_value(),
        ]
        .boxed();
        let content = prop_oneof![
            6 => object_with(vec![
                ("type", field(&["text", "html", "HTML", "markdown"])),
                ("value", member_value()),
            ]),
            1 => member_value(),
        ]
        .boxed();
        object_with(vec![
            ("acl", acl),
            ("properties", properties),
            ("content", content),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A body read straight into types gives the item the general way gives, in both API
        /// versions; any body it does not take is left to the general way.
        #[test]
        fn a_well_formed_item_body_reads_as_the_general_way_reads_it(body in item_body()) {
            if let Some(item) = read_typed(body.as_bytes()) {
                let v1 = read_generally(body.as_bytes(), ApiVersion::V1);
                let beta = read_generally(body.as_bytes(), ApiVersion::Beta);
                prop_assert_eq!(Some(&item), v1.as_ref());
                prop_assert_eq!(Some(&item), beta.as_ref());
            }
        }
    }

    #[test]
    fn a_typical_item_body_is_read_straight_into_types() {
        let body = r#"{"acl":[{"type":"externalGroup","value":"g1","accessType":"grant"},
            {"type":"everyone","value":"everyone","accessType":"deny"}],
            "properties":{"title":"T","modified":"2026-01-01T10:00:00Z"},
            "content":{"type":"text","value":"caf\u00e9 \"quoted\""}}"#;
        let typed = read_typed(body.as_bytes()).expect("the common shape");
        assert_eq!(Some(typed), read_generally(body.as_bytes(), ApiVersion::V1));
        // Not the common shape: left to the general way.
        for other in [
            r#"{"acl":[],"properties":{},"id":"a1"}"#,
            r#"{"acl":[{"type":"everyone","value":"everyone","accessType":"grant","identitySource":"external"}],"properties":{}}"#,
            r#"{"acl":[{"type":"nobody","value":"x","accessType":"grant"}],"properties":{}}"#,
            r#"{"acl":[],"acl":[],"properties":{}}"#,
            r#"[[["everyone","everyone","grant"]],{"title":"x"}]"#,
            r#"{"acl":[["everyone","everyone","grant"]],"properties":{}}"#,
            r#"{"acl":[],"properties":{},"content":["text","hi"]}"#,
        ] {
            assert!(read_typed(other.as_bytes()).is_none(), "{other}");
        }
    }

    #[test]
    fn an_item_body_names_its_first_unknown_member_and_keeps_its_properties() {
        let body = |text: &str| match serde_json::from_str::<Value>(text).unwrap() {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let id = || ItemId::parse("a1").unwrap();
        let acl = r#"[{"type":"everyone","value":"everyone","accessType":"grant"}]"#;
        let refused = read_item(
            body(&format!(
                r#"{{"properties":{{"title":"T"}},"foo":1,"acl":{acl},"bar":2}}"#
            )),
            id(),
            ApiVersion::V1,
        )
        .unwrap_err();
        let detail = refused.inner.map(|inner| inner.message).unwrap_or_default();
        assert!(detail.contains("'foo'"), "{detail}");
        let (item, _) = read_item(
            body(&format!(
                r#"{{"acl":{acl},"properties":{{"title":"T","n":2,"tags@odata.type":"Collection(String)","tags":["x"]}}}}"#
            )),
            id(),
            ApiVersion::V1,
        )
        .unwrap();
        let names: Vec<&str> = item.properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["title", "n", "tags@odata.type", "tags"]);
    }

    fn entry(acl_type: AclType, value: &str, source: Option<IdentitySource>) -> AclEntry {
        AclEntry {
            acl_type,
            value: value.into(),
            access_type: AccessType::Grant,
            identity_source: source,
        }
    }

    #[test]
    fn a_write_answer_is_the_item_as_graph_shows_it() {
        let properties = json!({"title": "Ünïcode \"quoted\"", "tags@odata.type": "Collection(String)", "tags": ["a", "b"], "n": 1.5, "big": 9007199254740993_i64, "nested": {"x": [null, true]}});
        let mut items = vec![ExternalItem {
            id: ItemId::parse("T-1").unwrap(),
            acl: vec![
                entry(AclType::User, "adele@contoso.com", None),
                entry(AclType::Group, "g1", Some(IdentitySource::External)),
                entry(AclType::Everyone, "everyone", None),
            ],
            properties: properties.as_object().unwrap().clone(),
            content: Some(ItemContent {
                content_type: ContentType::Html,
                value: "<p>a &amp; b</p>".into(),
            }),
            sensitivity_label_id: Some("label-1".into()),
        }];
        let mut bare = items[0].clone();
        bare.content = None;
        bare.sensitivity_label_id = None;
        bare.acl.clear();
        items.push(bare);
        for item in &items {
            for version in [ApiVersion::V1, ApiVersion::Beta] {
                for context in [
                    None,
                    Some("https://x/v1.0/$metadata#items/$entity".to_string()),
                ] {
                    let mut expected = Map::new();
                    if let Some(context) = &context {
                        expected.insert("@odata.context".into(), json!(context));
                    }
                    expected.extend(item_properties(version, item));
                    expected.insert("activities".into(), json!([]));
                    let body = ItemBody {
                        context,
                        version,
                        item,
                        activities: true,
                    };
                    let mut text = Vec::new();
                    body.write_to(&mut text).unwrap();
                    let text = String::from_utf8(text).unwrap();
                    // The same members, in the same order, with the same values.
                    assert_eq!(text, Value::Object(expected).to_string());
                }
            }
        }
    }

    #[test]
    fn a_json_string_is_written_as_serde_json_writes_it() {
        let samples = [
            String::new(),
            "plain".into(),
            "exactly sixteen!".into(),
            "a\"quote\\and\nnew\tline\r\u{8}\u{c}\u{1}\u{1f}\u{7f}/".into(),
            "\"".repeat(40),
            format!("{}\u{0}{}", "é".repeat(20), "x".repeat(17)),
            "ünïcödé 🦀 text that runs past a few blocks of sixteen bytes".into(),
        ];
        for text in samples {
            let mut out = Vec::new();
            write_json_string(&mut out, &text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn any_json_string_is_written_as_serde_json_writes_it(
            text in "(\\PC|[\\x00-\\x1f\"\\\\]){0,80}"
        ) {
            let mut out = Vec::new();
            write_json_string(&mut out, &text);
            proptest::prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
    }
}
