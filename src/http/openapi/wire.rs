//! The wire shapes of gcemu's bodies, as `utoipa` schemas for the OpenAPI document.
//!
//! Handlers read bodies as raw JSON (`JsonObject`, `Members`) and build answers with
//! `serde_json`, so these types exist for the document only: they are never built. Each one
//! says what the handler of its route reads or writes; the schemathesis stage of `.ci/run`
//! checks the responses against them. Members that differ by version are described on the
//! member ("beta only"); enums in requests are accepted in any letter case, so request enums
//! are plain strings with their members named in the description.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------------
// Errors

/// Graph's error envelope: every error of every route (`4XX`, `5XX`) has this shape, also the
/// control plane's.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: MainError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MainError {
    /// `InvalidRequest`, `BadRequest`, `ItemNotFound`, `Request_ResourceNotFound`, ... (or the
    /// code a fault rule chose).
    pub code: String,
    pub message: String,
    /// The member (or JSON path) the error is about.
    #[serde(default)]
    pub target: String,
    /// One entry per problem when a request has several (fixtures documents).
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    pub inner_error: InnerError,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub target: String,
}

#[derive(Serialize, ToSchema)]
pub struct InnerError {
    /// A more specific code (`ResourceNotFound`, `DeserializationError`, ...).
    #[serde(default)]
    pub code: String,
    /// The kind of resource that was not found (`Connection`, `Item`, ...).
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub message: String,
    /// The emulator clock's time, `YYYY-MM-DDTHH:MM:SS`.
    pub date: String,
    #[serde(rename = "request-id")]
    pub request_id: String,
    #[serde(rename = "client-request-id")]
    pub client_request_id: String,
}

// ---------------------------------------------------------------------------------------------
// Connections

/// An `externalConnection` as gcemu answers it. With `$select` only the selected members are
/// sent, so none is required; `@odata.context` is left out with `odata.metadata=none`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalConnection {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub description: Option<String>,
    /// `draft` until a schema completes, then `ready`.
    #[serde(default)]
    #[schema(inline)]
    pub state: ConnectionState,
    /// Open complex type; holds `authorizedAppIds`.
    #[serde(default)]
    pub configuration: Map<String, Value>,
    pub connector_id: Option<String>,
    #[serde(default)]
    pub content_category: String,
    pub activity_settings: Option<Map<String, Value>>,
    pub search_settings: Option<Map<String, Value>>,
    /// Beta only.
    pub enabled_content_experiences: Option<Vec<String>>,
    /// Beta only.
    pub compliance_settings: Option<Map<String, Value>>,
    /// Beta only; `null` while the connection is a draft.
    #[schema(minimum = 0)]
    pub ingested_items_count: Option<u64>,
}

#[derive(Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum ConnectionState {
    #[default]
    Draft,
    Ready,
    Obsolete,
    LimitExceeded,
}

#[derive(Serialize, ToSchema)]
pub struct ExternalConnectionCollection {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<ExternalConnection>,
}

/// The body of `POST /external/connections`. Unknown members (and beta-only members sent to
/// `/v1.0`) are refused; `state` and `ingestedItemsCount` are computed and ignored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalConnectionCreate {
    /// 3 to 32 letters and digits, not starting with `Microsoft`, not a reserved id; unique in
    /// the tenant without regard to case.
    #[schema(pattern = "^[A-Za-z0-9]{3,32}$")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub configuration: Option<Map<String, Value>>,
    pub connector_id: Option<String>,
    /// `uncategorized`, `knowledgeBase`, `wikis`, `fileRepository`, `qna`, `crm`, `dashboard`,
    /// `people`, `media`, `email`, `messaging`, `meetingTranscripts`, `taskManagement`,
    /// `learningManagement` (any letter case).
    pub content_category: Option<String>,
    pub activity_settings: Option<Map<String, Value>>,
    pub search_settings: Option<Map<String, Value>>,
    /// Beta only: `search`, `compliance`.
    pub enabled_content_experiences: Option<Vec<String>>,
    /// Beta only.
    pub compliance_settings: Option<Map<String, Value>>,
    /// Computed: ignored.
    pub state: Option<String>,
    /// Computed (beta): ignored.
    pub ingested_items_count: Option<Value>,
    /// When present, the entity's own type.
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalConnection$")]
    pub odata_type: Option<String>,
}

/// The body of `PATCH /external/connections/{id}`: the members to change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalConnectionUpdate {
    /// When sent, the id in the URL.
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub configuration: Option<Map<String, Value>>,
    pub connector_id: Option<String>,
    pub content_category: Option<String>,
    pub activity_settings: Option<Map<String, Value>>,
    pub search_settings: Option<Map<String, Value>>,
    /// Beta only.
    pub enabled_content_experiences: Option<Vec<String>>,
    /// Beta only.
    pub compliance_settings: Option<Map<String, Value>>,
    pub state: Option<String>,
    pub ingested_items_count: Option<Value>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalConnection$")]
    pub odata_type: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Schema and operations

/// A schema as sent (`PATCH .../schema`, legacy `POST .../schema`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaRequest {
    /// `microsoft.graph.externalItem`.
    pub base_type: String,
    /// 1 to 128 properties.
    pub properties: Vec<PropertyRequest>,
    pub id: Option<String>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.schema$")]
    pub odata_type: Option<String>,
}

/// A Boolean schema attribute: a JSON Boolean, or the strings `"true"`/`"false"` as the docs'
/// own samples send them.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Flag {
    Boolean(bool),
    Text(String),
}

/// One schema property as sent.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertyRequest {
    /// 1 to 32 ASCII letters and digits.
    pub name: String,
    /// `string`, `int64`, `double`, `dateTime`, `boolean`, the collections of those, `principal`,
    /// `principalCollection` (any letter case).
    #[serde(rename = "type")]
    pub property_type: String,
    pub is_searchable: Option<Flag>,
    pub is_queryable: Option<Flag>,
    pub is_retrievable: Option<Flag>,
    pub is_refinable: Option<Flag>,
    /// Beta only.
    pub is_exact_match_required: Option<Flag>,
    pub aliases: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    pub description: Option<String>,
    /// Beta only.
    pub ranking_hint: Option<RankingHint>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RankingHint {
    /// `low`, `medium`, `high`, `veryHigh`.
    pub importance_score: String,
}

/// A schema as gcemu answers it: every attribute explicit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub base_type: String,
    pub properties: Vec<Property>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub name: String,
    /// The type in camelCase (`unknownFutureValue` for evolvable members unless asked for with
    /// `Prefer: include-unknown-enum-members`).
    #[serde(rename = "type")]
    pub property_type: String,
    pub is_searchable: bool,
    pub is_retrievable: bool,
    pub is_queryable: bool,
    pub is_refinable: bool,
    /// Beta only.
    #[serde(default)]
    pub is_exact_match_required: bool,
    pub aliases: Vec<String>,
    pub labels: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Beta only.
    #[serde(default)]
    pub ranking_hint: Option<RankingHint>,
}

/// A `connectionOperation`: a schema registration.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOperation {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    #[schema(inline)]
    pub status: OperationStatus,
    #[schema(required = true)]
    pub error: Option<OperationError>,
}

/// Exactly `inprogress`, `completed` or `failed`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    Inprogress,
    Completed,
    Failed,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationError {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<Value>,
    pub inner_error: Option<Value>,
}

// ---------------------------------------------------------------------------------------------
// Items

/// An access control entry.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Acl {
    /// `user`, `group`, `everyone`, `everyoneExceptGuests`, `externalGroup` (any case in requests).
    #[serde(rename = "type")]
    pub acl_type: String,
    pub value: String,
    /// `grant` or `deny`.
    pub access_type: String,
    /// Beta only: `azureActiveDirectory` or `external`.
    #[serde(default)]
    pub identity_source: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemContent {
    /// `text` or `html`.
    #[serde(rename = "type")]
    pub content_type: String,
    pub value: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InformationProtectionLabel {
    pub sensitivity_label_id: Option<String>,
}

/// The body of `PUT .../items/{itemId}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalItemPut {
    /// When sent, the id in the URL.
    pub id: Option<String>,
    /// At most 10,000 entries.
    pub acl: Vec<Acl>,
    /// Values of the schema's properties (with `name@odata.type` annotations where needed).
    pub properties: Map<String, Value>,
    pub content: Option<ItemContent>,
    /// At most 20; each with `"@odata.type": "#microsoft.graph.externalConnectors.externalActivity"`.
    pub activities: Option<Vec<ExternalActivity>>,
    pub information_protection_label: Option<InformationProtectionLabel>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalItem$")]
    pub odata_type: Option<String>,
}

/// The body of `PATCH .../items/{itemId}`: the members to replace.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalItemPatch {
    pub id: Option<String>,
    pub acl: Option<Vec<Acl>>,
    pub properties: Option<Map<String, Value>>,
    pub content: Option<ItemContent>,
    pub information_protection_label: Option<InformationProtectionLabel>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalItem$")]
    pub odata_type: Option<String>,
}

/// An `externalItem` as gcemu answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalItem {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    pub acl: Vec<Acl>,
    pub properties: Map<String, Value>,
    #[schema(required = true)]
    pub content: Option<ItemContentAnswer>,
    #[serde(default)]
    pub information_protection_label: InformationProtectionLabel,
    /// `[]` in the answer to a `PUT`.
    #[serde(default)]
    pub activities: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemContentAnswer {
    pub value: String,
    /// `text` or `html`.
    #[serde(rename = "type")]
    pub content_type: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalActivity {
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    /// `viewed`, `modified`, `created` or `commented`.
    #[serde(rename = "type")]
    pub activity_type: String,
    /// An ISO 8601 date and time.
    pub start_date_time: String,
    pub performed_by: Identity,
}

/// The body of `addActivities`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddActivities {
    /// At most 20.
    pub activities: Vec<ExternalActivity>,
}

/// `200` when every activity was recorded, `207` with an `error` on each refused one.
#[derive(Serialize, ToSchema)]
pub struct ExternalActivityResults {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<ExternalActivityResult>,
}

/// An activity as sent (each member echoed as it came), with its outcome.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalActivityResult {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    #[serde(rename = "type")]
    pub activity_type: Value,
    pub start_date_time: Value,
    pub performed_by: Value,
    #[schema(required = true)]
    pub error: Option<PublicError>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicError {
    pub code: String,
    pub message: String,
    pub target: String,
}

/// Beta `GET .../quota`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionQuota {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub items_remaining: u64,
}

// ---------------------------------------------------------------------------------------------
// External groups

/// The body of `POST .../groups`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalGroupCreate {
    /// 1 to 128 of `A-Z a-z 0-9 - _`.
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalGroup$")]
    pub odata_type: Option<String>,
}

/// The body of `PATCH .../groups/{groupId}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalGroupUpdate {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.externalConnectors\\.externalGroup$")]
    pub odata_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalGroup {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
}

/// An `identity`: a member of an external group, or who performed an activity.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub id: String,
    /// `user`, `group` or `externalGroup` (any case).
    #[serde(rename = "type")]
    pub identity_type: String,
    /// Beta only, members: `azureActiveDirectory`, or `external` with `type: group` for an
    /// external group.
    #[serde(default)]
    pub identity_source: String,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityAnswer {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    /// `user`, `group` or `externalGroup`.
    #[serde(rename = "type")]
    pub identity_type: String,
}

// ---------------------------------------------------------------------------------------------
// Search

/// The body of `POST /search/query`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// 1 to 20 requests, answered in order.
    pub requests: Vec<SearchRequest>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchRequest {
    /// `["externalItem"]`.
    pub entity_types: Vec<String>,
    /// `/external/connections/{id}`, 1 to 100.
    pub content_sources: Vec<String>,
    pub query: SearchQueryString,
    #[schema(minimum = 0)]
    pub from: Option<u64>,
    /// At most 1,000 (`--search-max-size`); 25 by default.
    #[schema(minimum = 0)]
    pub size: Option<u64>,
    pub fields: Option<Vec<String>>,
    pub aggregations: Option<Vec<AggregationOption>>,
    pub aggregation_filters: Option<Vec<String>>,
    pub sort_properties: Option<Vec<SortProperty>>,
    /// Ignored.
    pub query_alteration_options: Option<Value>,
    /// `{"enableResultTemplate": true}`: each hit gets the `resultTemplateId` of its
    /// connection's first result template (by priority) whose rules hold, and the response
    /// gets `resultTemplates`.
    pub result_template_options: Option<ResultTemplateOption>,
    /// Ignored.
    pub enable_top_results: Option<Value>,
    /// Ignored.
    pub region: Option<Value>,
    /// Ignored.
    pub share_point_one_drive_options: Option<Value>,
    /// Ignored.
    pub trim_duplicates: Option<Value>,
    /// Results sharing the values of `fields` are cut to `limit` per group, level by level;
    /// fields must be queryable and refinable, each limit at most the one before.
    pub collapse_properties: Option<Vec<CollapseProperty>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultTemplateOption {
    pub enable_result_template: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollapseProperty {
    pub fields: Vec<String>,
    #[schema(minimum = 1, maximum = 32767)]
    pub limit: u64,
}

/// A range bucket: `from` included, `to` excluded; either may be left out.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketAggregationRange {
    /// A number or a date (`2024-01-01T00:00:00Z`).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchQueryString {
    /// KQL.
    pub query_string: String,
    /// `{searchTerms}` is replaced by `queryString`.
    pub query_template: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregationOption {
    /// A refinable property.
    pub field: String,
    /// 0 to 65,535 buckets; 10 by default.
    #[schema(minimum = 0, maximum = 65535)]
    pub size: Option<u64>,
    pub bucket_definition: Option<BucketDefinition>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketDefinition {
    /// `count`, `keyAsString` or `keyAsNumber`.
    pub sort_by: Option<String>,
    pub is_descending: Option<bool>,
    pub minimum_count: Option<u64>,
    pub prefix_filter: Option<String>,
    /// Range buckets on a numeric or date property, in this order; keys such as `100 up to
    /// 1000`, tokens such as `range(100, 1000)`.
    pub ranges: Option<Vec<BucketAggregationRange>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SortProperty {
    pub name: String,
    pub is_descending: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchQueryAnswer {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<SearchResponse>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// The free-text words, lowercased.
    pub search_terms: Vec<String>,
    pub hits_containers: Vec<SearchHitsContainer>,
    /// With `resultTemplateOptions`: the templates the hits use, by `resultTemplateId`.
    pub result_templates: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitsContainer {
    pub hits: Vec<SearchHit>,
    pub total: u64,
    pub more_results_available: bool,
    #[serde(default)]
    pub aggregations: Vec<SearchAggregation>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// The item id.
    pub hit_id: String,
    /// 1-based over the whole result.
    pub rank: u64,
    pub summary: String,
    /// The connection id.
    pub content_source: String,
    /// With `resultTemplateOptions`: the key of the hit's template in `resultTemplates`.
    pub result_template_id: Option<String>,
    /// With `collapseProperties`: whether results sharing this hit's collapse values were
    /// left out.
    pub is_collapsed: Option<bool>,
    pub resource: SearchHitResource,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHitResource {
    /// `#microsoft.graph.externalConnectors.externalItem`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub properties: Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchAggregation {
    pub field: String,
    pub buckets: Vec<SearchBucket>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchBucket {
    pub key: String,
    pub count: u64,
    pub aggregation_filter_token: String,
}

// ---------------------------------------------------------------------------------------------
// Copilot retrieval

/// The body of `POST /copilot/retrieval`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrievalRequest {
    /// The question, at most 1,500 characters.
    pub query_string: String,
    /// `externalItem` (`sharePoint` and `oneDriveBusiness` are refused: gcemu emulates
    /// connector content only).
    pub data_source: String,
    /// `{"externalItem": {"connections": [{"connectionId": "..."}]}}`.
    pub data_source_configuration: Option<Map<String, Value>>,
    /// KQL over queryable properties; ignored when invalid.
    pub filter_expression: Option<String>,
    /// Retrievable properties to answer.
    pub resource_metadata: Option<Vec<String>>,
    /// 1 to 25; 25 by default.
    #[schema(minimum = 1, maximum = 25)]
    pub maximum_number_of_results: Option<u64>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.retrievalRequest$")]
    pub odata_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalResponse {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub retrieval_hits: Vec<RetrievalHit>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalHit {
    /// The `url`-labelled property.
    #[schema(required = true)]
    pub web_url: Option<String>,
    pub extracts: Vec<RetrievalExtract>,
    /// `externalItem`.
    pub resource_type: String,
    pub resource_metadata: Map<String, Value>,
    #[schema(required = true)]
    pub sensitivity_label: Option<InformationProtectionLabel>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalExtract {
    pub text: String,
    /// 0 to 1.
    pub relevance_score: f64,
}

// ---------------------------------------------------------------------------------------------
// JSON batching

/// The body of `POST /$batch`.
#[derive(Serialize, ToSchema)]
pub struct BatchRequest {
    /// 1 to 20 requests.
    pub requests: Vec<BatchRequestStep>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequestStep {
    /// Unique in the batch without regard to case.
    pub id: String,
    pub method: String,
    /// Relative to the batch's version.
    pub url: String,
    pub headers: Option<BTreeMap<String, String>>,
    /// JSON, or a base64 string for a binary body; needs a `Content-Type` header.
    pub body: Option<Value>,
    /// Ids of earlier requests.
    pub depends_on: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    /// One per request, in request order.
    pub responses: Vec<BatchResponseStep>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponseStep {
    pub id: String,
    pub status: u16,
    /// Headers in Graph's spelling (`Content-Type`, `Location`, `Retry-After`, ...).
    pub headers: BTreeMap<String, String>,
    /// JSON, or base64 for any other body; left out when empty.
    #[serde(default)]
    pub body: Value,
}

// ---------------------------------------------------------------------------------------------
// Directory

/// The body of `POST /users`. `mailNickname`, `passwordProfile` and the other writable members
/// Graph takes are accepted and ignored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserCreate {
    /// Minted (a GUID) when absent.
    pub id: Option<String>,
    /// `name@domain`.
    pub user_principal_name: String,
    pub display_name: String,
    /// `Member` (default) or `Guest`.
    pub user_type: Option<String>,
    pub account_enabled: Option<bool>,
    pub mail_nickname: Option<Value>,
    pub password_profile: Option<Value>,
    pub mail: Option<Value>,
    pub given_name: Option<Value>,
    pub surname: Option<Value>,
    pub job_title: Option<Value>,
    pub department: Option<Value>,
    pub usage_location: Option<Value>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.user$")]
    pub odata_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// `Member` or `Guest`.
    pub user_type: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserCollection {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<User>,
}

/// The body of `POST /groups`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupCreate {
    /// Minted (a GUID) when absent.
    pub id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail_enabled: Option<Value>,
    pub security_enabled: Option<Value>,
    pub group_types: Option<Value>,
    pub visibility: Option<Value>,
    #[serde(rename = "members@odata.bind")]
    pub members_bind: Option<Value>,
    #[serde(rename = "owners@odata.bind")]
    pub owners_bind: Option<Value>,
    #[serde(rename = "@odata.type")]
    /// The entity's own type, with or without `#` (any letter case).
    #[schema(pattern = "^#?microsoft\\.graph\\.group$")]
    pub odata_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub id: String,
    pub display_name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub mail_nickname: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupCollection {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<Group>,
}

/// A user or a group among a group's members.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.user` or `#microsoft.graph.group`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub user_principal_name: String,
    #[serde(default)]
    pub user_type: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DirectoryObjectCollection {
    #[serde(rename = "@odata.context", default)]
    pub odata_context: String,
    pub value: Vec<DirectoryObject>,
}

/// The body of `POST /groups/{id}/members/$ref`.
#[derive(Serialize, ToSchema)]
pub struct DirectoryReference {
    /// `https://graph.microsoft.com/v1.0/directoryObjects/{id}` (the last segment is read).
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

// ---------------------------------------------------------------------------------------------
// Control plane

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unhealthy` with `503`.
    pub status: String,
    /// Why requests fail (with `503`).
    #[serde(default)]
    pub problems: Vec<String>,
}

/// The emulator clock.
#[derive(Serialize, ToSchema)]
pub struct Clock {
    /// RFC 3339, milliseconds, UTC.
    pub now: String,
}

/// The body of `POST /_emulator/clock/advance`.
#[derive(Serialize, ToSchema)]
pub struct ClockAdvance {
    /// Seconds to move forward: a non-negative number, at most a century past the system time
    /// in all.
    #[schema(minimum = 0)]
    pub seconds: f64,
}

/// `roles` and `scopes`: a list, or one space-separated string.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum NameList {
    List(Vec<String>),
    Joined(String),
}

/// The body of `POST /_emulator/token`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A tenant id (the default tenant when absent).
    pub tenant: Option<String>,
    /// A directory user (id or UPN) of the tenant: a delegated token.
    pub user: Option<String>,
    /// An application id: an app token (the default application when absent).
    pub app: Option<String>,
    pub roles: Option<NameList>,
    pub scopes: Option<NameList>,
    /// `aud` (default `https://graph.microsoft.com`); another audience makes a token strict mode refuses.
    pub audience: Option<String>,
    /// Seconds until the token expires (default 3599; zero or less: already expired).
    #[serde(rename = "lifetimeSeconds")]
    pub lifetime_seconds: Option<i64>,
}

/// An application as `POST /_emulator/applications` declares it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDeclaration {
    /// The tenant (default tenant when absent).
    pub tenant: Option<String>,
    /// The application (client) id, a GUID.
    pub app_id: String,
    pub display_name: String,
    /// Client secrets.
    pub secrets: Option<Vec<String>>,
    /// Granted application permissions (`roles` of its app-only tokens).
    pub roles: Option<Vec<String>>,
    /// Granted delegated permissions (`scp` of its users' tokens).
    pub scopes: Option<Vec<String>>,
    /// X.509 certificates (PEM or base64 DER) whose keys may sign client assertions.
    pub certificates: Option<Vec<String>>,
}

/// `GET /_emulator/applications`.
#[derive(Serialize, ToSchema)]
pub struct ApplicationList {
    pub value: Vec<ApplicationDeclaration>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
}

/// A fixtures document (`fixtures/schema.json` describes it whole).
#[derive(Serialize, ToSchema)]
pub struct FixturesDocument {
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// Each tenant's users, groups, applications and connections.
    pub tenants: Vec<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixturesLoaded {
    pub tenants: Vec<String>,
    pub created: FixtureCounts,
    pub duration_ms: u64,
}

/// What a fixtures document created, per kind.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixtureCounts {
    pub tenants: u64,
    pub users: u64,
    pub groups: u64,
    pub group_members: u64,
    pub applications: u64,
    pub connections: u64,
    pub schemas: u64,
    pub external_groups: u64,
    pub external_group_members: u64,
    pub items: u64,
    pub activities: u64,
}

/// Whether a user may see an item, and why.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessExplanation {
    pub allowed: bool,
    /// The ACL entries that matched the user, grant and deny.
    pub matched_entries: Vec<Acl>,
    pub reason: String,
    /// For each matched group entry, the membership chain from the user to the group.
    pub paths: Vec<Vec<String>>,
    /// With `?query=`: the passages the item would yield for that question.
    #[serde(default)]
    pub retrieval: RetrievalExplanation,
    /// The search result template the item gets and the templates tried before it.
    pub result_template: ResultTemplateExplanation,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultTemplateExplanation {
    /// The template's id; `null` when no template fits.
    pub id: Option<String>,
    /// In priority order, up to the chosen one: `{id, priority, chosen, rules: [{property,
    /// operation, values, valuesJoinedBy, itemValue, holds, reason}]}`.
    pub tried: Vec<Value>,
}

#[derive(Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalExplanation {
    pub query_words: Vec<String>,
    pub passages: u64,
    pub extracts: Vec<RetrievalExtract>,
}

/// `GET /_emulator/requests`.
#[derive(Serialize, ToSchema)]
pub struct RequestJournal {
    /// Oldest first.
    pub value: Vec<JournalEntry>,
    /// Entries dropped because the journal was full.
    pub dropped: u64,
    pub capacity: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub sequence: u64,
    /// The emulator clock's time.
    pub time: String,
    pub method: String,
    /// With the version.
    pub path: String,
    pub status: u16,
    pub duration_ms: u64,
    pub tenant: String,
    /// The user of a delegated token, else the app id.
    pub caller: String,
    pub client_request_id: String,
    pub request_bytes: u64,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
    #[serde(default)]
    pub retry_after_seconds: u64,
    /// The fault rule that changed the request.
    #[serde(default)]
    pub fault: String,
    #[serde(default)]
    pub throttled: bool,
    /// `<batch request id>/<sub-request id>`.
    #[serde(default)]
    pub batch: String,
    /// The host the client asked gcemu's proxy for (`--proxy`), when it came through it.
    #[serde(default)]
    pub proxied_host: String,
}

/// The body of `POST /_emulator/faults`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRuleRequest {
    pub method: Option<String>,
    /// Matched against the request path with its version: `*` is one segment, `**` any number.
    pub path: String,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub retry_after_seconds: Option<u64>,
    /// At most 60,000.
    pub delay_ms: Option<u64>,
    pub count: Option<u64>,
    pub probability: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    pub id: String,
    #[schema(required = true)]
    pub method: Option<String>,
    pub path: String,
    #[schema(required = true)]
    pub status: Option<u16>,
    #[schema(required = true)]
    pub code: Option<String>,
    #[schema(required = true)]
    pub message: Option<String>,
    #[schema(required = true)]
    pub retry_after_seconds: Option<u64>,
    #[schema(required = true)]
    pub delay_ms: Option<u64>,
    #[schema(required = true)]
    pub count: Option<u64>,
    #[schema(required = true)]
    pub probability: Option<f64>,
    pub fired: u64,
    #[schema(required = true)]
    pub remaining: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct FaultRuleList {
    pub value: Vec<FaultRule>,
}

/// `GET /_emulator/report`: what the connector did that would hurt it against the real service.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReport {
    pub tenant: String,
    pub findings: Vec<ReportFinding>,
    /// Findings left out beyond the report's limit.
    pub findings_omitted: u64,
    /// Findings per severity (`error`, `warning`, `info`).
    pub summary: BTreeMap<String, u64>,
    pub journal: ReportJournal,
    pub store: ReportStoreScan,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportFinding {
    /// `itemBeforeSchemaReady`, `retryBeforeRetryAfter`, `retryStorm`, `propertyNotInSchema`,
    /// `propertyTypeMismatch`, `itemOverSizeCap`, `aclUnknownPrincipal`, `schemaMissingLabels`,
    /// `operationPolledTooOften`, `contentTooShortToGround`, ...
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    pub message: String,
    pub count: u64,
    /// A sample of the requests concerned.
    pub client_request_ids: Vec<String>,
    pub client_request_id_count: u64,
    #[serde(default)]
    pub connection_id: String,
    #[serde(default)]
    pub operation_id: String,
    #[serde(default)]
    pub property: String,
    /// A sample of the items concerned.
    #[serde(default)]
    pub item_ids: Vec<String>,
    #[serde(default)]
    pub item_id_count: u64,
    /// A sample of the principals concerned.
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub principal_count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ReportJournal {
    pub entries: u64,
    pub dropped: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportStoreScan {
    pub connections: u64,
    pub items_scanned: u64,
    pub item_limit: u64,
    pub principals_checked: u64,
    /// `false` when the scan stopped at `itemLimit`.
    pub complete: bool,
}

/// The form fields of `POST /{tenant}/oauth2/v2.0/token` gcemu reads (others are ignored).
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    /// `client_credentials` or `password`.
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// A JWT signed with the key of a certificate registered on the application.
    pub client_assertion: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<String>,
    /// Client credentials: `{resource}/.default`; password grant: delegated permissions or `.default`.
    pub scope: String,
    /// Password grant: a directory user's UPN.
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenEndpointAnswer {
    /// `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
    pub ext_expires_in: u64,
    /// An RS256 JWT for Microsoft Graph.
    pub access_token: String,
    /// Password grant: the granted delegated permissions.
    pub scope: Option<String>,
}

/// Entra's error body.
#[derive(Serialize, ToSchema)]
pub struct EntraError {
    pub error: String,
    /// `AADSTS<code>: <message> Trace ID: ... Correlation ID: ... Timestamp: ...`.
    pub error_description: String,
    pub error_codes: Vec<u32>,
    pub timestamp: String,
    pub trace_id: String,
    pub correlation_id: String,
    pub error_uri: String,
}

// ---------------------------------------------------------------------------------------------
// The web console's read endpoints

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    /// The default tenant first, then every tenant holding something, in id order.
    pub value: Vec<TenantSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantSummary {
    pub id: String,
    pub users: u64,
    pub groups: u64,
    pub connections: u64,
    pub items: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantOverview {
    pub tenant: String,
    /// `{id, userPrincipalName, displayName, userType, accountEnabled}`.
    pub users: Vec<Map<String, Value>>,
    /// `{id, displayName, description}`.
    pub groups: Vec<Map<String, Value>>,
    pub connections: Vec<ConnectionOverview>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOverview {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// `draft`, `ready`, `obsolete` or `limitExceeded`.
    pub state: String,
    pub item_count: u64,
    /// Items the connection may still take (its quota and the tenant's).
    pub items_remaining: u64,
    /// `{baseType, properties}` as beta shows it; `null` before a schema is submitted.
    #[schema(required = true)]
    pub schema: Option<Map<String, Value>>,
    /// `{id, status, createdDateTime, error}`, oldest first.
    pub operations: Vec<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsoleItemsPage {
    /// `{id, properties, aclEntries, contentPreview}` in id order.
    pub value: Vec<Map<String, Value>>,
    /// Items the filter keeps.
    pub total: u64,
    pub skip: u64,
    pub top: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ConsoleItem {
    pub id: String,
    pub properties: Map<String, Value>,
    #[schema(required = true)]
    pub content: Option<Map<String, Value>>,
    /// Each entry as beta shows it plus `resolved`: `{kind, found, displayName, description,
    /// members?, userPrincipalName?}`.
    pub acl: Vec<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupGraph {
    /// `{id: "group:<id>" | "externalGroup:<connection>/<id>", kind, groupId, connectionId,
    /// displayName, members: [{kind, id, displayName, node}]}`.
    pub nodes: Vec<Map<String, Value>>,
    /// Node ids of each set of groups that contain themselves through nesting.
    pub cycles: Vec<Vec<String>>,
    /// With `?user=`: `{node, connectionId, via, path}`: how the user is in each group (`via`:
    /// the group one step before, `null` for a direct membership; `path`: the whole chain, user
    /// first, `null` past the answer's budget of 100,000 steps).
    pub chains: Vec<Map<String, Value>>,
    /// Whether some chains have no `path` (the budget ran out).
    #[serde(rename = "chainsTruncated")]
    pub chains_truncated: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HiddenItemsRequest {
    /// The user (userPrincipalName or id).
    pub user: String,
    pub query_string: String,
    /// The connections searched (all of the tenant's when absent).
    #[serde(default)]
    pub connection_ids: Vec<String>,
    /// Items listed at most, 1 to 200 (50 when absent).
    #[serde(default)]
    pub size: u32,
}

#[derive(Serialize, ToSchema)]
pub struct HiddenItems {
    /// `{connectionId, itemId, title, reason}`.
    pub value: Vec<Map<String, Value>>,
    /// Items the query matches that the user may not see.
    pub total: u64,
}
