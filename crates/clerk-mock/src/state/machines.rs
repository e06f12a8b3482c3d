//! `/v1/machines`: machines, their secret keys and their scopes.

use serde_json::{Value, json};

use super::State;
use super::params::{machine_name, only_params, parse_object, parse_range, query_param, token_ttl};
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
        let body = parse_object(body, false)?;
        only_params(&body, &["name", "scoped_machines", "default_token_ttl"])?;
        let name = match body.get("name") {
            Some(v) => machine_name(v)?,
            None => {
                return Err(form_error(
                    "form_param_missing",
                    "name",
                    "name must be included.",
                ));
            }
        };
        let ttl = match body.get("default_token_ttl").filter(|v| !v.is_null()) {
            Some(v) => token_ttl(v)?,
            None => 3600,
        };
        let mut scoped = Vec::new();
        let now = self.now_ms();
        if let Some(v) = body.get("scoped_machines").filter(|v| !v.is_null()) {
            let list = v.as_array().ok_or_else(|| {
                form_error(
                    "form_param_format_invalid",
                    "scoped_machines",
                    "scoped_machines must be an array",
                )
            })?;
            if list.len() > 150 {
                return Err(form_error(
                    "form_param_value_invalid",
                    "scoped_machines",
                    "at most 150 scoped machines",
                ));
            }
            for item in list {
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
        let body = parse_object(body, true)?;
        only_params(&body, &["name", "default_token_ttl"])?;
        let now = self.now_ms();
        let name = body
            .get("name")
            .filter(|v| !v.is_null())
            .map(machine_name)
            .transpose()?;
        let ttl = body
            .get("default_token_ttl")
            .filter(|v| !v.is_null())
            .map(token_ttl)
            .transpose()?;
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
        let body = parse_object(body, false)?;
        only_params(&body, &["previous_token_ttl"])?;
        let ttl = match body.get("previous_token_ttl") {
            None | Some(Value::Null) => {
                return Err(form_error(
                    "form_param_missing",
                    "previous_token_ttl",
                    "previous_token_ttl must be included.",
                ));
            }
            Some(v) => match v.as_u64() {
                Some(t) if t <= 28_800 => t as i64,
                _ => {
                    return Err(form_error(
                        "form_param_value_invalid",
                        "previous_token_ttl",
                        "previous_token_ttl must be between 0 and 28800",
                    ));
                }
            },
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
        let body = parse_object(body, false)?;
        only_params(&body, &["to_machine_id"])?;
        let to = body
            .get("to_machine_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                form_error(
                    "form_param_missing",
                    "to_machine_id",
                    "to_machine_id must be included.",
                )
            })?
            .to_owned();
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
