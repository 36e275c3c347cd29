//! The OpenAPI 3.1 document of a service's HTTP API, generated from its handlers.
//!
//! Every route is registered through `utoipa_axum`'s `OpenApiRouter` and `routes!`, so the
//! router and the document come from the same `#[utoipa::path]` annotations. This module gives
//! the document's frame ([`document`]: title, the bearer scheme, the [`Problem`] schema), the
//! problem+json responses operations list (the structs below, used in `responses(...)`), and
//! [`router`], which serves the document at `/openapi.json` and a Swagger UI at `/docs`.

use std::collections::BTreeMap;

use axum::Router;
use utoipa::{
    IntoResponses, PartialSchema, ToSchema,
    openapi::{
        ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
        header::HeaderBuilder,
        response::{Response, ResponseBuilder},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::Problem;

/// The name of the bearer JWT security scheme, for `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// Where the Swagger UI is served (its files are compiled in, so it works offline).
pub const UI_PATH: &str = "/docs";

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An empty document for a service: its title and description, the bearer scheme and the
/// problem schema. Operations are added by merging the service's `OpenApiRouter`s into it.
pub fn document(title: &str, description: &str) -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A JWT with `sub` (a UUID), `role` (`staff`, `practitioner` or `patient`), `exp`",
        ))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(BEARER, SecurityScheme::Http(bearer))
                .schema(Problem::name(), Problem::schema())
                .build(),
        ))
        .build()
}

/// Gives `part` its state and splits it: returns its routes and adds its operations to `doc`.
pub fn split<S>(doc: &mut OpenApi, part: OpenApiRouter<S>, state: S) -> Router
where
    S: Clone + Send + Sync + 'static,
{
    let (router, operations) = part.with_state(state).split_for_parts();
    doc.merge(operations);
    router
}

/// [`split`] with the abuse limits enforced on `part`'s routes, and their 429 answer added to
/// `part`'s operations, so that the document says what the router does.
pub fn split_limited<S>(
    doc: &mut OpenApi,
    part: OpenApiRouter<S>,
    state: S,
    limits: &crate::limits::Limits,
) -> Router
where
    S: Clone + Send + Sync + 'static,
{
    let (router, operations) = part.with_state(state).split_for_parts();
    doc.merge(limited(operations));
    crate::limits::guard(router, limits.clone())
}

/// `operations` with the abuse limits' 429 answer added to each (see [`split_limited`]).
pub fn limited(mut operations: OpenApi) -> OpenApi {
    for item in operations.paths.paths.values_mut() {
        let methods = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in methods.into_iter().flatten() {
            operation
                .responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(too_many_requests);
        }
    }
    operations
}

/// 429 with `Retry-After` (`crate::limits`).
fn too_many_requests() -> RefOr<Response> {
    let retry_after = HeaderBuilder::new()
        .schema(Some(u64::schema()))
        .description(Some(
            "Seconds until the client address is back under the limit",
        ))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description("Too many failed authentications or link requests from this address")
            .content(PROBLEM_JSON, problem_content())
            .header("Retry-After", retry_after)
            .build(),
    )
}

/// `GET /openapi.json` with `doc`, and the Swagger UI at `/docs` reading it.
pub fn router(doc: OpenApi) -> Router {
    SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, doc).into()
}

fn problem_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(Problem::name())))
        .build()
}

/// A problem+json response; with `page`, also the HTML page a browser is shown instead.
fn problem_response(description: &str, page: bool) -> RefOr<Response> {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, problem_content());
    if page {
        response = response.content(
            "text/html",
            ContentBuilder::new().schema(Some(String::schema())).build(),
        );
    }
    RefOr::T(response.build())
}

macro_rules! problem_responses {
    ($page:literal: $($(#[$doc:meta])* $name:ident => $status:literal, $description:literal;)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_owned(), problem_response($description, $page))])
                }
            }
        )+
    };
}

problem_responses! { false:
    /// 400: a malformed path segment (an id that is not a UUID), query or body.
    BadRequest => "400", "A malformed path segment, query or body";
    /// 401: no bearer token, or one that is invalid or expired.
    Unauthorized => "401", "No valid bearer token";
    /// 403: the caller's role or identity may not do this.
    Forbidden => "403", "The caller may not do this";
    /// 404: no such resource (or one the caller may not see).
    NotFound => "404", "No such resource";
    /// 409: the state of the resource does not allow it.
    Conflict => "409", "The current state does not allow it";
    /// 422: the body is well-formed but its values are refused.
    Unprocessable => "422", "The values are refused";
}

/// The answers of a JSON body that cannot be read: 400 (syntax), 413 (too large), 415 (not
/// `application/json`) and 422 (wrong shape or values).
pub struct JsonBody;

impl IntoResponses for JsonBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".to_owned(),
                problem_response("The body is not JSON", false),
            ),
            (
                "413".to_owned(),
                problem_response("The body is too large", false),
            ),
            (
                "415".to_owned(),
                problem_response("The body is not `application/json`", false),
            ),
            (
                "422".to_owned(),
                problem_response("The body's shape or values are refused", false),
            ),
        ])
    }
}

/// The answers of a server that cannot serve: 500 (unexpected; the detail says nothing) and 503
/// (the database is unreachable; retry later).
pub struct ServerErrors;

impl IntoResponses for ServerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "500".to_owned(),
                problem_response("An unexpected error", false),
            ),
            (
                "503".to_owned(),
                problem_response("A dependency is unavailable; retry later", false),
            ),
        ])
    }
}

/// The errors of a link opened in a browser or by a program: problem+json, or an HTML page with
/// the same status when the request accepts `text/html`.
pub mod page {
    use super::*;

    problem_responses! { true:
        /// 401: the link's token is not valid.
        Unauthorized => "401", "The link is not valid";
        /// 404: what the link names no longer exists.
        NotFound => "404", "What the link names no longer exists";
        /// 409: what the link offers is no longer available.
        Conflict => "409", "No longer available";
        /// 410: the link has expired.
        Gone => "410", "The link has expired";
        /// 422: the request is refused (a slot the link does not offer, a bad form).
        Unprocessable => "422", "The request is refused";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_openapi_3_1_with_the_bearer_scheme_and_the_problem_schema() {
        let doc = serde_json::to_value(document("t", "d")).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let problem = &doc["components"]["schemas"]["Problem"];
        assert_eq!(problem["type"], "object", "{problem}");
        assert!(problem["properties"]["status"].is_object(), "{problem}");
        let four_o_one = serde_json::to_value(Unauthorized::responses()).unwrap();
        assert_eq!(
            four_o_one["401"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
}
