//! Clerk's machines API (`/machines*`, instance secret key): machines, their scopes and their
//! secret keys, typed as in Clerk's Backend API spec (2026-05-12). Feature `admin`.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::client::{ClerkClient, Operation};
use super::error::{ClerkError, ClerkErrorBody, ClerkErrorItem};

/// Longest grace Clerk allows for a rotated-out key (`previous_token_ttl`, 8 hours).
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(28_800);

/// Longest `default_token_ttl` Clerk accepts (10 years, in seconds).
pub const MAX_DEFAULT_TOKEN_TTL: u64 = 315_360_000;

/// Most scopes one machine may have.
pub const MAX_SCOPES: usize = 150;

/// Largest page `GET /machines` serves.
const PAGE_LIMIT: u32 = 500;

/// Pages [`MachineAdmin::list_all`] reads at most (200 × 500 machines): a server that keeps
/// answering full pages cannot keep the client looping.
const MAX_PAGES: u32 = 200;

/// A machine as `GET /machines/{id}` describes it. Timestamps are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `mch_…`
    pub id: String,
    /// Its name (1–255 characters); [`MachineAdmin`] users match machines by it.
    pub name: String,
    /// `ins_…`
    pub instance_id: String,
    /// When it was created.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
    /// Lifetime, seconds, of the tokens it creates without asking for one.
    #[serde(default = "default_ttl")]
    pub default_token_ttl: u64,
    /// The machines it may call (its scopes, from this machine to them).
    #[serde(default, deserialize_with = "null_as_default")]
    pub scoped_machines: Vec<ScopedMachine>,
}

impl Machine {
    /// The ids of [`Machine::scoped_machines`].
    pub fn scoped_ids(&self) -> impl Iterator<Item = &str> {
        self.scoped_machines.iter().map(|m| m.id.as_str())
    }
}

/// A machine inside another's `scoped_machines` (no scopes of its own listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedMachine {
    /// `mch_…`
    pub id: String,
    /// Its name.
    pub name: String,
    /// `ins_…`
    #[serde(default)]
    pub instance_id: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: i64,
    /// When it was last changed.
    #[serde(default)]
    pub updated_at: i64,
    /// Lifetime, seconds, of its tokens by default.
    #[serde(default = "default_ttl")]
    pub default_token_ttl: u64,
}

fn default_ttl() -> u64 {
    3600
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `POST /machines`' answer: the machine and its secret key, which Clerk shows only here.
#[derive(Clone, Deserialize)]
pub struct CreatedMachine {
    /// The machine.
    #[serde(flatten)]
    pub machine: Machine,
    /// Its secret key, `ak_…`.
    #[serde(deserialize_with = "secret")]
    pub secret_key: SecretString,
}

impl fmt::Debug for CreatedMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedMachine")
            .field("machine", &self.machine)
            .field("secret_key", &"[REDACTED]")
            .finish()
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

/// `{"object":"machine_secret_key","secret":"ak_…"}`.
#[derive(Deserialize)]
struct SecretKeyBody {
    #[serde(deserialize_with = "secret")]
    secret: SecretString,
}

/// One page of `GET /machines`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MachineList {
    /// The machines on this page.
    pub data: Vec<Machine>,
    /// Machines matching the query in all.
    pub total_count: u64,
}

/// A scope from one machine to another (`POST /machines/{id}/scopes`, and its deletion).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MachineScope {
    /// The machine that may call.
    pub from_machine_id: String,
    /// The machine it may call.
    pub to_machine_id: String,
    /// When it was created (absent on deletion).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Whether this answers a deletion.
    #[serde(default)]
    pub deleted: bool,
}

/// `DELETE /machines/{id}`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeletedMachine {
    /// The deleted machine.
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Order of `GET /machines` (`order_by`); Clerk's default is [`MachineOrder::NewestFirst`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineOrder {
    /// `+name`
    NameAscending,
    /// `-name`
    NameDescending,
    /// `+created_at`
    OldestFirst,
    /// `-created_at`
    NewestFirst,
}

impl MachineOrder {
    /// The `order_by` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameAscending => "+name",
            Self::NameDescending => "-name",
            Self::OldestFirst => "+created_at",
            Self::NewestFirst => "-created_at",
        }
    }
}

/// Query of `GET /machines`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMachinesQuery {
    /// Page size, 1–500 (Clerk's default 10).
    pub limit: Option<u32>,
    /// Machines to skip.
    pub offset: Option<u64>,
    /// Exact machine id, or part of a name.
    pub query: Option<String>,
    /// Order (Clerk's default newest first).
    pub order_by: Option<MachineOrder>,
}

/// Body of `POST /machines`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateMachineRequest {
    /// 1–255 characters.
    pub name: String,
    /// The machines it may call (at most 150).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scoped_machines: Vec<String>,
    /// Seconds, 1–315,360,000; Clerk's default 3600.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_token_ttl: Option<u64>,
}

/// Body of `PATCH /machines/{id}`; only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateMachineRequest {
    /// A new name, 1–255 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new default token lifetime, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_token_ttl: Option<u64>,
}

/// Clerk's machines API with the instance secret key (`sk_…`). Cheap to clone.
///
/// Calls follow [`ClerkClient`]'s timeout and retry rules, except that creating a machine and
/// rotating a key are retried only after a 429: after a timeout or a 5xx the first attempt may
/// have happened, and a second would make a duplicate machine or lose the new key.
#[derive(Clone)]
pub struct MachineAdmin {
    clerk: ClerkClient,
    key: SecretString,
}

impl fmt::Debug for MachineAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineAdmin")
            .field("clerk", &self.clerk)
            .finish_non_exhaustive()
    }
}

/// A request refused before it is sent, shaped like Clerk's own 422.
fn invalid(param: &str, message: String) -> ClerkError {
    ClerkError::BadRequest {
        status: 422,
        body: ClerkErrorBody {
            errors: vec![ClerkErrorItem {
                code: "form_param_value_invalid".into(),
                message,
                long_message: None,
                meta: Some(json!({ "param_name": param })),
            }],
            clerk_trace_id: None,
        },
    }
}

/// Machine ids go into the URL path: only `mch_` and letters or digits, so no id can reach
/// another route (`mch_x/secret_key`, `..`).
fn check_id(param: &str, id: &str) -> Result<(), ClerkError> {
    let ok = id.strip_prefix("mch_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            param,
            format!("{param} must be mch_ followed by letters or digits, got {id:?}"),
        ))
    }
}

fn check_name(name: &str) -> Result<(), ClerkError> {
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("name", "name must be 1 to 255 characters".into()));
    }
    Ok(())
}

fn check_ttl(ttl: Option<u64>) -> Result<(), ClerkError> {
    match ttl {
        Some(t) if !(1..=MAX_DEFAULT_TOKEN_TTL).contains(&t) => Err(invalid(
            "default_token_ttl",
            format!("default_token_ttl must be between 1 and {MAX_DEFAULT_TOKEN_TTL}"),
        )),
        _ => Ok(()),
    }
}

impl MachineAdmin {
    /// Uses `clerk` with the instance secret key.
    pub fn new(clerk: ClerkClient, instance_secret_key: SecretString) -> Self {
        Self {
            clerk,
            key: instance_secret_key,
        }
    }

    /// The underlying client.
    pub fn clerk(&self) -> &ClerkClient {
        &self.clerk
    }

    /// `GET /machines`: one page.
    pub async fn list(&self, query: &ListMachinesQuery) -> Result<MachineList, ClerkError> {
        if let Some(l) = query.limit
            && !(1..=PAGE_LIMIT).contains(&l)
        {
            return Err(invalid(
                "limit",
                format!("limit must be between 1 and {PAGE_LIMIT}"),
            ));
        }
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(l) = query.limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(o) = query.offset {
            params.push(("offset", o.to_string()));
        }
        if let Some(q) = &query.query {
            params.push(("query", q.clone()));
        }
        if let Some(o) = query.order_by {
            params.push(("order_by", o.as_str().to_owned()));
        }
        self.clerk
            .call(
                Operation::ListMachines,
                Method::GET,
                "/machines",
                &self.key,
                |b| b.query(&params),
            )
            .await
            .map(|(l, _)| l)
    }

    /// Every machine of the instance, oldest first: pages of 500 until `total_count` is read.
    /// Oldest first so a machine created meanwhile lands on a later page instead of shifting
    /// the ones not yet read; a machine seen twice is kept once.
    pub async fn list_all(&self) -> Result<Vec<Machine>, ClerkError> {
        let mut all: Vec<Machine> = Vec::new();
        let mut offset = 0u64;
        for _ in 0..MAX_PAGES {
            let page = self
                .list(&ListMachinesQuery {
                    limit: Some(PAGE_LIMIT),
                    offset: Some(offset),
                    query: None,
                    order_by: Some(MachineOrder::OldestFirst),
                })
                .await?;
            let n = page.data.len() as u64;
            for m in page.data {
                if !all.iter().any(|seen| seen.id == m.id) {
                    all.push(m);
                }
            }
            offset += n;
            if n == 0 || offset >= page.total_count {
                return Ok(all);
            }
        }
        Err(ClerkError::Unexpected {
            status: None,
            message: format!(
                "GET /machines kept answering full pages past {} machines",
                u64::from(MAX_PAGES) * u64::from(PAGE_LIMIT)
            ),
        })
    }

    /// `GET /machines/{id}`.
    pub async fn get(&self, machine_id: &str) -> Result<Machine, ClerkError> {
        check_id("machine_id", machine_id)?;
        let path = format!("/machines/{machine_id}");
        self.clerk
            .call(Operation::GetMachine, Method::GET, &path, &self.key, |b| b)
            .await
            .map(|(m, _)| m)
    }

    /// `POST /machines`. The answer holds the new machine's secret key (shown only once).
    pub async fn create(
        &self,
        request: &CreateMachineRequest,
    ) -> Result<CreatedMachine, ClerkError> {
        check_name(&request.name)?;
        check_ttl(request.default_token_ttl)?;
        if request.scoped_machines.len() > MAX_SCOPES {
            return Err(invalid(
                "scoped_machines",
                format!("at most {MAX_SCOPES} scoped machines"),
            ));
        }
        for id in &request.scoped_machines {
            check_id("scoped_machines", id)?;
        }
        self.clerk
            .call(
                Operation::CreateMachine,
                Method::POST,
                "/machines",
                &self.key,
                |b| b.json(request),
            )
            .await
            .map(|(m, _)| m)
    }

    /// `PATCH /machines/{id}`.
    pub async fn update(
        &self,
        machine_id: &str,
        request: &UpdateMachineRequest,
    ) -> Result<Machine, ClerkError> {
        check_id("machine_id", machine_id)?;
        if let Some(n) = &request.name {
            check_name(n)?;
        }
        check_ttl(request.default_token_ttl)?;
        let path = format!("/machines/{machine_id}");
        self.clerk
            .call(
                Operation::UpdateMachine,
                Method::PATCH,
                &path,
                &self.key,
                |b| b.json(request),
            )
            .await
            .map(|(m, _)| m)
    }

    /// `DELETE /machines/{id}`.
    pub async fn delete(&self, machine_id: &str) -> Result<DeletedMachine, ClerkError> {
        check_id("machine_id", machine_id)?;
        let path = format!("/machines/{machine_id}");
        self.clerk
            .call(
                Operation::DeleteMachine,
                Method::DELETE,
                &path,
                &self.key,
                |b| b,
            )
            .await
            .map(|(m, _)| m)
    }

    /// `POST /machines/{from}/scopes`: `from` may call `to` from now on. Clerk answers 409
    /// (`ClerkError::BadRequest { status: 409, .. }`) if the scope exists.
    pub async fn add_scope(&self, from: &str, to: &str) -> Result<MachineScope, ClerkError> {
        check_id("machine_id", from)?;
        check_id("to_machine_id", to)?;
        let path = format!("/machines/{from}/scopes");
        let body = json!({ "to_machine_id": to });
        self.clerk
            .call(
                Operation::CreateMachineScope,
                Method::POST,
                &path,
                &self.key,
                |b| b.json(&body),
            )
            .await
            .map(|(s, _)| s)
    }

    /// `DELETE /machines/{from}/scopes/{to}`: tokens `from` creates afterwards are not valid
    /// for `to`; tokens already issued keep their scopes until they expire or are revoked.
    pub async fn remove_scope(&self, from: &str, to: &str) -> Result<MachineScope, ClerkError> {
        check_id("machine_id", from)?;
        check_id("other_machine_id", to)?;
        let path = format!("/machines/{from}/scopes/{to}");
        self.clerk
            .call(
                Operation::DeleteMachineScope,
                Method::DELETE,
                &path,
                &self.key,
                |b| b,
            )
            .await
            .map(|(s, _)| s)
    }

    /// `GET /machines/{id}/secret_key`.
    pub async fn secret_key(&self, machine_id: &str) -> Result<SecretString, ClerkError> {
        check_id("machine_id", machine_id)?;
        let path = format!("/machines/{machine_id}/secret_key");
        self.clerk
            .call(
                Operation::GetMachineSecretKey,
                Method::GET,
                &path,
                &self.key,
                |b| b,
            )
            .await
            .map(|(k, _): (SecretKeyBody, _)| k.secret)
    }

    /// `POST /machines/{id}/secret_key/rotate`: a new key; the old one keeps working for
    /// `grace` (whole seconds, 0 to 8 hours; 0 ends it at once).
    pub async fn rotate_secret_key(
        &self,
        machine_id: &str,
        grace: Duration,
    ) -> Result<SecretString, ClerkError> {
        check_id("machine_id", machine_id)?;
        if grace > MAX_ROTATION_GRACE || grace.subsec_nanos() != 0 {
            return Err(invalid(
                "previous_token_ttl",
                format!(
                    "previous_token_ttl must be whole seconds between 0 and {}, got {grace:?}",
                    MAX_ROTATION_GRACE.as_secs()
                ),
            ));
        }
        let path = format!("/machines/{machine_id}/secret_key/rotate");
        let body = json!({ "previous_token_ttl": grace.as_secs() });
        self.clerk
            .call(
                Operation::RotateMachineSecretKey,
                Method::POST,
                &path,
                &self.key,
                |b| b.json(&body),
            )
            .await
            .map(|(k, _): (SecretKeyBody, _)| k.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_reach_another_route_are_refused() {
        for bad in [
            "",
            "mch_",
            "abc",
            "mch_a/secret_key",
            "mch_..",
            "mch_a?x=1",
            "mch_a b",
        ] {
            assert!(check_id("machine_id", bad).is_err(), "{bad:?}");
        }
        assert!(check_id("machine_id", "mch_2JobTrackerApi0000000000000").is_ok());
    }

    #[test]
    fn created_machine_debug_hides_the_key() {
        let created: CreatedMachine = serde_json::from_value(json!({
            "object": "machine", "id": "mch_1", "name": "A", "instance_id": "ins_1",
            "created_at": 1, "updated_at": 1, "default_token_ttl": 60, "scoped_machines": [],
            "secret_key": "ak_topsecret"
        }))
        .expect("parses");
        assert!(!format!("{created:?}").contains("ak_topsecret"));
    }
}
