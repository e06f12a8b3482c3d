//! The claims a session token's verification reads, borrowed from its payload's JSON text,
//! without building a `serde_json::Value` of every claim.
//!
//! The text is checked as strictly as a `Value` parse would (the same deserializer walks every
//! value, strings unescaped and numbers range-checked, to the same depth), so a payload is
//! refused here exactly when `serde_json::from_str::<Value>` would refuse it; and a claim is
//! read as `Value::get` would read it (escaped names unescaped, the last of a repeated name
//! wins, as with `JSON.parse` in Clerk's SDK).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One claim as the rules read it: absent, a string, a number, or any other JSON value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Claim<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    /// As `Value::as_f64` reads any JSON number.
    Num(f64),
    Other,
}

impl<'a> Claim<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// How `Value::get(name)` on a claims map reads as a [`Claim`].
    pub(crate) fn of(claims: &'a Map<String, Value>, name: &str) -> Self {
        match claims.get(name) {
            None => Self::Absent,
            Some(Value::String(s)) => Self::Str(Cow::Borrowed(s)),
            Some(Value::Number(n)) => n.as_f64().map_or(Self::Other, Self::Num),
            Some(_) => Self::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claim<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Claim<'de>, E> {
                Ok(Claim::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Claim<'de>, E> {
                Ok(Claim::Num(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Claim<'de>, E> {
                Ok(Claim::Num(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Claim<'de>, E> {
                Ok(Claim::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Claim<'de>, E> {
                Ok(Claim::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Claim<'de>, A::Error> {
                Skip::seq(seq).map(|_| Claim::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claim<'de>, A::Error> {
                Skip::map(map).map(|_| Claim::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Any JSON value, walked and checked as a `Value` parse would be, and not kept.
struct Skip;

impl Skip {
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
                Skip::seq(seq)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
                Skip::map(map)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a session token's verification reads from its payload.
#[derive(Debug, Default)]
pub(crate) struct SessionClaims<'a> {
    pub(crate) sub: Claim<'a>,
    pub(crate) sid: Claim<'a>,
    pub(crate) azp: Claim<'a>,
    pub(crate) iss: Claim<'a>,
    pub(crate) sts: Claim<'a>,
    pub(crate) exp: Claim<'a>,
    pub(crate) nbf: Claim<'a>,
    pub(crate) iat: Claim<'a>,
    /// `o` (the active organisation), whole: rare, and read only for its `id`.
    pub(crate) o: Option<Value>,
    /// `act` (the impersonator), whole: the principal keeps it.
    pub(crate) act: Option<Value>,
}

impl<'a> SessionClaims<'a> {
    /// Reads `json`, which must be a JSON object (the error otherwise is serde_json's).
    pub(crate) fn parse(json: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// `o.id`, when the organisation claim is an object with a string `id`.
    pub(crate) fn org_id(&self) -> Option<&str> {
        self.o.as_ref()?.get("id")?.as_str()
    }
}

impl<'de> Deserialize<'de> for SessionClaims<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Name {
            Sub,
            Sid,
            Azp,
            Iss,
            Sts,
            Exp,
            Nbf,
            Iat,
            O,
            Act,
            Other,
        }
        impl<'de> Deserialize<'de> for Name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a claim name")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                        Ok(match v {
                            "sub" => Name::Sub,
                            "sid" => Name::Sid,
                            "azp" => Name::Azp,
                            "iss" => Name::Iss,
                            "sts" => Name::Sts,
                            "exp" => Name::Exp,
                            "nbf" => Name::Nbf,
                            "iat" => Name::Iat,
                            "o" => Name::O,
                            "act" => Name::Act,
                            _ => Name::Other,
                        })
                    }
                }
                d.deserialize_identifier(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionClaims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut c = SessionClaims::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let slot = match name {
                        Name::Sub => &mut c.sub,
                        Name::Sid => &mut c.sid,
                        Name::Azp => &mut c.azp,
                        Name::Iss => &mut c.iss,
                        Name::Sts => &mut c.sts,
                        Name::Exp => &mut c.exp,
                        Name::Nbf => &mut c.nbf,
                        Name::Iat => &mut c.iat,
                        Name::O => {
                            c.o = Some(map.next_value()?);
                            continue;
                        }
                        Name::Act => {
                            c.act = Some(map.next_value()?);
                            continue;
                        }
                        Name::Other => {
                            map.next_value::<Skip>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted and refused exactly as a `Value` parse, and each claim read as `Value::get`.
    #[test]
    fn reads_as_a_value_parse_would() {
        let cases = [
            r#"{"sub":"user_1","sid":"sess_1","exp":1e3,"nbf":-5,"iat":7,"azp":"x","iss":"i","sts":"active"}"#,
            r#"{"s\u0075b":"a\nb","sub":"last","exp":"soon","nbf":null,"iat":[1,{"a":[]}],"o":{"id":"org_1"},"act":{"sub":"u"}}"#,
            r#"{"sub":1,"sid":true,"o":[1],"act":null,"other":{"deep":[1,2,{"x":"y"}]}}"#,
            r#"{"exp":18446744073709551615,"iat":-9223372036854775808,"nbf":0.5}"#,
            r#"{}"#,
            // Refused by both:
            r#"[]"#,
            r#""sub""#,
            r#"{"sub":"a",}"#,
            r#"{"x":1e400}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\q"}"#,
            r#"{"sub":"a"} x"#,
            "{\"x\":\"\u{1}\"}",
        ];
        for json in cases {
            let value = serde_json::from_str::<Value>(json);
            let claims = SessionClaims::parse(json);
            let Ok(Value::Object(map)) = value else {
                assert!(claims.is_err(), "{json} must be refused");
                continue;
            };
            let c = claims.unwrap_or_else(|e| panic!("{json} must be read: {e}"));
            for (name, claim) in [
                ("sub", &c.sub),
                ("sid", &c.sid),
                ("azp", &c.azp),
                ("iss", &c.iss),
                ("sts", &c.sts),
                ("exp", &c.exp),
                ("nbf", &c.nbf),
                ("iat", &c.iat),
            ] {
                assert_eq!(claim, &Claim::of(&map, name), "{name} of {json}");
            }
            assert_eq!(c.o.as_ref(), map.get("o"), "{json}");
            assert_eq!(c.act.as_ref(), map.get("act"), "{json}");
            assert_eq!(
                c.org_id(),
                map.get("o")
                    .and_then(|o| o.get("id"))
                    .and_then(Value::as_str)
            );
        }
    }

    #[test]
    fn nesting_is_bounded_as_in_a_value_parse() {
        for depth in [100, 127, 128, 129, 200] {
            let json = format!(r#"{{"x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                SessionClaims::parse(&json).is_ok(),
                serde_json::from_str::<Value>(&json).is_ok(),
                "depth {depth}"
            );
        }
    }
}
