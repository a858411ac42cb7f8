//! `GET /v1/openapi.json`: an OpenAPI 3.1 document generated from the same registry the routes
//! serve, one schema per entity with each field's JSON type and its classification
//! (`x-udl-sensitivity`), so clients can be generated and reviewers see where PHI flows.

use serde_json::{json, Map, Value as Json};
use udl::{EntityMeta, Sensitivity, ValueKind};

use crate::json_record::json_shape;

/// The document for `entities`.
pub fn document(entities: &[&'static EntityMeta]) -> Json {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Problem".into(), problem_schema());
    schemas.insert("Filter".into(), json!({
        "type": "object",
        "description": "Field conditions ANDed: {\"field\": {\"eq\"|\"ne\"|\"lt\"|\"lte\"|\"gt\"|\"gte\": value, \"in\": [values], \"is_null\": bool, \"prefix\": text}}, with $and/$or (lists) and $not.",
    }));
    for entity in entities {
        schemas.insert(entity.name.to_owned(), entity_schema(entity));
        entity_paths(entity, &mut paths);
    }
    paths.extend(crate::services::openapi_paths());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "udl gateway",
            "version": "1",
            "description": "Every call needs a service credential (client certificate or x-udl-service-token), an end-user JWT (Authorization: Bearer) and x-udl-purpose; PHI and PII access is checked against consent and audited.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "serviceToken": {"type": "apiKey", "in": "header", "name": "x-udl-service-token"},
                "endUser": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "serviceCertificate": {"type": "mutualTLS"},
            },
            "parameters": parameters(),
        },
        "security": [{"serviceToken": [], "endUser": []}, {"serviceCertificate": [], "endUser": []}],
    })
}

fn parameters() -> Json {
    let header = |name: &str, required: bool, description: &str| {
        json!({"name": name, "in": "header", "required": required,
               "schema": {"type": "string"}, "description": description})
    };
    json!({
        "purpose": header("x-udl-purpose", true, "Purpose of use: treatment, payment, operations, patient_request, research, emergency, system."),
        "role": header("x-udl-role", false, "One of the token's roles, when it has several."),
        "patient": header("x-udl-patient", false, "The patient whose data the request concerns."),
        "requestId": header("x-request-id", false, "Correlation id, recorded in the audit log."),
        "idempotencyKey": header("idempotency-key", false, "Makes a write safe to retry."),
    })
}

fn common_parameters() -> Vec<Json> {
    ["purpose", "role", "patient", "requestId", "idempotencyKey"]
        .iter()
        .map(|p| json!({"$ref": format!("#/components/parameters/{p}")}))
        .collect()
}

fn field_schema(kind: ValueKind, nullable: bool) -> Json {
    let mut schema = match kind {
        ValueKind::Bool => json!({"type": "boolean"}),
        ValueKind::Int => json!({"type": "integer", "format": "int64"}),
        ValueKind::Float => json!({"type": "number", "format": "double"}),
        ValueKind::Text => json!({"type": "string"}),
        ValueKind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        ValueKind::Uuid => json!({"type": "string", "format": "uuid"}),
        ValueKind::Timestamp => json!({"type": "string", "format": "date-time"}),
        ValueKind::Date => json!({"type": "string", "format": "date"}),
        ValueKind::Json => json!({}),
        ValueKind::Vector => {
            json!({"type": "array", "items": {"type": "number", "format": "float"}})
        }
    };
    if nullable && kind != ValueKind::Json {
        let base = schema["type"].clone();
        schema["type"] = json!([base, "null"]);
    }
    schema
}

fn sensitivity(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Public => "public",
        Sensitivity::Internal => "internal",
        Sensitivity::Pii => "pii",
        Sensitivity::Phi => "phi",
    }
}

fn entity_schema(entity: &EntityMeta) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in entity.fields {
        let mut schema = field_schema(field.kind, field.nullable);
        schema["description"] = json!(json_shape(field.kind));
        schema["x-udl-sensitivity"] = json!(sensitivity(field.sensitivity));
        if field.name == entity.id_field {
            schema["x-udl-id"] = json!(true);
        }
        if Some(field.name) == entity.version_field {
            schema["x-udl-version"] = json!(true);
            schema["readOnly"] = json!(true);
        }
        properties.insert(field.name.to_owned(), schema);
        if !field.nullable {
            required.push(field.name);
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required,
        "x-udl-store": entity.store.map(|s| s.name()),
    })
}

fn problem_schema() -> Json {
    json!({
        "type": "object",
        "description": "RFC 9457 problem; never carries a value from the request or a store.",
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "kind": {"type": "string"}, "detail": {"type": "string"},
        },
    })
}

fn problems() -> Json {
    let problem = json!({"description": "Refused or failed", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    json!({ "default": problem })
}

fn op(operation_id: String, summary: String, body: Option<Json>, ok: (&str, Json)) -> Json {
    let mut responses = problems();
    responses[ok.0] = ok.1;
    let mut o = json!({
        "operationId": operation_id,
        "summary": summary,
        "parameters": common_parameters(),
        "responses": responses,
    });
    if let Some(schema) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    o
}

fn entity_paths(entity: &EntityMeta, paths: &mut Map<String, Json>) {
    let name = entity.name;
    let record = json!({"$ref": format!("#/components/schemas/{name}")});
    let ok_record =
        json!({"description": "The record", "content": {"application/json": {"schema": record}}});
    let no_content = json!({"description": "Done"});
    let mut by_id = json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "get": op(format!("get_{name}"), format!("Read one {name}"), None, ("200", ok_record)),
        "put": op(format!("replace_{name}"), format!("Replace one {name} (If-Match: its ETag)"), Some(record.clone()), ("204", no_content.clone())),
        "patch": op(format!("update_{name}"), format!("Set fields of one {name} (If-Match: its ETag)"), Some(json!({"type": "object"})), ("204", no_content.clone())),
        "delete": op(format!("delete_{name}"), format!("Delete one {name}"), None, ("204", no_content)),
    });
    if entity.version_field.is_some() {
        for method in ["put", "patch"] {
            if let Some(params) = by_id[method]["parameters"].as_array_mut() {
                params.push(json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}}));
            }
        }
    }
    paths.insert(format!("/v1/{name}/{{id}}"), by_id);
    let created = json!({"description": "Created", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {}}}}}});
    paths.insert(format!("/v1/{name}"), json!({
        "post": op(format!("create_{name}"), format!("Create one {name}"), Some(record.clone()), ("201", created)),
    }));
    let filter = json!({"$ref": "#/components/schemas/Filter"});
    let list_body = json!({"type": "object", "properties": {
        "filter": filter, "sort": {"type": "array", "items": {"type": "string"}, "description": "Field names; a leading - sorts descending."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000}, "cursor": {"type": ["string", "null"]}}});
    let page = json!({"description": "One page", "content": {"application/json": {"schema": {"type": "object", "properties": {
        "items": {"type": "array", "items": record}, "next": {"type": ["string", "null"]}}}}}});
    paths.insert(format!("/v1/{name}:list"), json!({
        "post": op(format!("list_{name}"), format!("List {name}"), Some(list_body), ("200", page)),
    }));
    let count = json!({"description": "How many", "content": {"application/json": {"schema": {"type": "object", "properties": {"count": {"type": "integer"}}}}}});
    paths.insert(format!("/v1/{name}:count"), json!({
        "post": op(format!("count_{name}"), format!("Count {name}"), Some(json!({"type": "object", "properties": {"filter": filter}})), ("200", count)),
    }));
    if entity.fields.iter().any(|f| f.kind == ValueKind::Vector) {
        let body = json!({"type": "object", "required": ["field", "vector"], "properties": {
            "field": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}},
            "k": {"type": "integer", "minimum": 1, "maximum": 1000}, "filter": filter}});
        let found = json!({"description": "Most similar first", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"record": record, "score": {"type": "number"}}}}}}}}});
        paths.insert(format!("/v1/{name}:nearest"), json!({
            "post": op(format!("nearest_{name}"), format!("Similarity search over {name}"), Some(body), ("200", found)),
        }));
    }
}
