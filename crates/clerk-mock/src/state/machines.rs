//! `/v1/machines`: machines, their secret keys and their scopes.

use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::params::{
    Empty, Param, Params, machine_name, parse_body, parse_range, query_param, token_ttl,
};
use super::reply::{Reply, bad_param, error, form_error, machine_not_found, not_found};
use crate::ids;

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub id: String,
    pub name: String,
    pub secret_key: String,
    /// Rotated-out keys and when they stop working (Unix ms).
    pub previous_keys: Vec<(String, i64)>,
    /// (to machine id, created_at)
    pub scoped: Vec<(String, i64)>,
    pub default_token_ttl: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `POST /v1/machines`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateMachine {
    name: Param<String>,
    /// Machine ids; an item that is not a string names no machine.
    scoped_machines: Param<Vec<Value>>,
    default_token_ttl: Param<u64>,
}

/// `PATCH /v1/machines/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateMachine {
    name: Param<String>,
    default_token_ttl: Param<u64>,
}

/// `POST /v1/machines/{id}/secret_key/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RotateSecretKey {
    previous_token_ttl: Param<u64>,
}

/// `POST /v1/machines/{id}/scopes`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateScope {
    to_machine_id: Param<String>,
}

impl State {
    pub fn machine(&self, id: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.id == id)
    }

    pub(super) fn machine_mut(&mut self, id: &str) -> Option<&mut Machine> {
        self.machines.iter_mut().find(|m| m.id == id)
    }

    pub fn machine_json(&self, m: &Machine, with_scoped: bool) -> Value {
        let mut v = json!({
            "object": "machine",
            "id": m.id,
            "name": m.name,
            "instance_id": self.instance_id,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "default_token_ttl": m.default_token_ttl,
        });
        if with_scoped {
            let scoped: Vec<Value> = m
                .scoped
                .iter()
                .filter_map(|(id, _)| self.machine(id))
                .map(|t| self.machine_json(t, false))
                .collect();
            v["scoped_machines"] = Value::Array(scoped);
        }
        v
    }

    pub(super) fn list_machines(
        &self,
        headers: &http::HeaderMap,
        query: &[(String, String)],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let q = |k: &str| query_param(query, k);
        let limit = parse_range(q("limit"), "limit", 1, 500, 10)?;
        let offset = parse_range(q("offset"), "offset", 0, u64::MAX, 0)?;
        let needle = q("query").unwrap_or("");
        let mut list: Vec<&Machine> = self
            .machines
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || m.id == needle
                    || m.name.to_lowercase().contains(&needle.to_lowercase())
            })
            .collect();
        match q("order_by").unwrap_or("-created_at") {
            "name" | "+name" => list.sort_by(|a, b| a.name.cmp(&b.name)),
            "-name" => list.sort_by(|a, b| b.name.cmp(&a.name)),
            "created_at" | "+created_at" => {}
            "-created_at" => list.reverse(),
            other => {
                return Err(bad_param(
                    "order_by",
                    format!("order_by {other:?} is not supported"),
                ));
            }
        }
        let data: Vec<Value> = list
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|m| self.machine_json(m, true))
            .collect();
        Ok(Reply::ok(
            200,
            json!({ "data": data, "total_count": list.len() }),
        ))
    }

    pub(super) fn create_machine(
        &mut self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: CreateMachine = parse_body(body, Empty::Invalid, Params::Only)?;
        let name = match body.name {
            Param::Absent => {
                return Err(form_error(
                    "form_param_missing",
                    "name",
                    "name must be included.",
                ));
            }
            name => machine_name(name)?,
        };
        let ttl = token_ttl(body.default_token_ttl)?.unwrap_or(3600);
        let mut scoped = Vec::new();
        let now = self.now_ms();
        let scoped_machines = body.scoped_machines.optional(|| {
            form_error(
                "form_param_format_invalid",
                "scoped_machines",
                "scoped_machines must be an array",
            )
        })?;
        if let Some(list) = scoped_machines {
            if list.len() > 150 {
                return Err(form_error(
                    "form_param_value_invalid",
                    "scoped_machines",
                    "at most 150 scoped machines",
                ));
            }
            for item in &list {
                let id = item.as_str().unwrap_or_default();
                if self.machine(id).is_none() {
                    return Err(machine_not_found(id));
                }
                scoped.push((id.to_owned(), now));
            }
        }
        let m = Machine {
            id: ids::machine_id(),
            name,
            secret_key: ids::machine_secret_key(),
            previous_keys: Vec::new(),
            scoped,
            default_token_ttl: ttl,
            created_at: now,
            updated_at: now,
        };
        let mut json = self.machine_json(&m, true);
        json["secret_key"] = json!(m.secret_key);
        self.machines.push(m);
        Ok(Reply::ok(200, json))
    }

    pub(super) fn get_machine(&self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine(id).ok_or_else(|| machine_not_found(id))?;
        Ok(Reply::ok(200, self.machine_json(m, true)))
    }

    pub(super) fn update_machine(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: UpdateMachine = parse_body(body, Empty::IsObject, Params::Only)?;
        let now = self.now_ms();
        let name = match body.name {
            Param::Absent | Param::Null => None,
            name => Some(machine_name(name)?),
        };
        let ttl = token_ttl(body.default_token_ttl)?;
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        if let Some(n) = name {
            m.name = n;
        }
        if let Some(t) = ttl {
            m.default_token_ttl = t;
        }
        m.updated_at = now;
        let m = m.clone();
        Ok(Reply::ok(200, self.machine_json(&m, true)))
    }

    pub(super) fn delete_machine(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let before = self.machines.len();
        self.machines.retain(|m| m.id != id);
        if self.machines.len() == before {
            return Err(machine_not_found(id));
        }
        for m in &mut self.machines {
            m.scoped.retain(|(to, _)| to != id);
        }
        Ok(Reply::ok(
            200,
            json!({ "object": "machine", "id": id, "deleted": true }),
        ))
    }

    pub(super) fn get_secret_key(
        &self,
        headers: &http::HeaderMap,
        id: &str,
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine(id).ok_or_else(|| machine_not_found(id))?;
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_secret_key", "secret": m.secret_key }),
        ))
    }

    pub(super) fn rotate_secret_key(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: RotateSecretKey = parse_body(body, Empty::Invalid, Params::Only)?;
        let ttl = match body.previous_token_ttl {
            Param::Absent | Param::Null => {
                return Err(form_error(
                    "form_param_missing",
                    "previous_token_ttl",
                    "previous_token_ttl must be included.",
                ));
            }
            Param::Valid(t) if t <= 28_800 => t as i64,
            _ => {
                return Err(form_error(
                    "form_param_value_invalid",
                    "previous_token_ttl",
                    "previous_token_ttl must be between 0 and 28800",
                ));
            }
        };
        let now = self.now_ms();
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        let old = std::mem::replace(&mut m.secret_key, ids::machine_secret_key());
        if ttl > 0 {
            m.previous_keys.push((old, now + ttl * 1000));
        }
        m.updated_at = now;
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_secret_key", "secret": m.secret_key }),
        ))
    }

    pub(super) fn create_scope(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: CreateScope = parse_body(body, Empty::Invalid, Params::Only)?;
        let to = body.to_machine_id.valid().ok_or_else(|| {
            form_error(
                "form_param_missing",
                "to_machine_id",
                "to_machine_id must be included.",
            )
        })?;
        if self.machine(&to).is_none() {
            return Err(machine_not_found(&to));
        }
        let now = self.now_ms();
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        if m.scoped.iter().any(|(t, _)| *t == to) {
            return Err(error(
                409,
                "duplicate_record",
                "duplicate record",
                "This machine scope already exists",
            ));
        }
        if m.scoped.len() >= 150 {
            return Err(form_error(
                "form_param_value_invalid",
                "to_machine_id",
                "a machine can have at most 150 scopes",
            ));
        }
        m.scoped.push((to.clone(), now));
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_scope", "from_machine_id": id, "to_machine_id": to, "created_at": now }),
        ))
    }

    pub(super) fn delete_scope(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        other: &str,
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        let before = m.scoped.len();
        m.scoped.retain(|(t, _)| t != other);
        if m.scoped.len() == before {
            return Err(not_found("machine scope"));
        }
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_scope", "from_machine_id": id, "to_machine_id": other, "deleted": true }),
        ))
    }
}
