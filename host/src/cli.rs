//! `granary plugin install|list|remove|disable|enable`: client commands that drive a running
//! server's `plugins/` REST API, so an operator needs neither curl nor the API's shape.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

/// `granary plugin ...`.
#[derive(clap::Args, Debug)]
pub struct PluginCommand {
    /// The server to talk to.
    #[command(flatten)]
    pub server: Server,
    /// What to do.
    #[command(subcommand)]
    pub action: PluginAction,
}

/// Where the server is and who is asking.
#[derive(clap::Args, Debug)]
pub struct Server {
    /// Base URL of the Granary server.
    #[arg(
        long,
        env = "GRANARY_URL",
        default_value = "http://127.0.0.1:24817",
        global = true
    )]
    pub url: String,
    /// User name for HTTP Basic authentication.
    #[arg(long, env = "GRANARY_USERNAME", default_value = "admin", global = true)]
    pub username: String,
    /// Password for HTTP Basic authentication.
    #[arg(long, env = "GRANARY_PASSWORD", hide_env_values = true, global = true)]
    pub password: Option<String>,
}

/// The plugin subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PluginAction {
    /// Upload a `.wasm` component: install it, or upgrade the installed plugin of the same name.
    Install {
        /// The component file.
        file: PathBuf,
    },
    /// List the server's plugins (built-in and installed).
    List,
    /// Remove an installed plugin.
    Remove {
        /// Plugin name.
        name: String,
        /// Remove it even while repositories of its types exist (they stay, unusable).
        #[arg(long)]
        force: bool,
    },
    /// Disable an installed plugin (keeps it; its routes answer 404 until it is enabled).
    Disable {
        /// Plugin name.
        name: String,
    },
    /// Enable a disabled plugin.
    Enable {
        /// Plugin name.
        name: String,
    },
}

/// Runs a plugin subcommand, printing the outcome on stdout.
pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    let server = &command.server;
    let base = format!("{}/pulp/api/v3/plugins/", server.url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let auth = |request: reqwest::RequestBuilder| {
        request.basic_auth(&server.username, server.password.as_deref())
    };
    match &command.action {
        PluginAction::Install { file } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let boundary = format!("granary-{}", uuid::Uuid::new_v4().simple());
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plugin.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let response = auth(client.post(&base))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await?;
            let plugin = answer(response).await?;
            let verb = match plugin["replaced_version"].as_str() {
                Some(old) => format!("upgraded {} {old} ->", text(&plugin["name"])),
                None => format!("installed {}", text(&plugin["name"])),
            };
            let [version, wit, types, capabilities] = described(&plugin);
            let sha256 = text(&plugin["sha256"]);
            println!(
                "{verb} {version} (WIT {wit}; content types: {types}; capabilities: {capabilities}; sha256 {sha256})"
            );
        }
        PluginAction::List => {
            let page = answer(
                auth(client.get(format!("{base}?limit=1000")))
                    .send()
                    .await?,
            )
            .await?;
            println!(
                "{:<20} {:<10} {:<6} {:<10} {:<8} {:<24} CAPABILITIES",
                "NAME", "VERSION", "WIT", "SOURCE", "ENABLED", "CONTENT TYPES"
            );
            for plugin in page["results"].as_array().into_iter().flatten() {
                let [version, wit, types, capabilities] = described(plugin);
                let (name, source) = (text(&plugin["name"]), text(&plugin["source"]));
                let enabled = &plugin["enabled"];
                println!(
                    "{name:<20} {version:<10} {wit:<6} {source:<10} {enabled:<8} {types:<24} {capabilities}"
                );
            }
        }
        PluginAction::Remove { name, force } => {
            let url = format!("{base}{name}/?force={force}");
            answer(auth(client.delete(url)).send().await?).await?;
            println!("removed {name}");
        }
        PluginAction::Disable { name } | PluginAction::Enable { name } => {
            let enabled = matches!(command.action, PluginAction::Enable { .. });
            answer(
                auth(client.patch(format!("{base}{name}/")))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::json!({ "enabled": enabled }).to_string())
                    .send()
                    .await?,
            )
            .await?;
            println!("{} {name}", if enabled { "enabled" } else { "disabled" });
        }
    }
    Ok(())
}

/// The JSON body of a successful answer, or an error carrying the server's message.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body = response.text().await?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(json);
    }
    let message = match &json {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Array(messages) => format!(
                    "{key}: {}",
                    messages.iter().map(text).collect::<Vec<_>>().join("; ")
                ),
                other => format!("{key}: {}", text(other)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => body,
    };
    anyhow::bail!("the server answered {status}:\n{message}")
}

/// What both `install` and `list` say of a plugin: its version, WIT version, content type names
/// and capabilities.
fn described(plugin: &Value) -> [String; 4] {
    [
        text(&plugin["version"]),
        text(&plugin["wit_version"]),
        names(&plugin["content_types"]),
        list(&plugin["capabilities"]),
    ]
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> String {
    let items: Vec<String> = value.as_array().into_iter().flatten().map(text).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn names(types: &Value) -> String {
    list(&Value::Array(
        types
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["name"].clone())
            .collect(),
    ))
}
