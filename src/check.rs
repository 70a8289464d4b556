//! `check`: validates the worker config in a wrangler.toml, top level and every `[env.*]`,
//! through the same [`EdgeConfig::from_vars_json`] the worker runs. Native only.

use crate::config::EdgeConfig;

/// One environment's outcome: its name (`""` for the top level) and rule count, or the error.
pub type EnvCheck = (String, Result<usize, String>);

/// The outcome per environment.
pub fn check_wrangler_toml(text: &str) -> Result<Vec<EnvCheck>, String> {
    let doc: serde_json::Value = toml::from_str(text).map_err(|e| format!("wrangler.toml does not parse: {e}"))?;
    let mut out = Vec::new();
    let mut check = |env: String, vars: Option<&serde_json::Value>| {
        let empty = serde_json::json!({});
        let result = EdgeConfig::from_vars_json(vars.unwrap_or(&empty)).map(|c| c.rules.rules().len()).map_err(|e| e.to_string());
        out.push((env, result));
    };
    check(String::new(), doc.get("vars"));
    if let Some(envs) = doc.get("env").and_then(|e| e.as_object()) {
        for (name, env) in envs {
            check(name.clone(), env.get("vars"));
        }
    }
    Ok(out)
}
