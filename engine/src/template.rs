//! Templated strings (minijinja). Checked at load time, rendered per task try.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

/// Top-level names a template may use.
pub const CONTEXT_NAMES: &[&str] = &[
    "ds",
    "ds_nodash",
    "ts",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "params",
    "pipeline_id",
    "task_id",
    "run_id",
    "try_number",
];

/// The template environment: strict about undefined names.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// True when the string contains template syntax at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn describe(e: &minijinja::Error) -> String {
    let mut msg = format!("{}", e.kind());
    if let Some(d) = e.detail() {
        msg.push_str(": ");
        msg.push_str(d);
    }
    if let Some(l) = e.line().filter(|l| *l > 1) {
        msg.push_str(&format!(" (line {l} of the template)"));
    }
    msg
}

impl Templates {
    /// A strict environment.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates { env }
    }

    /// Check a template: syntax, and that it only uses known names and declared params.
    pub fn check(&self, source: &str, params: &BTreeSet<String>) -> Result<(), String> {
        if !is_template(source) {
            return Ok(());
        }
        let tmpl = self
            .env
            .template_from_str(source)
            .map_err(|e| format!("invalid template: {}", describe(&e)))?;
        let mut unknown: Vec<String> = Vec::new();
        for name in tmpl.undeclared_variables(true) {
            let top = name.split('.').next().unwrap_or(&name);
            if !CONTEXT_NAMES.contains(&top) {
                unknown.push(format!(
                    "unknown variable `{name}`, expected one of: {}",
                    CONTEXT_NAMES.join(", ")
                ));
            } else if top == "params"
                && let Some(p) = name.split('.').nth(1)
                && !params.contains(p)
            {
                let known: Vec<&str> = params.iter().map(String::as_str).collect();
                unknown.push(format!(
                    "unknown parameter `params.{p}`; declared params: {}",
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        unknown.sort();
        match unknown.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(format!("invalid template: {e}")),
        }
    }

    /// Render with a context.
    pub fn render(&self, source: &str, ctx: &serde_json::Value) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        self.env
            .render_str(source, ctx)
            .map_err(|e| format!("rendering template `{source}`: {}", describe(&e)))
    }
}
