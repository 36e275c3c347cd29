//! The HTTP contract: checks of a service's OpenAPI 3.1 document, of real responses against
//! it, and of a service's source for routes registered outside it.
//!
//! The documents are generated from the handlers (`#[utoipa::path]`, registered through
//! `utoipa_axum`'s `routes!`), so a route and its operation are one registration; the checks
//! here catch what generation cannot: a route added with plain axum, an operation without its
//! errors or security, an id that is not a UUID, a response that breaks its schema.

use std::path::Path;

use serde_json::{Map, Value, json};

/// The methods an OpenAPI path item may hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation of `doc` as `(method, path template, operation)`.
pub fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                found.push((method.to_owned(), path.clone(), op));
            }
        }
    }
    found
}

/// What is wrong with a service's document; empty when it meets the contract: OpenAPI 3.1,
/// every operation with a unique id, a success response (2xx, or a link's 303) and its errors as problem+json, every
/// path parameter declared, every `/v1` operation behind the bearer scheme (answering 401)
/// unless a signed token in its path is the credential, every reference resolvable, ids UUIDs
/// and `*_at` times RFC 3339 `date-time`, and every schema valid JSON Schema 2020-12.
pub fn problems(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        found.push(format!("openapi is {}, not 3.1.x", doc["openapi"]));
    }
    if doc["info"]["title"].as_str().is_none_or(str::is_empty) {
        found.push("info.title is missing".to_owned());
    }
    if doc["components"]["securitySchemes"]["bearer"]["scheme"] != "bearer" {
        found.push("no bearer security scheme".to_owned());
    }
    let mut ids = std::collections::BTreeSet::new();
    for (method, path, op) in operations(doc) {
        let at = format!("{} {path}", method.to_uppercase());
        match op["operationId"].as_str() {
            Some(id) if !ids.insert(id.to_owned()) => {
                found.push(format!("{at}: operationId {id} is not unique"))
            }
            Some(_) => {}
            None => found.push(format!("{at}: no operationId")),
        }
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        // A link's redirect (303) is its success.
        if !responses.keys().any(|s| s.starts_with('2') || s == "303") {
            found.push(format!("{at}: no success response"));
        }
        for (status, response) in &responses {
            if response["description"].as_str().is_none_or(str::is_empty) {
                found.push(format!("{at} {status}: no description"));
            }
            // Only an endpoint of its own (readiness) answers an error in another shape.
            if status.starts_with('4') && response["content"]["application/problem+json"].is_null()
            {
                found.push(format!("{at} {status}: not application/problem+json"));
            }
        }
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in path_parameters(&path) {
            if !declared.contains(&name) {
                found.push(format!("{at}: path parameter {name} is not declared"));
            }
        }
        let bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if bearer && !responses.contains_key("401") {
            found.push(format!("{at}: behind the bearer scheme but no 401"));
        }
        if path.starts_with("/v1/") && !bearer && !path.contains("{token}") {
            found.push(format!(
                "{at}: neither bearer security nor a token in its path"
            ));
        }
    }
    refs(doc, doc, "#", &mut found);
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            formats(schema, &format!("#/components/schemas/{name}"), &mut found);
            let root = with_components(doc, schema.clone());
            if let Err(e) = jsonschema::draft202012::options().build(&root) {
                found.push(format!("schema {name} does not compile: {e}"));
            }
        }
    }
    found
}

/// The `{name}` parameters of a path template.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn refs(doc: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let resolves = target
                    .strip_prefix('#')
                    .and_then(|pointer| doc.pointer(pointer))
                    .is_some();
                if !resolves {
                    found.push(format!("{at}: $ref {target} does not resolve"));
                }
            }
            for (k, v) in map {
                refs(doc, v, &format!("{at}/{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(doc, v, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Ids are UUID strings and `*_at` times RFC 3339 date-times, however deep in a schema.
fn formats(schema: &Value, at: &str, found: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let expected = if name == "id" || name.ends_with("_id") {
                Some("uuid")
            } else if name.ends_with("_at") || name == "until" || name == "at" {
                Some("date-time")
            } else {
                None
            };
            if let Some(format) = expected
                && property.get("$ref").is_none()
                && property["format"] != format
            {
                found.push(format!("{at}/{name}: format is not {format}"));
            }
        }
    }
    for (k, v) in map {
        match v {
            Value::Object(_) => formats(v, &format!("{at}/{k}"), found),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    formats(item, &format!("{at}/{k}/{i}"), found);
                }
            }
            _ => {}
        }
    }
}

/// `schema` as a standalone JSON Schema whose `#/components/...` references resolve to `doc`'s.
fn with_components(doc: &Value, schema: Value) -> Value {
    let mut root = Map::new();
    root.insert("components".to_owned(), doc["components"].clone());
    root.insert("allOf".to_owned(), json!([schema]));
    Value::Object(root)
}

/// Checks a real response against the schema `doc` gives for it: the operation at `method`
/// and `path` (its template), the `status` (or `default`) and the media type of
/// `content_type` (its parameters ignored).
pub fn validate_response(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), Vec<String>> {
    let op = &doc["paths"][path][method.to_lowercase()];
    if op.is_null() {
        return Err(vec![format!("{method} {path} is not documented")]);
    }
    let responses = &op["responses"];
    let response = match &responses[status.to_string()] {
        Value::Null => &responses["default"],
        r => r,
    };
    if response.is_null() {
        return Err(vec![format!(
            "{method} {path}: status {status} is not documented"
        )]);
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    let schema = &response["content"][media]["schema"];
    if schema.is_null() {
        return Err(vec![format!(
            "{method} {path} {status}: no schema for {media}"
        )]);
    }
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&with_components(doc, schema.clone()))
        .map_err(|e| {
            vec![format!(
                "{method} {path} {status}: schema does not compile: {e}"
            )]
        })?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{method} {path} {status}: {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The documented operations the service at `base` does not route: each is sent without
/// credentials or body, with a fresh UUID for each path parameter (`not-a-signed-token` for a
/// `token`), and answered by the router's fallback (404 "no such resource") or with 405.
pub async fn unrouted(base: &str, doc: &Value) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut found = Vec::new();
    for (method, path, _) in operations(doc) {
        let mut concrete = path.clone();
        for name in path_parameters(&path) {
            let value = if name == "token" {
                "not-a-signed-token".to_owned()
            } else {
                uuid::Uuid::now_v7().to_string()
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &value);
        }
        let Ok(method) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
            continue;
        };
        let res = match client
            .request(method.clone(), format!("{base}{concrete}"))
            .send()
            .await
        {
            Ok(res) => res,
            Err(e) => {
                found.push(format!("{method} {path}: {e}"));
                continue;
            }
        };
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == 405 || (status == 404 && body["detail"] == "no such resource") {
            found.push(format!("{method} {path}: {status}"));
        }
    }
    found
}

/// Where the source under `src` registers a route past `utoipa_axum` (so without a documented
/// operation): `file:line: text` for each plain axum `Router::new()`, `.route(`,
/// `.route_service(`, `.nest_service(` or `axum::routing` outside comments.
pub fn undocumented_routes(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let plain_router = code
                .match_indices("Router::new()")
                .any(|(at, _)| !code[..at].ends_with("OpenApi"));
            let bare = [".route(", ".route_service(", ".nest_service(", "routing::"]
                .iter()
                .any(|p| code.contains(p));
            if plain_router || bare {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Asserts that `service`'s generated document meets the contract and is its committed copy in
/// `proto-events/openapi/`; `manifest_dir` is the service's `CARGO_MANIFEST_DIR`.
pub fn assert_document_is_committed(doc: &Value, manifest_dir: &str, service: &str) {
    assert_eq!(problems(doc), Vec::<String>::new());
    let committed =
        Path::new(manifest_dir).join(format!("../../proto-events/openapi/{service}.json"));
    matches_committed(doc, &committed).unwrap();
}

/// Asserts that the service at `manifest_dir` and the kit register every route through
/// `utoipa_axum`'s `routes!`, so none is missing from `/openapi.json`.
pub fn assert_every_route_documented(manifest_dir: &str) {
    let root = Path::new(manifest_dir);
    let mut found = undocumented_routes(&root.join("src"));
    found.extend(undocumented_routes(&root.join("../../crates/kit/src")));
    assert!(
        found.is_empty(),
        "routes outside utoipa_axum's routes!, so missing from /openapi.json:\n{}",
        found.join("\n")
    );
}

/// Compares `doc` with the committed copy at `file` (`proto-events/openapi/`), so that a change
/// of the public HTTP contract shows in review; with `UPDATE_OPENAPI=1` set, writes it instead.
pub fn matches_committed(doc: &Value, file: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())? + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        return std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()));
    }
    let committed = std::fs::read_to_string(file).unwrap_or_default();
    if committed == text {
        Ok(())
    } else {
        Err(format!(
            "{} differs from the generated document: review the change, then run the test \
             with UPDATE_OPENAPI=1 to write it",
            file.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(op: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/v1/things/{id}": {"get": op}},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {
                    "Problem": {"type": "object"},
                    "Thing": {"type": "object", "required": ["id"], "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "created_at": {"type": "string", "format": "date-time"}
                    }}
                }
            }
        })
    }

    fn good() -> Value {
        json!({
            "operationId": "read",
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": true}],
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Thing"}}}},
                "401": {"description": "no", "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        })
    }

    #[test]
    fn a_complete_document_has_no_problems() {
        assert_eq!(problems(&doc(good())), Vec::<String>::new());
    }

    #[test]
    fn gaps_in_a_document_are_found() {
        let mut op = good();
        op["parameters"] = json!([]);
        op["security"] = json!([]);
        op["responses"]["401"]["content"] = json!({"text/plain": {}});
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] =
            json!("#/components/schemas/Nope");
        let mut d = doc(op);
        d["openapi"] = json!("3.0.3");
        d["components"]["schemas"]["Thing"]["properties"]["created_at"] = json!({"type": "string"});
        let found = problems(&d).join("\n");
        for expected in [
            "not 3.1",
            "path parameter id",
            "not application/problem+json",
            "neither bearer",
            "does not resolve",
            "created_at: format is not date-time",
        ] {
            assert!(found.contains(expected), "{expected} in:\n{found}");
        }
    }

    #[test]
    fn a_response_is_checked_against_its_schema() {
        let d = doc(good());
        let thing = json!({"id": "0190a5c4-1f4e-7000-8000-000000000000"});
        assert_eq!(
            validate_response(
                &d,
                "GET",
                "/v1/things/{id}",
                200,
                "application/json",
                &thing
            ),
            Ok(())
        );
        let bad = json!({"id": "not-a-uuid"});
        assert!(
            validate_response(&d, "GET", "/v1/things/{id}", 200, "application/json", &bad).is_err()
        );
        assert!(
            validate_response(
                &d,
                "GET",
                "/v1/things/{id}",
                404,
                "application/json",
                &thing
            )
            .is_err()
        );
    }

    #[test]
    fn plain_axum_routes_are_found_and_documented_ones_are_not() {
        let dir = std::env::temp_dir().join(format!("openapi-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.rs"),
            "let r = OpenApiRouter::new().routes(routes!(x));\n// .route(\"/old\")\n",
        )
        .unwrap();
        assert!(undocumented_routes(&dir).is_empty());
        std::fs::write(dir.join("b.rs"), "Router::new().route(\"/x\", get(x))\n").unwrap();
        let found = undocumented_routes(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("b.rs:1"), "{found:?}");
    }
}
