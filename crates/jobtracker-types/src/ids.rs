//! Ids, one type per kind, so an id of one kind cannot be passed where another is expected.
//! Each is checked once, when it is made ([`FromStr`], or deserialised), and is on the wire the
//! string it always was. The API makes its own (`app_`, `res_`, `q_`, `lease_`, `evt_` and 24
//! lowercase hex digits); user and machine ids are Clerk's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not an id of the kind it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError {
    /// The field such ids are sent in, e.g. `resume_id`.
    pub field: &'static str,
    /// What such an id looks like, e.g. `a res_ id`.
    pub expected: &'static str,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} must be {}", self.field, self.expected)
    }
}

impl std::error::Error for IdError {}

/// `prefix` `_` and 24 lowercase hex digits.
fn is_api_id(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// `prefix` and 1 to `max` ASCII letters and digits.
fn is_clerk_id(value: &str, prefix: &str, max: usize) -> bool {
    value.strip_prefix(prefix).is_some_and(|r| {
        (1..=max).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, expected = $expected:literal, pattern = $pattern:literal, check = $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The regular expression the OpenAPI document gives such ids.
            pub const PATTERN: &'static str = $pattern;

            /// `value` if it is such an id.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError {
                        field: $field,
                        expected: $expected,
                    })
                }
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                let _ = Self::parse(&s)?;
                Ok(Self(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A Clerk user id: `user_` and 1 to 64 letters or digits.
    UserId, field = "user_id", expected = "a Clerk user id (user_…)",
    pattern = "^user_[A-Za-z0-9]{1,64}$", check = |v| is_clerk_id(v, "user_", 64)
);
id_type!(
    /// A Clerk machine id: `mch_` and letters or digits, 64 characters at most.
    MachineId, field = "machine_id", expected = "a Clerk machine id (mch_…)",
    pattern = "^mch_[A-Za-z0-9]{1,60}$", check = |v| is_clerk_id(v, "mch_", 60)
);
id_type!(
    /// A job application: `app_` and 24 hex digits.
    ApplicationId, field = "application_id", expected = "a app_ id",
    pattern = "^app_[0-9a-f]{24}$", check = |v| is_api_id(v, "app")
);
id_type!(
    /// A resume: `res_` and 24 hex digits.
    ResumeId, field = "resume_id", expected = "a res_ id",
    pattern = "^res_[0-9a-f]{24}$", check = |v| is_api_id(v, "res")
);
id_type!(
    /// A screening question: `q_` and 24 hex digits.
    QuestionId, field = "question_id", expected = "a q_ id",
    pattern = "^q_[0-9a-f]{24}$", check = |v| is_api_id(v, "q")
);
id_type!(
    /// A claim's fencing token: `lease_` and 24 hex digits.
    LeaseId, field = "lease_id", expected = "a lease_ id",
    pattern = "^lease_[0-9a-f]{24}$", check = |v| is_api_id(v, "lease")
);
id_type!(
    /// An audit event: `evt_` and 24 hex digits.
    EventId, field = "event_id", expected = "a evt_ id",
    pattern = "^evt_[0-9a-f]{24}$", check = |v| is_api_id(v, "evt")
);

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0190a1b2c3d4000001a1b2c3";

    #[test]
    fn api_ids_are_their_prefix_and_24_lowercase_hex_digits() {
        let app = format!("app_{HEX}");
        assert_eq!(ApplicationId::parse(&app).expect("valid").as_str(), app);
        for bad in [
            format!("res_{HEX}"),
            format!("app{HEX}"),
            format!("app_{}", HEX.to_uppercase()),
            format!("app_{HEX}0"),
            format!("app_{}", &HEX[1..]),
            format!(" app_{HEX}"),
            String::new(),
        ] {
            let e = ApplicationId::parse(&bad).expect_err(&bad);
            assert_eq!(e.to_string(), "application_id must be a app_ id");
        }
        assert!(ResumeId::parse(&format!("res_{HEX}")).is_ok());
        assert!(QuestionId::parse(&format!("q_{HEX}")).is_ok());
        assert!(LeaseId::parse(&format!("lease_{HEX}")).is_ok());
        assert!(EventId::parse(&format!("evt_{HEX}")).is_ok());
    }

    #[test]
    fn clerk_ids_are_their_prefix_and_letters_or_digits() {
        assert!(UserId::parse("user_2DemoAliceCandidate00000000").is_ok());
        assert!(UserId::parse(&format!("user_{}", "a".repeat(64))).is_ok());
        for bad in ["user_", "user_a-b", "usr_abc", "user_é"] {
            let e = UserId::parse(bad).expect_err(bad);
            assert_eq!(e.to_string(), "user_id must be a Clerk user id (user_…)");
        }
        assert!(UserId::parse(&format!("user_{}", "a".repeat(65))).is_err());
        assert!(MachineId::parse("mch_2JobApplierBot0000000000000").is_ok());
        assert!(MachineId::parse(&format!("mch_{}", "a".repeat(60))).is_ok());
        assert!(MachineId::parse(&format!("mch_{}", "a".repeat(61))).is_err());
        assert!(MachineId::parse("mch_").is_err());
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire_and_checked_when_read() {
        let id = ResumeId::parse(&format!("res_{HEX}")).expect("valid");
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(json, format!("\"res_{HEX}\""));
        assert_eq!(serde_json::from_str::<ResumeId>(&json).expect("reads"), id);
        let wrong = serde_json::from_str::<ApplicationId>(&json).expect_err("not an app_ id");
        assert!(
            wrong
                .to_string()
                .contains("application_id must be a app_ id")
        );
    }

    /// Whether a string parses as one kind of id.
    type Check = fn(&str) -> bool;

    /// The patterns the OpenAPI document states accept exactly what `parse` does.
    #[test]
    fn the_patterns_match_the_checks() {
        let samples = [
            format!("app_{HEX}"),
            format!("res_{HEX}"),
            format!("q_{HEX}"),
            format!("lease_{HEX}"),
            format!("evt_{HEX}"),
            format!("app_{}", HEX.to_uppercase()),
            "user_2DemoAlice".into(),
            format!("user_{}", "a".repeat(65)),
            "mch_2Bot".into(),
            format!("mch_{}", "b".repeat(61)),
            "user_".into(),
        ];
        let checks: [(&str, Check); 7] = [
            (ApplicationId::PATTERN, |s| ApplicationId::parse(s).is_ok()),
            (ResumeId::PATTERN, |s| ResumeId::parse(s).is_ok()),
            (QuestionId::PATTERN, |s| QuestionId::parse(s).is_ok()),
            (LeaseId::PATTERN, |s| LeaseId::parse(s).is_ok()),
            (EventId::PATTERN, |s| EventId::parse(s).is_ok()),
            (UserId::PATTERN, |s| UserId::parse(s).is_ok()),
            (MachineId::PATTERN, |s| MachineId::parse(s).is_ok()),
        ];
        for (pattern, check) in checks {
            let re = regex::Regex::new(pattern).expect("a regular expression");
            for s in &samples {
                assert_eq!(re.is_match(s), check(s), "{pattern} on {s}");
            }
        }
    }
}
