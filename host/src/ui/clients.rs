//! What a client needs to use a distribution, ready to copy: the lines of pip.conf or uv's
//! index, `.npmrc`, cargo's `config.toml`, a `docker pull` / skopeo line, or curl, by plugin.

use maud::{Markup, html};
use serde_json::Value;

use super::layout::text;

/// A distribution's card: its name, base path, URL and its clients' settings.
pub fn settings(origin: &str, plugin: &str, distribution: &Value) -> Markup {
    let name = text(&distribution["name"]);
    let base_path = text(&distribution["base_path"]);
    let base_url = text(&distribution["base_url"]);
    let lines = client_lines(origin, plugin, &name, &base_path, &base_url);
    html! {
        section.card aria-label=(format!("Distribution {name}")) {
            h2 { (name) }
            dl.facts {
                dt { "Base path" } dd { code { (base_path) } }
                dt { "URL" } dd { a href=(base_url) { (base_url) } }
                @if distribution["private"].as_bool() == Some(true) {
                    dt { "Private" } dd { "yes: only users who may view its repository read it" }
                }
            }
            @for (what, snippet) in &lines {
                h3 { (what) }
                pre { code { (snippet) } }
            }
        }
    }
}

/// (what the snippet is for, the snippet) for each client of `plugin`'s distributions.
fn client_lines(
    origin: &str,
    plugin: &str,
    name: &str,
    base_path: &str,
    base_url: &str,
) -> Vec<(&'static str, String)> {
    let host = origin
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    match plugin {
        "python" => {
            let index = format!("{origin}/pypi/{base_path}/simple/");
            vec![
                ("pip.conf", format!("[global]\nindex-url = {index}")),
                (
                    "uv (pyproject.toml)",
                    format!("[[tool.uv.index]]\nname = \"{name}\"\nurl = \"{index}\""),
                ),
                (
                    "twine upload",
                    format!(
                        "twine upload --repository-url {origin}/pypi/{base_path}/legacy/ dist/*"
                    ),
                ),
            ]
        }
        "npm" => vec![(".npmrc", format!("registry={origin}/npm/{base_path}/"))],
        "cargo" => vec![(
            "~/.cargo/config.toml",
            format!("[registries.{name}]\nindex = \"sparse+{origin}/cargo/{base_path}/\""),
        )],
        "container" => vec![
            ("docker", format!("docker pull {host}/{base_path}:latest")),
            (
                "skopeo",
                format!("skopeo inspect docker://{host}/{base_path}:latest"),
            ),
        ],
        _ => vec![("curl", format!("curl -O {base_url}<path of a file>"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_gets_the_lines_its_clients_read() {
        let lines = |plugin| {
            client_lines(
                "http://granary.example:24817",
                plugin,
                "team",
                "team/app",
                "http://granary.example:24817/pulp/content/team/app/",
            )
        };
        assert!(
            lines("python")[0]
                .1
                .contains("index-url = http://granary.example:24817/pypi/team/app/simple/")
        );
        assert_eq!(
            lines("npm")[0].1,
            "registry=http://granary.example:24817/npm/team/app/"
        );
        assert!(
            lines("cargo")[0]
                .1
                .contains("sparse+http://granary.example:24817/cargo/team/app/")
        );
        assert_eq!(
            lines("container")[0].1,
            "docker pull granary.example:24817/team/app:latest"
        );
        assert!(
            lines("file")[0]
                .1
                .starts_with("curl -O http://granary.example:24817/pulp/content/team/app/")
        );
    }
}
