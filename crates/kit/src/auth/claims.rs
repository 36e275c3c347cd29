//! Reading the role and the subject out of an identity provider's claims, wherever the provider
//! puts them: one rule, applied to every provider token.

use std::{fmt, str::FromStr};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{AuthError, Role};

/// A claim named by a dotted path: `role`, `roles`, `realm_access.roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// A top-level claim.
    pub fn claim(name: &str) -> Self {
        Self(vec![name.to_owned()])
    }

    /// The top-level claim of exactly this name if there is one (namespaced claims such as
    /// `https://slotcast.example/roles` hold dots), else the value down the path.
    pub fn find<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(value) = claims.get(&self.to_string()) {
            return Some(value);
        }
        let (first, rest) = self.0.split_first()?;
        rest.iter()
            .try_fold(claims.get(first)?, |value, step| value.get(step))
    }
}

impl FromStr for ClaimPath {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let steps: Vec<String> = raw.trim().split('.').map(str::to_owned).collect();
        if steps.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "{raw:?} is not a dotted claim path such as realm_access.roles"
            ));
        }
        Ok(Self(steps))
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl Role {
    /// The role a claim value names exactly (`staff`, `practitioner`, `patient`).
    fn named(value: &str) -> Option<Self> {
        match value {
            "staff" => Some(Self::Staff),
            "practitioner" => Some(Self::Practitioner),
            "patient" => Some(Self::Patient),
            _ => None,
        }
    }

    /// Which role wins when a token names several: the one that may do the most.
    fn precedence(self) -> u8 {
        match self {
            Self::Staff => 3,
            Self::Practitioner => 2,
            Self::Patient => 1,
        }
    }
}

/// The caller's role: the claim at `path` is a string or an array of strings; values that are
/// not slotcast roles are ignored, and of several slotcast roles the one that may do the most
/// (staff, then practitioner, then patient) is taken.
pub fn role(claims: &Map<String, Value>, path: &ClaimPath) -> Result<Role, AuthError> {
    let no_role = || AuthError::NoRole {
        claim: path.to_string(),
    };
    let named = |v: &Value| v.as_str().and_then(Role::named);
    match path.find(claims).ok_or_else(no_role)? {
        Value::Array(values) => values
            .iter()
            .filter_map(named)
            .max_by_key(|r| r.precedence())
            .ok_or_else(no_role),
        value => named(value).ok_or_else(no_role),
    }
}

/// The caller's slotcast id: the claim at `path` must be a UUID string, except for staff,
/// whose other subjects get a stable id derived from the issuer and the subject.
pub fn subject(
    claims: &Map<String, Value>,
    path: &ClaimPath,
    role: Role,
) -> Result<Uuid, AuthError> {
    let raw = path
        .find(claims)
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::NoSubject {
            claim: path.to_string(),
        })?;
    match (Uuid::parse_str(raw), role) {
        (Ok(id), _) => Ok(id),
        (Err(_), Role::Staff) => {
            let issuer = claims
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!("{issuer}#{raw}").as_bytes(),
            ))
        }
        (Err(_), _) => Err(AuthError::SubjectNotAnId {
            claim: path.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn path(raw: &str) -> ClaimPath {
        raw.parse().unwrap()
    }

    #[test]
    fn the_role_is_read_from_a_string_or_an_array_at_any_depth() {
        let cases = [
            (json!({"role": "staff"}), "role", Some(Role::Staff)),
            (json!({"role": "patient"}), "role", Some(Role::Patient)),
            (
                json!({"roles": ["practitioner"]}),
                "roles",
                Some(Role::Practitioner),
            ),
            (
                json!({"realm_access": {"roles": ["offline_access", "patient", "uma_authorization"]}}),
                "realm_access.roles",
                Some(Role::Patient),
            ),
            (
                json!({"roles": ["patient", "staff", "practitioner"]}),
                "roles",
                Some(Role::Staff),
            ),
            (
                json!({"roles": ["patient", "practitioner"]}),
                "roles",
                Some(Role::Practitioner),
            ),
            (
                json!({"https://slotcast.example/roles": ["patient"]}),
                "https://slotcast.example/roles",
                Some(Role::Patient),
            ),
            (
                json!({"resource_access": {"slotcast": {"roles": ["staff"]}}}),
                "resource_access.slotcast.roles",
                Some(Role::Staff),
            ),
            (json!({"roles": ["admin", "user"]}), "roles", None),
            (json!({"roles": []}), "roles", None),
            (json!({"role": "Staff"}), "role", None),
            (json!({"role": "admin"}), "role", None),
            (json!({"role": 3}), "role", None),
            (json!({"role": {"name": "staff"}}), "role", None),
            (json!({"roles": [["staff"]]}), "roles", None),
            (json!({"sub": "x"}), "role", None),
            (json!({"realm_access": "staff"}), "realm_access.roles", None),
            (
                json!({"realm_access": {"roles": null}}),
                "realm_access.roles",
                None,
            ),
        ];
        for (value, at, expected) in cases {
            let found = role(&claims(value.clone()), &path(at));
            match expected {
                Some(r) => assert_eq!(found.ok(), Some(r), "{value} at {at}"),
                None => assert!(
                    matches!(found, Err(AuthError::NoRole { .. })),
                    "{value} at {at}: {found:?}"
                ),
            }
        }
    }

    #[test]
    fn patients_and_practitioners_need_a_uuid_subject_and_staff_get_a_stable_one() {
        let id = Uuid::now_v7();
        let with_id = claims(json!({"sub": id.to_string(), "slotcast_id": id.to_string()}));
        for r in [Role::Staff, Role::Practitioner, Role::Patient] {
            assert_eq!(subject(&with_id, &path("sub"), r).ok(), Some(id));
            assert_eq!(subject(&with_id, &path("slotcast_id"), r).ok(), Some(id));
        }
        let opaque = claims(json!({"sub": "auth0|abc", "iss": "https://idp.example/"}));
        for r in [Role::Practitioner, Role::Patient] {
            assert!(matches!(
                subject(&opaque, &path("sub"), r),
                Err(AuthError::SubjectNotAnId { .. })
            ));
        }
        let staff = subject(&opaque, &path("sub"), Role::Staff).unwrap();
        assert_eq!(
            subject(&opaque, &path("sub"), Role::Staff).ok(),
            Some(staff)
        );
        let elsewhere = claims(json!({"sub": "auth0|abc", "iss": "https://other.example/"}));
        assert_ne!(
            subject(&elsewhere, &path("sub"), Role::Staff).ok(),
            Some(staff)
        );
        for missing in [json!({}), json!({"sub": 42}), json!({"sub": null})] {
            assert!(matches!(
                subject(&claims(missing), &path("sub"), Role::Staff),
                Err(AuthError::NoSubject { .. })
            ));
        }
    }

    #[test]
    fn a_claim_path_has_no_empty_step() {
        assert_eq!(path("realm_access.roles").to_string(), "realm_access.roles");
        for bad in ["", ".", "a..b", "roles.", ".roles"] {
            assert!(bad.parse::<ClaimPath>().is_err(), "{bad:?}");
        }
    }
}
