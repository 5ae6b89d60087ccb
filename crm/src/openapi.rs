//! The OpenAPI 3 document of `/api/v1`, generated from the handlers.
//!
//! Handlers declare their success responses; the error answers every data
//! endpoint can give (RFC 7807 problems) and the bearer security scheme are
//! added here once, so the spec cannot forget one.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api::*;
use crate::error::{FieldError, Problem};
use crate::model::*;

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Aula CRM API", description = "The operational CRM of an education business: courses, campaigns, \
        leads, students, enrollments and payments. Every change is published to the `crm.events` topic."),
    paths(
        create_course, list_courses, get_course, update_course,
        create_campaign, list_campaigns, get_campaign, update_campaign,
        create_lead, list_leads, get_lead, update_lead, set_lead_status, convert_lead,
        create_student, list_students, get_student, update_student,
        create_enrollment, list_enrollments, get_enrollment, update_enrollment, complete_enrollment, cancel_enrollment,
        create_payment, list_payments, get_payment, update_payment, succeed_payment, fail_payment, refund_payment,
    ),
    components(schemas(Problem, FieldError, Channel, LeadSource, LeadStatus, EnrollmentStatus, Provider, PaymentStatus)),
    modifiers(&ProblemsAndSecurity),
)]
pub struct ApiDoc;

struct ProblemsAndSecurity;

impl Modify for ProblemsAndSecurity {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let has_id = path.contains("{id}");
            let ops = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.put.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (writes, op) in ops {
                let Some(op) = op else { continue };
                let r = &mut op.responses.responses;
                let mut add = |code: &str, description: &str| {
                    r.entry(code.to_owned())
                        .or_insert_with(|| problem(description));
                };
                add("401", "No valid bearer token");
                add("403", "The token's roles do not allow this");
                add(
                    "422",
                    "Invalid request: every invalid field is named in `errors`",
                );
                add("503", "The database is unreachable; retry later");
                if has_id {
                    add("404", "No such entity");
                }
                if writes {
                    add("409", "Conflicts with a unique key or the entity's state");
                    add("413", "Request body too large");
                }
            }
        }
    }
}

/// The document as JSON, built once.
pub fn spec_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_names_every_endpoint_and_problem() {
        let spec: serde_json::Value = serde_json::from_str(super::spec_json()).expect("json");
        let paths = spec["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), 19);
        let get_lead = &spec["paths"]["/api/v1/leads/{id}"]["get"]["responses"];
        for code in ["200", "401", "403", "404", "422"] {
            assert!(get_lead.get(code).is_some(), "missing {code}");
        }
        assert!(spec["components"]["schemas"]["Lead"].is_object());
        assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    }
}
